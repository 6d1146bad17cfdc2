//! GitLab's environments API under `/api/v4/projects/{project}/…`, for python-gitlab, glab and curl scripts:
//! [`service::environments`] (the native handlers' implementation) answered in GitLab's shapes — bare arrays with `page`/`per_page` and the
//! `X-*` and `Link` headers, JSON or form bodies, errors as `{"message": "404 Environment Not Found"}` (every error
//! under `/api/v4`, unknown routes included: see [`envelope`]).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::routes::environments as native;
use crate::routes::AppState;
use crate::service::environments::{self as service, EnvironmentView};
use crate::service::Service;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}", get(project))
        .route("/projects/{project}/environments", get(list).post(create))
        .route("/projects/{project}/environments/stop_stale", post(stop_stale))
        .route("/projects/{project}/environments/review_apps", delete(review_apps))
        .route("/projects/{project}/environments/{env}", get(get_env).put(update).delete(delete_env))
        .route("/projects/{project}/environments/{env}/stop", post(stop))
}

/// A GitLab-shaped error: `{"message": "404 Environment Not Found"}` (or the reason, for 4xx other than 404).
struct GitLabError(ApiError);

impl From<ApiError> for GitLabError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for GitLabError {
    fn into_response(self) -> Response {
        let e = self.0;
        let message = match (e.status, e.extra.get("what").and_then(Value::as_str)) {
            (StatusCode::NOT_FOUND, Some("environment")) => "404 Environment Not Found".to_owned(),
            (StatusCode::NOT_FOUND, _) => format!("404 {}", e.message),
            (status, _) if status.is_server_error() => {
                return e.into_response();
            }
            _ => e.message.clone(),
        };
        let mut body = json!({ "message": message });
        if let Some(field) = e.extra.get("field") {
            body["field"] = field.clone();
        }
        (e.status, Json(body)).into_response()
    }
}

type GitLabResult<T> = Result<T, GitLabError>;

fn not_found_project() -> GitLabError {
    GitLabError(ApiError::new(StatusCode::NOT_FOUND, "not_found", "Project Not Found"))
}

/// `{project}` is `1` or the project's name (URL-encoded, so `group%2Fname` works too).
fn check_project(st: &AppState, project: &str) -> GitLabResult<()> {
    if project == "1" || project == st.project {
        Ok(())
    } else {
        Err(not_found_project())
    }
}

fn project_json(st: &AppState) -> Value {
    json!({
        "id": 1,
        "name": st.project,
        "path": st.project,
        "path_with_namespace": st.project,
        "name_with_namespace": st.project,
        "web_url": format!("{}/{}", st.external_url, st.project),
        "default_branch": st.branch,
    })
}

async fn project(st: Service, Path(project): Path<String>) -> GitLabResult<Json<Value>> {
    check_project(&st, &project)?;
    Ok(Json(project_json(&st)))
}

fn page_param(q: &HashMap<String, String>, key: &str, default: usize, max: usize) -> GitLabResult<usize> {
    match q.get(key) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| n.min(max))
            .ok_or_else(|| GitLabError(ApiError::bad_request(key, format!("{key} is invalid")))),
    }
}

/// `GET …/environments?name=&search=&states=&page=&per_page=`: a bare array, paginated.
async fn list(
    st: Service,
    Path(project): Path<String>,
    Query(mut q): Query<HashMap<String, String>>,
) -> GitLabResult<Response> {
    check_project(&st, &project)?;
    // The Link URLs repeat the whole query (filters included) with another page, under --external-url (never the
    // request's Host header, which a client would follow with its token).
    let link_query = q.clone();
    let base = st.external_url.clone();
    let page = page_param(&q, "page", 1, usize::MAX)?;
    let per_page = page_param(&q, "per_page", 20, 100)?;
    let filters: HashMap<String, String> =
        ["name", "search", "states"].into_iter().filter_map(|k| q.remove(k).map(|v| (k.to_owned(), v))).collect();
    let all = service::list(&st, native::filter(&filters)?).await?;
    let total = all.len();
    let pages = total.div_ceil(per_page).max(1);
    let items: Vec<EnvironmentView> = all.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut resp = (StatusCode::OK, Json(items)).into_response();
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("x-total", total.to_string());
    set("x-total-pages", pages.to_string());
    set("x-page", page.to_string());
    set("x-per-page", per_page.to_string());
    set("x-next-page", if page < pages { (page + 1).to_string() } else { String::new() });
    set("x-prev-page", if page > 1 { (page - 1).to_string() } else { String::new() });
    // Link: absolute URLs of the same query with another page.
    let path = format!("/api/v4/projects/{project}/environments");
    let mut query: Vec<(String, String)> =
        link_query.into_iter().filter(|(k, _)| k != "page" && k != "per_page").collect();
    query.sort();
    let url = |p: usize| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("page", &p.to_string());
        pairs.append_pair("per_page", &per_page.to_string());
        format!("{base}{path}?{}", pairs.finish())
    };
    let mut links = Vec::new();
    if page < pages {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
    }
    links.push(format!("<{}>; rel=\"first\"", url(1)));
    links.push(format!("<{}>; rel=\"last\"", url(pages)));
    set("link", links.join(", "));
    Ok(resp)
}

