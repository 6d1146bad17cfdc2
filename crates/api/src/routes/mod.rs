//! The HTTP surface: one module per resource; handlers extract, validate into a typed request, hand it to the
//! writer or a read, and map the result.

mod applications;
mod candidates;
mod compat;
mod deploy;
mod environments;
mod flows;
mod gitlab;
mod health;
mod locks;
mod northflank;
pub mod openapi;
mod releases;
mod trains;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use git2::Repository;
use railyard_manifest::{Envelope, Identity, Request, Stage};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::writer::{Applied, Writer};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub writer: Writer,
    pub repo_dir: PathBuf,
    pub branch: String,
    /// The embedded exporter's status (None: a separate `railyard-export` writes its status file).
    pub export_status: Option<Arc<Mutex<railyard_export::Status>>>,
    pub metrics: Arc<crate::metrics::ApiMetrics>,
    /// `--build-webhook`: where a release candidate with `trigger_build_workflow` is announced.
    pub build_webhook: Option<String>,
    /// `--project`: the one project the GitLab-compatible surface serves (id 1).
    pub project: String,
    /// `--minimize-exported-data`: a train that changes nothing makes no commit and no tag.
    pub minimize_exported_data: bool,
}

impl AppState {
    /// Runs `f` on the current state of the branch (blocking git reads off the async threads).
    pub async fn read<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Stage<'_>) -> railyard_manifest::Result<T> + Send + 'static,
    {
        self.with_stage(move |stage| f(stage).map_err(ApiError::from)).await
    }

