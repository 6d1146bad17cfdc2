//! The deployment history, Kuberpult's commit deployments, and the webhook deliveries.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::{layout, state, AppName, EnvName};
use serde_json::{json, Value};

use railyard_wire::HistoryPage;

use crate::error::{ApiError, ApiResult};
use crate::history::{Before, Filter, HistoryError};
use crate::service::Service;

/// Entries a page has without `?limit=`, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

/// An environment of a release's application: its name, the version deployed, whether that is the release or newer.
type EnvDeployment = (String, Option<u64>, bool);

type Params = Query<HashMap<String, String>>;

#[utoipa::path(
    get,
    path = "/history",
    summary = "Deployment history, newest first",
    params(("limit" = Option<String>, Query, description = "entries, 1-500 (default 50)"), ("before" = Option<String>, Query, description = "only entries older than this commit or entry id (next_before of the previous page)")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn all(st: Service, Query(q): Params) -> ApiResult<Json<HistoryPage>> {
    page(st, Filter::default(), q).await
}

#[utoipa::path(
    get,
    path = "/environments/{env}/history",
    summary = "An environment's history",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("limit" = Option<String>, Query, description = "entries, 1-500 (default 50)"), ("before" = Option<String>, Query, description = "only entries older than this commit or entry id (next_before of the previous page)")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn environment(st: Service, Path(env): Path<String>, Query(q): Params) -> ApiResult<Json<HistoryPage>> {
    let env = named(EnvName::parse(&env))?;
    page(st, Filter { environment: Some(env.to_string()), application: None }, q).await
}

#[utoipa::path(
    get,
    path = "/applications/{app}/history",
    summary = "An application's history",
    params(("app" = String, Path, description = "application"), ("limit" = Option<String>, Query, description = "entries, 1-500 (default 50)"), ("before" = Option<String>, Query, description = "only entries older than this commit or entry id (next_before of the previous page)")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn application(st: Service, Path(app): Path<String>, Query(q): Params) -> ApiResult<Json<HistoryPage>> {
    let app = named(AppName::parse(&app))?;
    page(st, Filter { environment: None, application: Some(app.to_string()) }, q).await
}

#[utoipa::path(
    get,
    path = "/environments/{env}/applications/{app}/history",
    summary = "An application's history in one environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("app" = String, Path, description = "application"), ("limit" = Option<String>, Query, description = "entries, 1-500 (default 50)"), ("before" = Option<String>, Query, description = "only entries older than this commit or entry id (next_before of the previous page)")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn environment_application(
    st: Service,
    Path((env, app)): Path<(String, String)>,
    Query(q): Params,
) -> ApiResult<Json<HistoryPage>> {
    let (env, app) = (named(EnvName::parse(&env))?, named(AppName::parse(&app))?);
    page(st, Filter { environment: Some(env.to_string()), application: Some(app.to_string()) }, q).await
}

fn named<T>(parsed: Result<T, railyard_manifest::NameError>) -> ApiResult<T> {
    parsed.map_err(|e| ApiError::from(railyard_manifest::Error::from(e)))
}

fn limit(q: &HashMap<String, String>, default: usize, max: usize) -> ApiResult<usize> {
    match q.get("limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::bad_request("limit", format!("limit must be a whole number from 1 to {max}"))),
    }
}

async fn page(st: Service, filter: Filter, q: HashMap<String, String>) -> ApiResult<Json<HistoryPage>> {
    let limit = limit(&q, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = match q.get("before") {
        None => None,
        Some(raw) => Some(Before::parse(raw).ok_or_else(|| {
            ApiError::bad_request(
                "before",
                "before must be a full commit id (40 hex digits) or an entry id <commit>:<n>",
            )
        })?),
    };
    let history = st.history.clone();
    let page = tokio::task::spawn_blocking(move || history.page(&filter, limit, before))
        .await
        .map_err(ApiError::internal)?
        .map_err(history_error)?;
    Ok(Json(HistoryPage { entries: page.entries, next_before: page.next_before }))
}

fn history_error(e: HistoryError) -> ApiError {
    match e {
        HistoryError::Git(g) => g.into(),
        HistoryError::UnknownCommit(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()).with("what", json!("commit"))
        }
        HistoryError::NotFound { what, .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()).with("what", json!(what))
        }
    }
}