/// A JSON or form-encoded body as a map of fields (GitLab accepts both).
fn body_fields(headers: &HeaderMap, body: &Bytes) -> GitLabResult<Map<String, Value>> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        return Ok(url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(GitLabError(ApiError::bad_request("body", "the body must be a JSON object or a form"))),
    }
}

/// Keeps the fields the native request takes (GitLab ignores the ones it does not know); `protected` from a form is
/// text.
fn keep(mut fields: Map<String, Value>, known: &[&str]) -> Value {
    fields.retain(|k, _| known.contains(&k.as_str()));
    if let Some(Value::String(p)) = fields.get("protected").cloned() {
        fields.insert("protected".into(), Value::Bool(p == "true" || p == "1"));
    }
    Value::Object(fields)
}

fn parse_body<T: serde::de::DeserializeOwned>(v: Value) -> GitLabResult<T> {
    serde_json::from_value(v).map_err(|e| GitLabError(ApiError::bad_request("body", e.to_string())))
}

async fn create(st: Service, Path(project): Path<String>, headers: HeaderMap, body: Bytes) -> GitLabResult<Response> {
    check_project(&st, &project)?;
    let fields = keep(
        body_fields(&headers, &body)?,
        &["name", "external_url", "tier", "upstream", "environmentGroup", "argocd"],
    );
    let input = native::new_environment(parse_body(fields)?)?;
    Ok((StatusCode::CREATED, Json(service::create(&st, input).await?.outcome)).into_response())
}

async fn get_env(st: Service, Path((project, env)): Path<(String, String)>) -> GitLabResult<Json<EnvironmentView>> {
    check_project(&st, &project)?;
    Ok(Json(service::get(&st, &env).await?))
}

async fn update(
    st: Service,
    Path((project, env)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> GitLabResult<Json<EnvironmentView>> {
    check_project(&st, &project)?;
    let fields = keep(
        body_fields(&headers, &body)?,
        &["external_url", "tier", "upstream", "environmentGroup", "protected", "argocd"],
    );
    let change = native::change(parse_body(fields)?)?;
    Ok(Json(service::update(&st, &env, change).await?.outcome))
}

async fn delete_env(st: Service, Path((project, env)): Path<(String, String)>) -> GitLabResult<Response> {
    check_project(&st, &project)?;
    Ok(native::deleted(service::delete(&st, &env).await?.commit))
}

async fn stop(
    st: Service,
    Path((project, env)): Path<(String, String)>,
    Query(mut q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> GitLabResult<Json<EnvironmentView>> {
    check_project(&st, &project)?;
    // `force` may come in the query or the body.
    if let Some(force) = body_fields(&headers, &body)?.get("force") {
        q.insert("force".into(), force.as_str().map_or_else(|| force.to_string(), str::to_owned));
    }
    let force = native::bool_param(&q, "force", false)?;
    Ok(Json(service::stop(&st, &env, force).await?.outcome))
}

async fn stop_stale(
    st: Service,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> GitLabResult<Json<Value>> {
    check_project(&st, &project)?;
    let raw = q.get("before").ok_or_else(|| ApiError::bad_request("before", "before is required"))?;
    service::stop_stale(&st, native::parse_time("before", raw)?).await?;
    Ok(Json(json!({ "message": "Successfully requested stop for all stale environments" })))
}

/// GitLab answers 202 Accepted, with the lists (and neither Railyard's `commit` nor `dry_run`).
async fn review_apps(
    st: Service,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> GitLabResult<Response> {
    check_project(&st, &project)?;
    let (before, limit, dry_run) = native::review_apps_query(&q)?;
    let answer = service::delete_review_apps(&st, before, limit, dry_run).await?;
    Ok((StatusCode::ACCEPTED, Json(answer.deleted)).into_response())
}

/// GitLab's error shape for every error answer under `/api/v4` that its handlers did not shape: an unknown route is
/// `{"message": "404 Not Found"}`, a method the route does not take `{"message": "405 Method Not Allowed"}`, no or
/// a bad token `{"message": "401 Unauthorized"}`; others (body limits, path rejections) carry Railyard's reason.
pub fn envelope(status: StatusCode, body: &Bytes) -> Option<Body> {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    if parsed.as_ref().is_some_and(|v| v["message"].is_string()) {
        return None;
    }
    let reason = || format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let message = match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::UNAUTHORIZED => reason(),
        _ => match &parsed {
            Some(v) => v["error"].as_str().map(str::to_owned),
            None => std::str::from_utf8(body).ok().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned),
        }
        .unwrap_or_else(reason),
    };
    Some(Body::from(json!({ "message": message }).to_string()))
}
