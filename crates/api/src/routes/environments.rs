//! Environments (GitLab semantics): create, list with filters, get by name or id, update, stop, delete, stop the
//! stale ones, clean up review apps; and the overview.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use railyard_manifest::argocd::ArgoCd;
use railyard_manifest::request::{
    CreateEnvironment, DeleteEnvironment, DeleteReviewApps, StopEnvironment, StopStaleEnvironments, UpdateEnvironment,
};
use railyard_manifest::{
    state, EnvName, EnvState, EnvironmentConfig, Error, GroupName, Request, Stage, Tier, Upstream,
};
use serde::Deserialize;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use super::{written, AppState};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};

type Reply = ApiResult<(StatusCode, Json<Value>)>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    external_url: Option<String>,
    #[serde(default)]
    tier: Option<Tier>,
    #[serde(default)]
    upstream: Option<Upstream>,
    #[serde(rename = "environmentGroup", alias = "environment_group", default)]
    environment_group: Option<String>,
    #[serde(default)]
    argocd: Option<Value>,
}

/// An `argocd` block of a request body: absent, or checked settings (400 naming the bad field).
fn argocd_settings(v: Option<&Value>) -> ApiResult<Option<ArgoCd>> {
    Ok(v.filter(|v| !v.is_null()).map(ArgoCd::parse).transpose()?)
}

pub async fn create(State(st): State<AppState>, JsonBody(b): JsonBody<CreateBody>) -> Reply {
    let environment_group = b.environment_group.as_deref().map(GroupName::parse).transpose().map_err(Error::from)?;
    let request = CreateEnvironment {
        name: EnvName::parse(&b.name).map_err(Error::from)?,
        upstream: b.upstream,
        environment_group,
        tier: b.tier,
        external_url: b.external_url,
        argocd_source: b.argocd.as_ref().filter(|v| !v.is_null()).map(|_| st.argocd_source.clone()),
        argocd: argocd_settings(b.argocd.as_ref())?,
    };
    let applied = st.write(Request::CreateEnvironment(request)).await?;
    let (status, Json(mut body)) = written(StatusCode::CREATED, applied);
    add_views(&st, &mut body).await?;
    Ok((status, Json(body)))
}

/// GitLab's slug: the name with anything but `[a-z0-9]` as `-`, at most 24 characters; a name that had to change
/// gets a 6-character suffix derived from it, so the slug is unique and stable.
pub fn slug(name: &EnvName) -> String {
    let plain: String = name.as_str().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    if plain == name.as_str() && plain.len() <= 24 {
        return plain;
    }
    let hash = git2::Oid::hash_object(git2::ObjectType::Blob, name.as_str().as_bytes())
        .map(|o| o.to_string())
        .unwrap_or_default();
    let mut head: String = plain.chars().take(17).collect();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}-{}", &hash[..6.min(hash.len())])
}

/// An environment as the API shows it: its stored settings, `name`, `slug` and `last_deployment`.
fn env_json(stage: &Stage<'_>, name: &EnvName, config: &EnvironmentConfig) -> railyard_manifest::Result<Value> {
    let mut v = json!(config);
    // A deployment record (release candidates) if there is one, else the latest deploy read from the files.
    let last = match state::last_deployment_record(stage, name)? {
        Some(r) => Some((json!(r), r.project, Some(r.version))),
        None => state::last_deploy(stage, name)?.map(|d| {
            let view = json!({
                "application": d.application,
                "version": d.version,
                "deployed_by": d.deployed_by,
                "deployed_by_email": d.deployed_by_email,
                "deployed_at": d.deployed_at_utc,
                "status": "success",
            });
            (view, d.application, d.version)
        }),
    };
    let last = match last {
        Some((mut view, app, version)) => {
            // GitLab's `sha`: the source commit of the deployed release (a candidate's `commit`, an upload's
            // `source_commit_id`), when it has one.
            let release = version.map(|v| state::release(stage, &app, v)).transpose()?.flatten();
            if let Some(sha) = release.map(|r| r.source_commit_id).filter(|c| !c.is_empty()) {
                view["sha"] = json!(sha);
            }
            view
        }
        None => Value::Null,
    };
    if let Value::Object(m) = &mut v {
        m.insert("name".into(), json!(name));
        m.insert("slug".into(), json!(slug(name)));
        m.insert("last_deployment".into(), last);
    }
    Ok(v)
}

/// Adds `slug` and `last_deployment` to an answer that holds one environment (`name` + settings).
async fn add_views(st: &AppState, body: &mut Value) -> ApiResult<()> {
    let Some(name) = body.get("name").and_then(Value::as_str).and_then(|n| EnvName::parse(n).ok()) else {
        return Ok(());
    };
    let view = st
        .read(move |s| match state::env_config(s, &name)? {
            Some(c) => env_json(s, &name, &c).map(Some),
            None => Ok(None),
        })
        .await?;
    if let (Some(Value::Object(view)), Value::Object(m)) = (view, body) {
        for key in ["slug", "last_deployment"] {
            if let Some(v) = view.get(key) {
                m.insert(key.into(), v.clone());
            }
        }
    }
    Ok(())
}

