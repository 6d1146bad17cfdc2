//! The release lifecycle: undeploy releases, deleting an application, removing it from one environment, rollback.

use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{
    ApplicationDeleted, CreateUndeploy, DeleteApplication, RemoveFromEnvironment, RemovedFromEnvironment, Rollback,
    RolledBack, UndeployCreated,
};
use railyard_manifest::{AppName, EnvName, LockId, Request};

use super::deploy::version_value;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};
use crate::service::{self, Service, Written};

type Reply<T> = ApiResult<(StatusCode, Json<Written<T>>)>;

#[utoipa::path(
    post,
    path = "/applications/{app}/undeploy",
    summary = "Create an undeploy release",
    params(("app" = String, Path, description = "application")),
    responses((status = 201, description = "success", body = Object)),
)]
/// `POST /api/applications/{app}/undeploy`: 201 with the new undeploy release, 200 when the newest release already
/// is one.
pub async fn undeploy(st: Service, p: Params) -> Reply<UndeployCreated> {
    let request = CreateUndeploy { application: p.get::<AppName, _>("app")?, version: None };
    let written: Written<UndeployCreated> = service::write(&st, Request::CreateUndeploy(request)).await?;
    let status = if written.outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written)))
}

#[utoipa::path(
    delete,
    path = "/applications/{app}",
    summary = "Delete an application that runs its undeploy release everywhere",
    params(("app" = String, Path, description = "application")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `DELETE /api/applications/{app}`: 409 naming the environments that do not run the undeploy release yet.
pub async fn delete_app(st: Service, p: Params) -> Reply<ApplicationDeleted> {
    let request = DeleteApplication { application: p.get::<AppName, _>("app")? };
    Ok((StatusCode::OK, Json(service::write(&st, Request::DeleteApplication(request)).await?)))
}

#[utoipa::path(
    delete,
    path = "/environments/{env}/applications/{app}",
    summary = "Remove an application from an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("app" = String, Path, description = "application")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `DELETE /api/environments/{env}/applications/{app}`.
pub async fn remove_from_env(st: Service, p: Params) -> Reply<RemovedFromEnvironment> {
    let request =
        RemoveFromEnvironment { environment: p.get::<EnvName, _>("env")?, application: p.get::<AppName, _>("app")? };
    Ok((StatusCode::OK, Json(service::write(&st, Request::RemoveFromEnvironment(request)).await?)))
}

#[utoipa::path(
    post,
    path = "/environments/{env}/applications/{app}/rollback",
    summary = "Deploy an older release and lock it (deploy and lock)",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("app" = String, Path, description = "application")),
    request_body = railyard_wire::Rollback,
    responses((status = 200, description = "success", body = Object)),
)]
/// `POST /api/environments/{env}/applications/{app}/rollback`: deploy and lock in one commit.
pub async fn rollback(st: Service, p: Params, JsonBody(body): JsonBody<railyard_wire::Rollback>) -> Reply<RolledBack> {
    let lock_id = body
        .lock_id
        .as_deref()
        .map(LockId::parse)
        .transpose()
        .map_err(|e| ApiError::from(railyard_manifest::Error::from(e)).with("field", "lockId".into()))?;
    let request = Rollback {
        environment: p.get::<EnvName, _>("env")?,
        application: p.get::<AppName, _>("app")?,
        version: body.version.as_ref().map(|v| version_value(v, "version")).transpose()?,
        lock_id,
        message: body.message,
    };
    Ok((StatusCode::OK, Json(service::write(&st, Request::Rollback(request)).await?)))
}
