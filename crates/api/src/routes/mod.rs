//! The HTTP surface: one module per resource; handlers extract, validate into a typed request, hand it to the
//! writer or a read, and map the result.

mod applications;
mod argocd;
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
use axum::Router;
use railyard_manifest::{Envelope, Identity, Request, Stage};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
        let branch_ref = railyard_refs::branch_ref(&self.branch);
        tokio::task::spawn_blocking(move || cache.get(railyard_store::open(&dir)?, &branch_ref))
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
        let branch_ref = railyard_refs::branch_ref(&self.branch);
        tokio::task::spawn_blocking(move || -> ApiResult<T> {
            let repo = railyard_store::open(&dir)?;
            let odb = repo.odb()?;
            // Ahead of the loose and packed backends, so every write lands here and is dropped with it.
            let _scratch = odb.add_new_mempack_backend(1000)?;
            let tree = railyard_refs::target(&repo, &branch_ref)?.map(|c| repo.find_commit(c)?.tree()).transpose()?;
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
    let api = OpenApiRouter::new()
        .routes(routes!(openapi::serve))
        .routes(routes!(releases::create))
        .routes(routes!(applications::update))
        .routes(routes!(applications::releases))
        .routes(routes!(lifecycle::delete_app))
        .routes(routes!(lifecycle::undeploy))
        .routes(routes!(lifecycle::remove_from_env))
        .routes(routes!(lifecycle::rollback))
        .routes(routes!(environments::overview))
        .routes(routes!(environments::list, environments::create))
        .routes(routes!(environments::stop_stale))
        .routes(routes!(environments::delete_review_apps))
        .routes(routes!(environments::get, environments::update, environments::delete))
        .routes(routes!(environments::stop))
        .routes(routes!(argocd::get))
        .routes(routes!(deploy::deploy))
        .routes(routes!(locks::list_env))
        .routes(routes!(locks::get_env, locks::put_env, locks::delete_env))
        .routes(routes!(locks::list_app))
        .routes(routes!(locks::get_app, locks::put_app, locks::delete_app))
        .routes(routes!(locks::list_team))
        .routes(routes!(locks::get_team, locks::put_team, locks::delete_team))
        .routes(routes!(locks::put_group, locks::delete_group))
        .routes(routes!(flows::get, flows::put))
        .routes(routes!(flows::runs, flows::run))
        .routes(routes!(flows::run_record))
        .routes(routes!(compat::aviator::create))
        .routes(routes!(compat::aviator::deploy, compat::aviator::set_status))
        .routes(routes!(trains::environment))
        .routes(routes!(trains::prognosis))
        .routes(routes!(trains::group))
        .routes(routes!(history::all))
        .routes(routes!(history::environment))
        .routes(routes!(history::application))
        .routes(routes!(history::environment_application))
        .routes(routes!(history::commit_deployments))
        .routes(routes!(history::deliveries));
    // Everything the document describes, registered with its operation; the peers' surfaces are not in it.
    let documented = OpenApiRouter::with_openapi(openapi::frame())
        .nest("/api", api)
        .routes(routes!(ui::overview))
        .routes(routes!(ui::app))
        .routes(routes!(ui::env))
        .routes(routes!(ui::train_page))
        .routes(routes!(ui::locks_page))
        .routes(routes!(ui::flows_page))
        .routes(routes!(ui::flow_run_page))
        .routes(routes!(ui::asset))
        .merge(ui::signin::router(auth.clone()))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics));
    let (documented, doc) = documented.split_for_parts();
    Router::new()
        .nest("/api/v4", compat::gitlab::router())
        .nest("/v1", compat::northflank::router())
        .merge(documented)
        .merge(compat::kuberpult::router())
        .layer(axum::Extension(openapi::Document(Arc::new(openapi::finish(doc)))))
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