/// `{env}` in a path: an id (digits) or a name (a name never starts with a digit).
pub(super) fn resolve(stage: &Stage<'_>, raw: &str) -> railyard_manifest::Result<(EnvName, EnvironmentConfig)> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        let id: u64 = raw.parse().map_err(|_| Error::not_found("environment", raw))?;
        return state::env_by_id(stage, id)?.ok_or_else(|| Error::not_found("environment", raw));
    }
    let name = EnvName::parse(raw)?;
    let config = state::require_env(stage, &name)?;
    Ok((name, config))
}

async fn resolve_name(st: &AppState, p: &Params) -> ApiResult<EnvName> {
    let raw = p.raw("env").to_owned();
    st.read(move |s| resolve(s, &raw).map(|(n, _)| n)).await
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

/// `GET /api/environments?name=&search=&states=`
pub async fn list(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Reply {
    for key in q.keys() {
        if !matches!(key.as_str(), "name" | "search" | "states") {
            return Err(ApiError::bad_request(key, format!("unknown query parameter {key:?}")));
        }
    }
    let (name, search) = (q.get("name").cloned(), q.get("search").cloned());
    if name.is_some() && search.is_some() {
        return Err(ApiError::bad_request("search", "name and search cannot be used together"));
    }
    if search.as_ref().is_some_and(|s| s.chars().count() < 3) {
        return Err(ApiError::bad_request("search", "search must be at least 3 characters"));
    }
    let states = q.get("states").map(|s| states_filter(s)).transpose()?;
    let list = st
        .read(move |s| {
            let mut out = Vec::new();
            for (n, c) in state::environments(s)? {
                let keep = name.as_ref().is_none_or(|want| n.as_str() == want)
                    && search.as_ref().is_none_or(|want| n.as_str().contains(want.as_str()))
                    && states.as_ref().is_none_or(|ss| ss.contains(&c.state));
                if keep {
                    out.push(env_json(s, &n, &c)?);
                }
            }
            Ok(out)
        })
        .await?;
    Ok((StatusCode::OK, Json(json!({ "environments": list }))))
}

/// `GET /api/environments/{env}` (name or id).
pub async fn get(State(st): State<AppState>, p: Params) -> Reply {
    let raw = p.raw("env").to_owned();
    let v = st
        .read(move |s| {
            let (n, c) = resolve(s, &raw)?;
            env_json(s, &n, &c)
        })
        .await?;
    Ok((StatusCode::OK, Json(v)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default)]
    external_url: Option<String>,
    #[serde(default)]
    tier: Option<Tier>,
    #[serde(default)]
    upstream: Option<Upstream>,
    #[serde(rename = "environmentGroup", alias = "environment_group", default)]
    environment_group: Option<String>,
    #[serde(default)]
    protected: Option<bool>,
    /// Absent: unchanged; null: removed; an object: replaced.
    #[serde(default, deserialize_with = "present")]
    argocd: Option<Value>,
}

/// Keeps a present `null` apart from an absent field.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `PUT /api/environments/{env}`
pub async fn update(State(st): State<AppState>, p: Params, JsonBody(b): JsonBody<UpdateBody>) -> Reply {
    let environment_group = b.environment_group.as_deref().map(GroupName::parse).transpose().map_err(Error::from)?;
    let name = resolve_name(&st, &p).await?;
    let request = UpdateEnvironment {
        name,
        external_url: b.external_url,
        tier: b.tier,
        upstream: b.upstream,
        environment_group,
        protected: b.protected,
        argocd_source: b.argocd.as_ref().filter(|v| !v.is_null()).map(|_| st.argocd_source.clone()),
        argocd: b.argocd.as_ref().map(|v| argocd_settings(Some(v))).transpose()?,
    };
    let (status, Json(mut body)) = written(StatusCode::OK, st.write(Request::UpdateEnvironment(request)).await?);
    add_views(&st, &mut body).await?;
    Ok((status, Json(body)))
}

fn bool_param(q: &HashMap<String, String>, key: &str, default: bool) -> ApiResult<bool> {
    match q.get(key).map(String::as_str) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(ApiError::bad_request(key, format!("{key} must be true or false, not {other:?}"))),
    }
}

/// `POST /api/environments/{env}/stop?force=`
pub async fn stop(State(st): State<AppState>, p: Params, Query(q): Query<HashMap<String, String>>) -> Reply {
    let force = bool_param(&q, "force", false)?;
    let name = resolve_name(&st, &p).await?;
    let (status, Json(mut body)) =
        written(StatusCode::OK, st.write(Request::StopEnvironment(StopEnvironment { name, force })).await?);
    add_views(&st, &mut body).await?;
    Ok((status, Json(body)))
}

/// `DELETE /api/environments/{env}`: 204, the commit in `X-Railyard-Commit`.
pub async fn delete(State(st): State<AppState>, p: Params) -> ApiResult<Response> {
    let name = resolve_name(&st, &p).await?;
    let applied = st.write(Request::DeleteEnvironment(DeleteEnvironment { name })).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(c) = applied.commit.and_then(|c| HeaderValue::from_str(&c.to_string()).ok()) {
        resp.headers_mut().insert(HeaderName::from_static("x-railyard-commit"), c);
    }
    Ok(resp)
}

fn parse_time(field: &str, raw: &str) -> ApiResult<OffsetDateTime> {
    let fmt = &time::format_description::well_known::Rfc3339;
    OffsetDateTime::parse(raw, fmt).or_else(|_| OffsetDateTime::parse(&format!("{raw}T00:00:00Z"), fmt)).map_err(|_| {
        ApiError::bad_request(field, format!("{field} must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z"))
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap_or(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// `POST /api/environments/stop_stale?before=`: `before` between 10 years and 1 week ago.
pub async fn stop_stale(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Reply {
    let raw = q.get("before").ok_or_else(|| ApiError::bad_request("before", "before is required"))?;
    let before = parse_time("before", raw)?;
    let now = OffsetDateTime::now_utc();
    if before < now - Duration::days(3653) || before > now - Duration::weeks(1) {
        return Err(ApiError::bad_request("before", "before must be between 10 years ago and 1 week ago"));
    }
    let request = StopStaleEnvironments { before: rfc3339(before) };
    Ok(written(StatusCode::OK, st.write(Request::StopStaleEnvironments(request)).await?))
}

/// `DELETE /api/environments/review_apps?before=&limit=&dry_run=`: stopped `review/…` environments older than
/// `before` (default 30 days ago), at most `limit` (default 100, up to 1000); `dry_run` (default true) deletes nothing.
pub async fn delete_review_apps(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Reply {
    for key in q.keys() {
        if !matches!(key.as_str(), "before" | "limit" | "dry_run") {
            return Err(ApiError::bad_request(key, format!("unknown query parameter {key:?}")));
        }
    }
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
    let dry_run = bool_param(&q, "dry_run", true)?;
    let request = Request::DeleteReviewApps(DeleteReviewApps { before: rfc3339(before), limit });
    if dry_run {
        return Ok(super::dry_run_answer(&st.simulate(request).await?, "dry_run"));
    }
    let (status, Json(mut body)) = written(StatusCode::OK, st.write(request).await?);
    if let Value::Object(m) = &mut body {
        m.insert("dry_run".into(), json!(false));
    }
    Ok((status, Json(body)))
}

/// Kuberpult's `POST /api/environments/{env}/`: a multipart form whose `config` part is Kuberpult's
/// EnvironmentConfig JSON (`upstream`, `environmentGroup`, `argocd`).
pub async fn kuberpult_create(
    State(st): State<AppState>,
    p: Params,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Reply {
    let mut multipart = multipart.map_err(|e| crate::extract::rejection(e.status(), "body", e.body_text()))?;
    let mut config: Option<Value> = None;
    while let Some(field) =
        multipart.next_field().await.map_err(|e| crate::extract::rejection(e.status(), "body", e.body_text()))?
    {
        if field.name() == Some("config") {
            let bytes =
                field.bytes().await.map_err(|e| crate::extract::rejection(e.status(), "config", e.body_text()))?;
            config = Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::bad_request("config", format!("config is not JSON: {e}")))?,
            );
        }
    }
    let config = config.unwrap_or_else(|| json!({}));
    let upstream = match config.get("upstream") {
        None | Some(Value::Null) => None,
        Some(u) => Some(
            serde_json::from_value::<Upstream>(u.clone())
                .map_err(|e| ApiError::bad_request("config", format!("config.upstream: {e}")))?,
        ),
    };
    let environment_group = config
        .get("environmentGroup")
        .and_then(Value::as_str)
        .map(GroupName::parse)
        .transpose()
        .map_err(Error::from)?;
    let request = CreateEnvironment {
        name: p.get::<EnvName, _>("env")?,
        upstream,
        environment_group,
        tier: None,
        external_url: None,
        argocd_source: config.get("argocd").filter(|v| !v.is_null()).map(|_| st.argocd_source.clone()),
        argocd: argocd_settings(config.get("argocd"))?,
    };
    Ok(written(StatusCode::CREATED, st.write(Request::CreateEnvironment(request)).await?))
}

/// `GET /api/overview`: every environment with what it runs, from the snapshot of the head commit; its entity tag
/// is the head, so a client that sends it back in `If-None-Match` gets `304 Not Modified` until the branch moves.
pub async fn overview(State(st): State<AppState>, headers: axum::http::HeaderMap) -> ApiResult<Response> {
    let snapshot = st.snapshot().await?;
    let etag = snapshot.etag();
    let cache = [(axum::http::header::ETAG, etag.clone()), (axum::http::header::CACHE_CONTROL, "no-cache".to_owned())];
    if crate::extract::etag_matches(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let body = snapshot.json();
    Ok((StatusCode::OK, cache, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}
