//! The HTTP surface: one module per resource; handlers extract, validate into a typed request, hand it to the
//! writer or a read, and map the result.

mod applications;
mod argocd;
mod candidates;
mod compat;
mod deploy;
pub(crate) mod environments;
mod flows;
mod health;
mod history;
mod lifecycle;
pub(crate) mod locks;
pub mod openapi;
pub(crate) mod releases;
pub(crate) mod trains;
mod ui;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::Router;
use git2::Repository;
use railyard_manifest::{Envelope, Identity, Request, Stage};

use crate::error::{ApiError, ApiResult};
use crate::writer::Writer;

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
    /// The start of the absolute URLs the API answers with (GitLab's `Link` and `web_url`), without a trailing
    /// `/`: `--external-url`, else the listen address, else empty (relative links). Never a request's `Host`.
    pub external_url: String,
    /// The deployment history (indexed commit trailers).
    pub history: Arc<crate::history::History>,
    /// `--webhooks` subscribers (None: none configured).
    pub webhooks: Option<Arc<crate::webhooks::Webhooks>>,
    /// `--argocd-repo-url` (or `--git-url`) and `--branch`: sent with Argo CD settings, so the first ones recorded
    /// in a repo come with the source the generated objects name.
    pub argocd_source: railyard_manifest::argocd::Source,
    /// `--release-versions-limit`: releases kept per application by an upload (0: all).
    pub release_versions_limit: u32,
    /// The overview of the current head, kept until the branch moves.
    pub overview: Arc<crate::overview::Cache>,
    /// `--ack after-push`: the remote this replica pushes to and follows.
    pub remote: Option<Arc<crate::replica::Remote>>,
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

    /// Every environment with what it runs, as of the branch head (kept per head commit).
    pub async fn snapshot(&self) -> ApiResult<Arc<crate::overview::Snapshot>> {
        let (dir, cache) = (self.repo_dir.clone(), self.overview.clone());
        let branch_ref = railyard_export::branch_ref(&self.branch);
        tokio::task::spawn_blocking(move || cache.get(&Repository::open_bare(&dir)?, &branch_ref))
            .await
            .map_err(|e| ApiError::internal(format!("overview task failed: {e}")))?
    }

    /// Runs `f` on a throwaway stage over the branch head: it may edit, nothing is committed, and the objects it
    /// writes stay in memory (a dry run or a refused request leaves the object store as it was).
    pub async fn with_stage<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Stage<'_>) -> ApiResult<T> + Send + 'static,
    {
        let dir = self.repo_dir.clone();
        let branch_ref = railyard_export::branch_ref(&self.branch);
        tokio::task::spawn_blocking(move || -> ApiResult<T> {
            let repo = Repository::open_bare(&dir)?;
            let odb = repo.odb()?;
            // Ahead of the loose and packed backends, so every write lands here and is dropped with it.
            let _scratch = odb.add_new_mempack_backend(1000)?;
            let tree = railyard_export::target(&repo, &branch_ref)?.map(|c| repo.find_commit(c)?.tree()).transpose()?;
            let mut stage = Stage::new(&repo, tree);
            f(&mut stage)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Applies `request` to the current state without writing anything (dry runs and prognoses).
    pub async fn simulate(&self, request: Request) -> ApiResult<railyard_manifest::Outcome> {
        self.simulate_with_blobs(request, Vec::new()).await
    }

    /// [`AppState::simulate`] for a request that names `blobs` (written to the scratch store only).
    pub async fn simulate_with_blobs(
        &self,
        request: Request,
        blobs: Vec<Vec<u8>>,
    ) -> ApiResult<railyard_manifest::Outcome> {
        let mut envelope = Envelope { author: Identity::default(), at: now(), request };
        self.with_stage(move |stage| {
            for blob in &blobs {
                stage.repo().blob(blob)?;
            }
            railyard_manifest::apply(stage, &mut envelope).map_err(ApiError::from)
        })
        .await
    }
}

/// The blob ids `contents` will have, by environment; nothing is written (the writer writes them once the caller
/// is authorized, with [`crate::service::Service::write_with_blobs`]).
pub fn blob_ids(
    contents: &std::collections::BTreeMap<railyard_manifest::EnvName, Vec<u8>>,
) -> ApiResult<std::collections::BTreeMap<railyard_manifest::EnvName, String>> {
    let hash = |body: &[u8]| git2::Oid::hash_object(git2::ObjectType::Blob, body).map(|o| o.to_string());
    contents.iter().map(|(env, body)| Ok((env.clone(), hash(body)?))).collect()
}

/// Now as RFC 3339 UTC, whole seconds.
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    router_with_auth(state, max_body_bytes, None)
}

/// The router, with the callers' sources (None: auth off).
pub fn router_with_auth(
    state: AppState,
    max_body_bytes: usize,
    auth: Option<Arc<crate::auth::Authenticator>>,
) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/release", post(releases::create))
        .route("/applications/{app}", put(applications::update))
        .route("/applications/{app}/releases", get(applications::releases))
        .route("/applications/{app}", delete(lifecycle::delete_app))
        .route("/applications/{app}/undeploy", post(lifecycle::undeploy))
        .route("/environments/{env}/applications/{app}", delete(lifecycle::remove_from_env))
        .route("/environments/{env}/applications/{app}/rollback", post(lifecycle::rollback))
        .route("/overview", get(environments::overview))
        .route("/environments", get(environments::list).post(environments::create))
        .route("/environments/stop_stale", post(environments::stop_stale))
        .route("/environments/review_apps", delete(environments::delete_review_apps))
        .route("/environments/{env}", get(environments::get).put(environments::update).delete(environments::delete))
        .route("/environments/{env}/stop", post(environments::stop))
        .route("/environments/{env}/argocd", get(argocd::get))
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
        .route("/environment-groups/{group}/releasetrain", put(trains::group))
        .route("/history", get(history::all))
        .route("/environments/{env}/history", get(history::environment))
        .route("/applications/{app}/history", get(history::application))
        .route("/environments/{env}/applications/{app}/history", get(history::environment_application))
        .route("/commit-deployments/{commit}", get(history::commit_deployments))
        .route("/webhooks/deliveries", get(history::deliveries));
    Router::new()
        .nest("/api/v4", compat::gitlab::router())
        .nest("/v1", compat::northflank::router())
        .nest("/api", api)
        .merge(compat::kuberpult::router())
        .route("/", get(ui::overview))
        .route("/app/{app}", get(ui::app))
        .route("/env/{*env}", get(ui::env))
        .route("/train", get(ui::train_page))
        .route("/locks", get(ui::locks_page))
        .route("/flows", get(ui::flows_page))
        .route("/flow-run", get(ui::flow_run_page))
        .route("/assets/{file}", get(ui::asset))
        .merge(ui::signin::router(auth.clone()))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::replica::min_commit))
        .layer(axum::middleware::from_fn_with_state(auth, crate::auth::authenticate))
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
