//! Environments (GitLab semantics) over [`service::environments`]: create, list with filters, get by name or id,
//! update, stop, delete, stop the stale ones, clean up review apps; and the overview.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use railyard_manifest::argocd::ArgoCd;
use railyard_manifest::{EnvName, EnvState, Error, GroupName, Tier, Upstream};
use railyard_wire::{CreateEnvironment, UpdateEnvironment};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::error::{ApiError, ApiResult};
use crate::extract::{body_variant, JsonBody, Params};
use crate::service::environments::{self as service, Change, Filter, NewEnvironment};
use crate::service::Service;

/// The environment a create body asks for (400 naming a bad field).
pub fn new_environment(b: CreateEnvironment) -> ApiResult<NewEnvironment> {
    let environment_group = group(b.environment_group.as_deref())?;
    Ok(NewEnvironment {
        upstream: b.upstream.map(upstream).transpose()?,
        tier: b.tier.as_deref().map(|t| body_variant::<Tier>("tier", t)).transpose()?,
        name: EnvName::parse(&b.name).map_err(Error::from)?,
        environment_group,
        external_url: b.external_url,
        argocd: argocd_settings(b.argocd.as_ref())?,
    })
}

/// The change an update body asks for (400 naming a bad field).
pub fn change(b: UpdateEnvironment) -> ApiResult<Change> {
    Ok(Change {
        upstream: b.upstream.map(upstream).transpose()?,
        tier: b.tier.as_deref().map(|t| body_variant::<Tier>("tier", t)).transpose()?,
        environment_group: group(b.environment_group.as_deref())?,
        external_url: b.external_url,
        protected: b.protected,
        argocd: b.argocd.map(|v| argocd_settings(v.as_ref())).transpose()?,
    })
}

/// A body's upstream, its environment a valid name (else an invalid body).
fn upstream(u: railyard_wire::Upstream) -> ApiResult<Upstream> {
    let environment = u
        .environment
        .map(|e| EnvName::parse(&e))
        .transpose()
        .map_err(|e| ApiError::bad_request("body", format!("upstream.environment: {e}")))?;
    Ok(Upstream { latest: u.latest, environment })
}

fn group(raw: Option<&str>) -> ApiResult<Option<GroupName>> {
    Ok(raw.map(GroupName::parse).transpose().map_err(Error::from)?)
}

/// An `argocd` block of a request body: absent, or checked settings (400 naming the bad field).
pub fn argocd_settings(v: Option<&Value>) -> ApiResult<Option<ArgoCd>> {
    Ok(v.filter(|v| !v.is_null()).map(ArgoCd::parse).transpose()?)
}

#[utoipa::path(
    post,
    path = "/environments",
    summary = "Create an environment",
    request_body = CreateEnvironment,
    responses((status = 201, description = "success", body = Object)),
)]
/// `POST /api/environments` → 201.
pub async fn create(st: Service, JsonBody(b): JsonBody<CreateEnvironment>) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(service::create(&st, new_environment(b)?).await?)))
}

fn states_filter(raw: &str) -> ApiResult<Vec<EnvState>> {
    raw.split(',')
        .map(|s| match s.trim() {
            "available" => Ok(EnvState::Available),
            "stopping" => Ok(EnvState::Stopping),
            "stopped" => Ok(EnvState::Stopped),
            other => Err(ApiError::bad_request(
                "states",
                format!("states must be available, stopping or stopped (comma-separated), not {other:?}"),
            )),
        })
        .collect()
}

/// The filter of `GET …/environments?name=&search=&states=` (the GitLab adapter passes its query on too).
pub fn filter(q: &HashMap<String, String>) -> ApiResult<Filter> {
    let states = q.get("states").map(|s| states_filter(s)).transpose()?;
    Filter::new(q.get("name").cloned(), q.get("search").cloned(), states)
}

#[utoipa::path(
    get,
    path = "/environments",
    summary = "List environments",
    params(("name" = Option<String>, Query, description = "exactly this name"), ("search" = Option<String>, Query, description = "names containing this (3+ characters)"), ("states" = Option<String>, Query, description = "available, stopping, stopped (comma-separated)")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/environments?name=&search=&states=`
pub async fn list(st: Service, Query(q): Query<HashMap<String, String>>) -> ApiResult<impl IntoResponse> {
    only(&q, &["name", "search", "states"])?;
    Ok(Json(json!({ "environments": service::list(&st, filter(&q)?).await? })))
}

#[utoipa::path(
    get,
    path = "/environments/{env}",
    summary = "An environment (name or id)",
    params(("env" = String, Path, description = "environment name (or GitLab id)")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/environments/{env}` (name or id).
pub async fn get(st: Service, p: Params) -> ApiResult<impl IntoResponse> {
    Ok(Json(service::get(&st, p.raw("env")).await?))
}

#[utoipa::path(
    put,
    path = "/environments/{env}",
    summary = "Update an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)")),
    request_body = UpdateEnvironment,
    responses((status = 200, description = "success", body = Object)),
)]
/// `PUT /api/environments/{env}`
pub async fn update(st: Service, p: Params, JsonBody(b): JsonBody<UpdateEnvironment>) -> ApiResult<impl IntoResponse> {
    Ok(Json(service::update(&st, p.raw("env"), change(b)?).await?))
}