    /// Runs `f` on a throwaway stage over the branch head: it may edit, nothing is committed.
    pub async fn with_stage<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Stage<'_>) -> ApiResult<T> + Send + 'static,
    {
        let dir = self.repo_dir.clone();
        let branch_ref = railyard_export::branch_ref(&self.branch);
        tokio::task::spawn_blocking(move || -> ApiResult<T> {
            let repo = Repository::open_bare(&dir)?;
            let tree = match repo.find_reference(&branch_ref) {
                Ok(r) => Some(r.peel_to_tree()?),
                Err(e) if e.code() == git2::ErrorCode::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            let mut stage = Stage::new(&repo, tree);
            f(&mut stage)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Applies `request` to the current state without writing anything (dry runs and prognoses).
    pub async fn simulate(&self, request: Request) -> ApiResult<railyard_manifest::Outcome> {
        let mut envelope = Envelope { author: Identity::default(), at: now(), request };
        self.with_stage(move |stage| railyard_manifest::apply(stage, &mut envelope).map_err(ApiError::from)).await
    }

    /// Writes manifests into the object store (before their request is queued: the request and its commit trailer
    /// name them by blob id); returns the blob ids by environment.
    pub async fn write_blobs(
        &self,
        contents: std::collections::BTreeMap<railyard_manifest::EnvName, Vec<u8>>,
    ) -> ApiResult<std::collections::BTreeMap<railyard_manifest::EnvName, String>> {
        let dir = self.repo_dir.clone();
        tokio::task::spawn_blocking(move || -> Result<_, git2::Error> {
            let repo = Repository::open_bare(&dir)?;
            contents.into_iter().map(|(env, body)| Ok((env, repo.blob(&body)?.to_string()))).collect()
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
    }

    /// Queues `request` for the writer and waits for its commit. With auth on, the caller's roles must allow it (403
    /// otherwise) and the caller is its author.
    pub async fn write(&self, request: Request) -> ApiResult<Applied> {
        let author = match crate::auth::caller() {
            Some(caller) => {
                self.authorize(&caller, &request).await?;
                caller.identity
            }
            None => Identity::default(),
        };
        let envelope = Envelope { author, at: now(), request };
        self.writer.submit(envelope).await
    }

    /// Checks `request` against the caller's roles: the action it is, on the environments and team it touches.
    fn authorize<'a>(
        &'a self,
        caller: &'a crate::auth::Caller,
        request: &'a Request,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<()>> + Send + 'a>> {
        use crate::auth::{forbidden, Action};
        use railyard_manifest::request::{
            CreateEnvironment, CreateLock, DeleteEnvironment, DeleteLock, Deploy, DeployReleaseCandidate,
            SetDeploymentStatus, StopEnvironment, UpdateEnvironment,
        };
        use railyard_manifest::{state, LockTarget, TrainTarget};
        Box::pin(async move {
            let need = |ok: bool, what: String| if ok { Ok(()) } else { Err(forbidden(what)) };
            let app_team = |app: railyard_manifest::AppName| async move {
                self.read(move |s| Ok(state::app_team(s, &app)?.map(|t| t.to_string()))).await
            };
            let group_envs = |g: railyard_manifest::GroupName| async move {
                self.read(move |s| {
                    Ok(state::group_environments(s, &g)?.into_iter().map(|(e, _)| e.to_string()).collect::<Vec<_>>())
                })
                .await
            };
            match request {
                Request::CreateEnvironment(CreateEnvironment { name, .. })
                | Request::UpdateEnvironment(UpdateEnvironment { name, .. })
                | Request::StopEnvironment(StopEnvironment { name, .. })
                | Request::DeleteEnvironment(DeleteEnvironment { name }) => {
                    need(caller.may(Action::Environment, Some(name.as_str()), None), format!("environment on {name}"))
                }
                Request::StopStaleEnvironments(_) | Request::DeleteReviewApps(_) => {
                    need(caller.may_everywhere(Action::Environment), "environment on every environment".into())
                }
                Request::CreateRelease(r) => {
                    let team = match &r.team {
                        Some(t) => Some(t.to_string()),
                        None => app_team(r.application.clone()).await?,
                    };
                    need(caller.may(Action::Release, None, team.as_deref()), format!("release of {}", r.application))
                }
                Request::CreateReleaseCandidate(r) => {
                    let team = app_team(r.application.clone()).await?;
                    need(caller.may(Action::Release, None, team.as_deref()), format!("release of {}", r.application))
                }
                Request::UpdateApplication(r) => {
                    let current = app_team(r.application.clone()).await?;
                    let new = r.team.as_ref().map(ToString::to_string);
                    need(
                        caller.may(Action::Release, None, current.as_deref())
                            && caller.may(Action::Release, None, new.as_deref()),
                        format!("release of {}", r.application),
                    )
                }
                Request::Deploy(Deploy { application, environment, .. })
                | Request::DeployReleaseCandidate(DeployReleaseCandidate { application, environment, .. })
                | Request::SetDeploymentStatus(SetDeploymentStatus { application, environment, .. }) => {
                    let team = app_team(application.clone()).await?;
                    let ok = caller.may(Action::Deploy, Some(environment.as_str()), team.as_deref());
                    need(ok, format!("deploy of {application} to {environment}"))
                }
                Request::CreateLock(CreateLock { target, .. }) | Request::DeleteLock(DeleteLock { target, .. }) => {
                    let (envs, team) = match target {
                        LockTarget::Environment { environment } => (vec![environment.to_string()], None),
                        LockTarget::Application { environment, application } => {
                            (vec![environment.to_string()], app_team(application.clone()).await?)
                        }
                        LockTarget::Team { environment, team } => {
                            (vec![environment.to_string()], Some(team.to_string()))
                        }
                        LockTarget::EnvironmentGroup { group } => (group_envs(group.clone()).await?, None),
                    };
                    let ok = envs.iter().all(|e| caller.may(Action::Lock, Some(e), team.as_deref()));
                    need(ok, format!("lock on {}", envs.join(", ")))
                }
                Request::ReleaseTrain(r) => {
                    let envs = match &r.target {
                        TrainTarget::Environment { environment } => vec![environment.to_string()],
                        TrainTarget::EnvironmentGroup { group } => group_envs(group.clone()).await?,
                    };
                    // A train without `team` moves every team's applications.
                    let ok = envs.iter().all(|e| match &r.team {
                        Some(t) => caller.may(Action::Train, Some(e), Some(t.as_str())),
                        None => caller.may_all_teams(Action::Train, e),
                    });
                    let teams = r.team.as_ref().map_or_else(|| "every team".to_owned(), |t| format!("team {t}"));
                    need(ok, format!("a release train of {teams} to {}", envs.join(", ")))
                }
                Request::PutFlow(r) => need(caller.may(Action::Flow, None, None), format!("release flow {}", r.flow)),
                Request::RunFlow(r) => {
                    need(caller.may(Action::Flow, None, None), format!("release flow {}", r.flow))?;
                    for step in &r.steps {
                        match &step.action {
                            railyard_manifest::flow::Action::Request { request } => {
                                self.authorize(caller, request).await?;
                            }
                            railyard_manifest::flow::Action::DeployCandidate { application, environment, .. } => {
                                let team = app_team(application.clone()).await?;
                                let ok = caller.may(Action::Deploy, Some(environment.as_str()), team.as_deref());
                                need(ok, format!("deploy of {application} to {environment}"))?;
                            }
                            railyard_manifest::flow::Action::Tag { .. } => {}
                        }
                    }
                    Ok(())
                }
            }
        })
    }
}

/// Now as RFC 3339 UTC, whole seconds.
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The answer to a write: its outcome with the commit.
pub fn written(status: StatusCode, applied: Applied) -> (StatusCode, Json<Value>) {
    let mut body = serde_json::to_value(&applied.outcome).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut body {
        map.insert("commit".into(), json!(applied.commit.map(|c| c.to_string())));
    }
    (status, Json(body))
}

/// The answer to a dry run: what the write would do, `commit: null`, and `flag` (the surface's name for "dry run")
/// true.
pub fn dry_run_answer(outcome: &railyard_manifest::Outcome, flag: &str) -> (StatusCode, Json<Value>) {
    let mut body = serde_json::to_value(outcome).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut body {
        m.insert("commit".into(), Value::Null);
        m.insert(flag.into(), json!(true));
    }
    (StatusCode::OK, Json(body))
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    router_with_auth(state, max_body_bytes, None)
}

/// The router, with `--auth-tokens` (None: auth off).
pub fn router_with_auth(state: AppState, max_body_bytes: usize, tokens: Option<Arc<crate::auth::Tokens>>) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/release", post(releases::create))
        .route("/applications/{app}", put(applications::update))
        .route("/applications/{app}/releases", get(applications::releases))
        .route("/overview", get(environments::overview))
        .route("/environments", get(environments::list).post(environments::create))
        .route("/environments/stop_stale", post(environments::stop_stale))
        .route("/environments/review_apps", delete(environments::delete_review_apps))
        .route("/environments/{env}", get(environments::get).put(environments::update).delete(environments::delete))
        .route("/environments/{env}/stop", post(environments::stop))
        .route("/environments/{env}/applications/{app}/deploy", put(deploy::deploy))
        .route("/environments/{env}/locks", get(locks::list_env))
        .route("/environments/{env}/locks/{lock}", get(locks::get_env).put(locks::put_env).delete(locks::delete_env))
        .route("/environments/{env}/applications/{app}/locks", get(locks::list_app))
        .route(
            "/environments/{env}/applications/{app}/locks/{lock}",
            get(locks::get_app).put(locks::put_app).delete(locks::delete_app),
        )
        .route("/environments/{env}/teams/{team}/locks", get(locks::list_team))
        .route(
            "/environments/{env}/teams/{team}/locks/{lock}",
            get(locks::get_team).put(locks::put_team).delete(locks::delete_team),
        )
        .route("/environment-groups/{group}/locks/{lock}", put(locks::put_group).delete(locks::delete_group))
        .route("/release-flows/{flow}", get(flows::get).put(flows::put))
        .route("/release-flows/{flow}/runs", get(flows::runs).post(flows::run))
        .route("/release-flows/{flow}/runs/{id}", get(flows::run_record))
        .route("/releases/{project}/releases/{rc}", post(candidates::create))
        .route(
            "/releases/{project}/environments/{env}/deployments",
            post(candidates::deploy).patch(candidates::set_status),
        )
        .route("/environments/{env}/releasetrain", put(trains::environment))
        .route("/environments/{env}/releasetrain/prognosis", get(trains::prognosis))
        .route("/environment-groups/{group}/releasetrain", put(trains::group));
    // Kuberpult's paths (kuberpult-client and curl scripts), onto the same handlers.
    let kuberpult = Router::new()
        .route("/release", post(releases::create))
        .route("/environments/{env}/locks/{lock}", put(locks::put_env).delete(locks::delete_env))
        .route("/environments/{env}/applications/{app}/locks/{lock}", put(locks::put_app).delete(locks::delete_app))
        .route("/environment-groups/{group}/locks/{lock}", put(locks::put_group).delete(locks::delete_group))
        .route("/api/environments/{env}/lock/team/{team}/{lock}", put(locks::put_team).delete(locks::delete_team))
        .route("/environments/{env}/releasetrain", put(trains::environment))
        .route("/environment-groups/{group}/releasetrain", put(trains::group))
        .route("/api/environments/{env}/", post(environments::kuberpult_create));
    Router::new()
        .nest("/api/v4", gitlab::router())
        .nest("/v1", northflank::router())
        .nest("/api", api)
        .merge(kuberpult)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(tokens, crate::auth::authenticate))
        .route_layer(axum::middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::count))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(compat::reshape_errors))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that method")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::internal("internal error").into_response()
}
