//! Aviator's release API, served as Railyard's own at `/api/releases/{project}/…` (a project is an application):
//! paths and bodies onto [`service::candidates`], errors in Aviator's words (`Invalid release candidate version`,
//! `Release not found`, …).

use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{DeploymentRecord, ReleaseCandidateCreated};
use railyard_manifest::AppName;
use railyard_wire::{CreateReleaseCandidate, DeployReleaseCandidate, SetDeploymentStatus};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};
use crate::service::candidates as service;
use crate::service::{Service, Written};

type Reply<T> = ApiResult<(StatusCode, Json<Written<T>>)>;

/// Aviator's wording for what is not found.
fn aviator(mut e: ApiError) -> ApiError {
    if e.status == StatusCode::NOT_FOUND {
        let message = match e.extra.get("what").and_then(Value::as_str) {
            Some("release environment") => Some("Release environment not found"),
            Some("release") => Some("Release not found"),
            Some("repository") => Some("Repository not found"),
            _ => None,
        };
        if let Some(m) = message {
            e.message = m.to_owned();
        }
    }
    e
}

#[utoipa::path(
    post,
    path = "/releases/{project}/releases/{rc}",
    summary = "Create a release candidate",
    params(("project" = String, Path, description = "project (an application)"), ("rc" = String, Path, description = "release candidate version (<version>-rc<N>)")),
    request_body = CreateReleaseCandidate,
    responses((status = 201, description = "success", body = Object)),
)]
/// `POST /api/releases/{project}/releases/{rc}` → 201 (200: the same candidate again).
pub async fn create(
    st: Service,
    p: Params,
    JsonBody(b): JsonBody<CreateReleaseCandidate>,
) -> Reply<ReleaseCandidateCreated> {
    let project = p.get::<AppName, _>("project")?;
    let written = service::create(&st, project, p.raw("rc").to_owned(), b).await.map_err(aviator)?;
    let status = if written.outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written)))
}

#[utoipa::path(
    post,
    path = "/releases/{project}/environments/{env}/deployments",
    summary = "Deploy a release candidate",
    params(("project" = String, Path, description = "project (an application)"), ("env" = String, Path, description = "environment name (or GitLab id)")),
    request_body = DeployReleaseCandidate,
    responses((status = 201, description = "success", body = Object)),
)]
/// `POST /api/releases/{project}/environments/{env}/deployments` → 201 with the record (status `pending`); the
/// deploy is in the same commit. Locked: 409 with the locks.
pub async fn deploy(st: Service, p: Params, JsonBody(b): JsonBody<DeployReleaseCandidate>) -> Reply<DeploymentRecord> {
    let application = p.get::<AppName, _>("project")?;
    let written =
        service::deploy(&st, application, p.raw("env"), b.release_candidate_version).await.map_err(aviator)?;
    Ok((StatusCode::CREATED, Json(written)))
}

#[utoipa::path(
    patch,
    path = "/releases/{project}/environments/{env}/deployments",
    summary = "Set a deployment's status",
    params(("project" = String, Path, description = "project (an application)"), ("env" = String, Path, description = "environment name (or GitLab id)")),
    request_body = SetDeploymentStatus,
    responses((status = 200, description = "success", body = Object)),
)]
/// `PATCH …/deployments` → 200; records a deployment (without deploying) if there is none for the candidate.
pub async fn set_status(st: Service, p: Params, JsonBody(b): JsonBody<SetDeploymentStatus>) -> Reply<DeploymentRecord> {
    let application = p.get::<AppName, _>("project")?;
    let (env, rc) = (p.raw("env"), b.release_candidate_version);
    Ok((StatusCode::OK, Json(service::set_status(&st, application, env, rc, &b.status).await.map_err(aviator)?)))
}