#[utoipa::path(
    get,
    path = "/commit-deployments/{commit}",
    summary = "Where the release of a source commit (or a newer one) is deployed",
    params(("commit" = String, Path, description = "source commit (hex)")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/commit-deployments/{commit}` (Kuberpult's): for the source commit of a release, where that release or
/// a newer one is deployed. `deploymentStatus` is Kuberpult's shape (`DEPLOYED` / `PENDING` per app and env);
/// `applications` adds the release and the versions.
pub async fn commit_deployments(st: Service, Path(commit): Path<String>) -> ApiResult<Json<Value>> {
    let c = commit.to_ascii_lowercase();
    if !(7..=40).contains(&c.len()) && c.len() != 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("commit", "Invalid commit hash: 7 to 40 (or 64) hex digits"));
    }
    let wanted = c.clone();
    let found = st
        .read(move |stage| {
            let mut out: BTreeMap<String, (u64, Vec<EnvDeployment>)> = BTreeMap::new();
            let envs = state::environments(stage)?;
            for app in state::applications(stage)? {
                let releases = stage.list(&layout::app_releases_dir(&app))?;
                let mut first: Option<u64> = None;
                for (name, _) in releases {
                    let Ok(v) = name.parse::<u64>() else { continue };
                    let Ok(version) = railyard_manifest::Version::parse(&name) else { continue };
                    let path = layout::release_file(&app, version, layout::RELEASE_SOURCE_COMMIT_ID);
                    let source = stage.read_text(&path)?.unwrap_or_default().trim().to_ascii_lowercase();
                    let matches = !source.is_empty() && (source == wanted || source.starts_with(&wanted));
                    if matches && first.is_none_or(|f| v < f) {
                        first = Some(v);
                    }
                }
                let Some(release) = first else { continue };
                let mut per_env = Vec::new();
                for (env, _) in &envs {
                    let deployed = state::deployed_version(stage, env, &app)?.map(|v| v.get());
                    let has_manifest = stage.exists(&layout::env_app_dir(env, &app))?;
                    if deployed.is_some() || has_manifest {
                        per_env.push((env.to_string(), deployed, deployed.is_some_and(|d| d >= release)));
                    }
                }
                out.insert(app.to_string(), (release, per_env));
            }
            Ok(out)
        })
        .await?;
    if found.is_empty() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no release has source commit {c}"))
            .with("what", json!("commit")));
    }
    let mut status = serde_json::Map::new();
    let mut apps = serde_json::Map::new();
    for (app, (release, envs)) in found {
        let mut kuberpult = serde_json::Map::new();
        let mut detail = serde_json::Map::new();
        for (env, deployed, ok) in envs {
            kuberpult.insert(env.clone(), json!(if ok { "DEPLOYED" } else { "PENDING" }));
            detail.insert(
                env,
                json!({"status": if ok { "deployed" } else { "not_deployed" }, "deployed_version": deployed}),
            );
        }
        status.insert(app.clone(), json!({"deploymentStatus": kuberpult}));
        apps.insert(app, json!({"release": release, "environments": detail}));
    }
    Ok(Json(json!({"commit": c, "deploymentStatus": status, "applications": apps})))
}

#[utoipa::path(
    get,
    path = "/webhooks/deliveries",
    summary = "Webhook subscribers and their newest deliveries",
    params(("limit" = Option<String>, Query, description = "deliveries to show, 1-1000 (default 100)")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/webhooks/deliveries?limit=`: each subscriber with its pending and failed counts and cursors, and the
/// newest delivery attempts (default 100, at most 1000).
pub async fn deliveries(st: Service, Query(q): Params) -> ApiResult<Json<Value>> {
    let limit = limit(&q, 100, 1000)?;
    let Some(hooks) = st.webhooks.clone() else {
        return Ok(Json(json!({"subscribers": [], "deliveries": []})));
    };
    let history = st.history.clone();
    let v = tokio::task::spawn_blocking(move || hooks.snapshot(limit, &history)).await.map_err(ApiError::internal)?;
    Ok(Json(v))
}