/// 400 for a query parameter other than `known`, so that a typo does not silently widen what a request does.
fn only(q: &HashMap<String, String>, known: &[&str]) -> ApiResult<()> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(ApiError::bad_request(key, format!("unknown query parameter {key:?}"))),
        None => Ok(()),
    }
}

pub fn bool_param(q: &HashMap<String, String>, key: &str, default: bool) -> ApiResult<bool> {
    match q.get(key).map(String::as_str) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(ApiError::bad_request(key, format!("{key} must be true or false, not {other:?}"))),
    }
}

#[utoipa::path(
    post,
    path = "/environments/{env}/stop",
    summary = "Stop an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("force" = Option<String>, Query, description = "accepted, changes nothing")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `POST /api/environments/{env}/stop?force=`
pub async fn stop(st: Service, p: Params, Query(q): Query<HashMap<String, String>>) -> ApiResult<impl IntoResponse> {
    let force = bool_param(&q, "force", false)?;
    Ok(Json(service::stop(&st, p.raw("env"), force).await?))
}

#[utoipa::path(
    delete,
    path = "/environments/{env}",
    summary = "Delete a stopped environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)")),
    responses((status = 204, description = "deleted")),
)]
/// `DELETE /api/environments/{env}`: 204, the commit in `X-Railyard-Commit`.
pub async fn delete(st: Service, p: Params) -> ApiResult<Response> {
    Ok(deleted(service::delete(&st, p.raw("env")).await?.commit))
}

/// 204 with the commit that deleted the environment in `X-Railyard-Commit`.
pub fn deleted(commit: Option<String>) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(c) = commit.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(HeaderName::from_static("x-railyard-commit"), c);
    }
    resp
}

pub fn parse_time(field: &str, raw: &str) -> ApiResult<OffsetDateTime> {
    let fmt = &time::format_description::well_known::Rfc3339;
    OffsetDateTime::parse(raw, fmt).or_else(|_| OffsetDateTime::parse(&format!("{raw}T00:00:00Z"), fmt)).map_err(|_| {
        ApiError::bad_request(field, format!("{field} must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z"))
    })
}

#[utoipa::path(
    post,
    path = "/environments/stop_stale",
    summary = "Stop environments unchanged since `before`",
    params(("before" = Option<String>, Query, description = "ISO 8601, between 10 years and 1 week ago")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `POST /api/environments/stop_stale?before=`: `before` between 10 years and 1 week ago.
pub async fn stop_stale(st: Service, Query(q): Query<HashMap<String, String>>) -> ApiResult<impl IntoResponse> {
    let raw = q.get("before").ok_or_else(|| ApiError::bad_request("before", "before is required"))?;
    Ok(Json(service::stop_stale(&st, parse_time("before", raw)?).await?))
}

/// The query of the review-app clean-up: `before` (default 30 days ago), `limit` (default 100, up to 1000),
/// `dry_run` (default true).
pub fn review_apps_query(q: &HashMap<String, String>) -> ApiResult<(OffsetDateTime, usize, bool)> {
    only(q, &["before", "limit", "dry_run"])?;
    let before = match q.get("before") {
        Some(raw) => parse_time("before", raw)?,
        None => OffsetDateTime::now_utc() - Duration::days(30),
    };
    let limit = match q.get("limit") {
        None => 100,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::bad_request("limit", "limit must be an integer from 1 to 1000"))?,
    };
    Ok((before, limit, bool_param(q, "dry_run", true)?))
}

#[utoipa::path(
    delete,
    path = "/environments/review_apps",
    summary = "Delete stopped review apps",
    params(("before" = Option<String>, Query, description = "ISO 8601 (default 30 days ago)"), ("limit" = Option<String>, Query, description = "1 to 1000 (default 100)"), ("dry_run" = Option<String>, Query, description = "default true")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `DELETE /api/environments/review_apps?before=&limit=&dry_run=`: stopped `review/…` environments older than
/// `before`; a dry run (the default) deletes nothing.
pub async fn delete_review_apps(st: Service, Query(q): Query<HashMap<String, String>>) -> ApiResult<impl IntoResponse> {
    let (before, limit, dry_run) = review_apps_query(&q)?;
    Ok(Json(service::delete_review_apps(&st, before, limit, dry_run).await?))
}

#[utoipa::path(
    get,
    path = "/overview",
    summary = "Every environment with what runs there and its locks",
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/overview`: every environment with what it runs, from the snapshot of the head commit; its entity tag
/// is the head, so a client that sends it back in `If-None-Match` gets `304 Not Modified` until the branch moves.
pub async fn overview(st: Service, headers: axum::http::HeaderMap) -> ApiResult<Response> {
    let snapshot = st.snapshot().await?;
    let etag = snapshot.etag();
    let cache = [(axum::http::header::ETAG, etag.clone()), (axum::http::header::CACHE_CONTROL, "no-cache".to_owned())];
    if crate::extract::etag_matches(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let body = snapshot.json();
    Ok((StatusCode::OK, cache, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}
