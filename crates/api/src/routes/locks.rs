//! Environment, application, team and environment-group locks.

use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{CreateLock, DeleteLock, LockChanged};
use railyard_manifest::{state, AppName, EnvName, Error, GroupName, LockId, LockTarget, Request, TeamName};
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::extract::{OptionalJson, Params};
use crate::service::Service;
use crate::service::{self, Written};

type Reply = ApiResult<(StatusCode, Json<Value>)>;

fn env_target(p: &Params) -> ApiResult<LockTarget> {
    Ok(LockTarget::Environment { environment: p.get::<EnvName, _>("env")? })
}

fn app_target(p: &Params) -> ApiResult<LockTarget> {
    Ok(LockTarget::Application { environment: p.get::<EnvName, _>("env")?, application: p.get::<AppName, _>("app")? })
}

fn team_target(p: &Params) -> ApiResult<LockTarget> {
    Ok(LockTarget::Team { environment: p.get::<EnvName, _>("env")?, team: p.get::<TeamName, _>("team")? })
}

fn group_target(p: &Params) -> ApiResult<LockTarget> {
    Ok(LockTarget::EnvironmentGroup { group: p.get::<GroupName, _>("group")? })
}

/// `created` is the status when the lock is new (Kuberpult answers 201 to a new group lock); re-locking what is
/// already so answers 200.
async fn put(
    st: Service,
    p: Params,
    target: LockTarget,
    body: railyard_wire::CreateLock,
    created: StatusCode,
) -> Reply {
    let request = CreateLock { target, lock_id: p.get::<LockId, _>("lock")?, message: body.message };
    let written: Written<LockChanged> = service::write(&st, Request::CreateLock(request)).await?;
    let status = if written.outcome.changed { created } else { StatusCode::OK };
    Ok((status, Json(json!(written))))
}

async fn delete(st: Service, p: Params, target: LockTarget) -> Reply {
    let request = DeleteLock { target, lock_id: p.get::<LockId, _>("lock")? };
    let written: Written<LockChanged> = service::write(&st, Request::DeleteLock(request)).await?;
    Ok((StatusCode::OK, Json(json!(written))))
}

/// Every lock of a target, across its environments.
fn locks_of(
    stage: &railyard_manifest::Stage<'_>,
    target: &LockTarget,
) -> railyard_manifest::Result<Vec<railyard_manifest::Lock>> {
    let mut out = Vec::new();
    for (_, dir) in state::lock_dirs(stage, target)? {
        out.extend(state::locks(stage, &dir)?);
    }
    Ok(out)
}

async fn list(st: Service, target: LockTarget) -> Reply {
    let locks = st.read(move |s| locks_of(s, &target)).await?;
    Ok((StatusCode::OK, Json(json!({ "locks": locks }))))
}

async fn get_one(st: Service, p: Params, target: LockTarget) -> Reply {
    let id = p.get::<LockId, _>("lock")?;
    let lock = st
        .read(move |s| {
            locks_of(s, &target)?.into_iter().find(|l| l.id == id).ok_or_else(|| Error::not_found("lock", &id))
        })
        .await?;
    Ok((StatusCode::OK, Json(json!(lock))))
}

#[utoipa::path(
    put,
    path = "/environments/{env}/locks/{lock}",
    summary = "Lock an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("lock" = String, Path, description = "lock id")),
    request_body = railyard_wire::CreateLock,
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn put_env(st: Service, p: Params, OptionalJson(b): OptionalJson<railyard_wire::CreateLock>) -> Reply {
    let t = env_target(&p)?;
    put(st, p, t, b, StatusCode::OK).await
}
#[utoipa::path(
    delete,
    path = "/environments/{env}/locks/{lock}",
    summary = "Unlock an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("lock" = String, Path, description = "lock id")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn delete_env(st: Service, p: Params) -> Reply {
    let t = env_target(&p)?;
    delete(st, p, t).await
}
#[utoipa::path(
    get,
    path = "/environments/{env}/locks",
    summary = "An environment's locks",
    params(("env" = String, Path, description = "environment name (or GitLab id)")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn list_env(st: Service, p: Params) -> Reply {
    list(st, env_target(&p)?).await
}
#[utoipa::path(
    get,
    path = "/environments/{env}/locks/{lock}",
    summary = "An environment lock",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("lock" = String, Path, description = "lock id")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn get_env(st: Service, p: Params) -> Reply {
    let t = env_target(&p)?;
    get_one(st, p, t).await
}

#[utoipa::path(
    put,
    path = "/environments/{env}/applications/{app}/locks/{lock}",
    summary = "Lock an application in an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("app" = String, Path, description = "application"), ("lock" = String, Path, description = "lock id")),
    request_body = railyard_wire::CreateLock,
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn put_app(st: Service, p: Params, OptionalJson(b): OptionalJson<railyard_wire::CreateLock>) -> Reply {
    let t = app_target(&p)?;
    put(st, p, t, b, StatusCode::OK).await
}
#[utoipa::path(
    delete,
    path = "/environments/{env}/applications/{app}/locks/{lock}",
    summary = "Unlock an application",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("app" = String, Path, description = "application"), ("lock" = String, Path, description = "lock id")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn delete_app(st: Service, p: Params) -> Reply {
    let t = app_target(&p)?;
    delete(st, p, t).await
}
#[utoipa::path(
    get,
    path = "/environments/{env}/applications/{app}/locks",
    summary = "An application's locks in an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("app" = String, Path, description = "application")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn list_app(st: Service, p: Params) -> Reply {
    list(st, app_target(&p)?).await
}
#[utoipa::path(
    get,
    path = "/environments/{env}/applications/{app}/locks/{lock}",
    summary = "An application lock",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("app" = String, Path, description = "application"), ("lock" = String, Path, description = "lock id")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn get_app(st: Service, p: Params) -> Reply {
    let t = app_target(&p)?;
    get_one(st, p, t).await
}

#[utoipa::path(
    put,
    path = "/environments/{env}/teams/{team}/locks/{lock}",
    summary = "Lock a team in an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("team" = String, Path, description = "team"), ("lock" = String, Path, description = "lock id")),
    request_body = railyard_wire::CreateLock,
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn put_team(st: Service, p: Params, OptionalJson(b): OptionalJson<railyard_wire::CreateLock>) -> Reply {
    let t = team_target(&p)?;
    put(st, p, t, b, StatusCode::OK).await
}
#[utoipa::path(
    delete,
    path = "/environments/{env}/teams/{team}/locks/{lock}",
    summary = "Unlock a team",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("team" = String, Path, description = "team"), ("lock" = String, Path, description = "lock id")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn delete_team(st: Service, p: Params) -> Reply {
    let t = team_target(&p)?;
    delete(st, p, t).await
}
#[utoipa::path(
    get,
    path = "/environments/{env}/teams/{team}/locks",
    summary = "A team's locks in an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("team" = String, Path, description = "team")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn list_team(st: Service, p: Params) -> Reply {
    list(st, team_target(&p)?).await
}
#[utoipa::path(
    get,
    path = "/environments/{env}/teams/{team}/locks/{lock}",
    summary = "A team lock",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("team" = String, Path, description = "team"), ("lock" = String, Path, description = "lock id")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn get_team(st: Service, p: Params) -> Reply {
    let t = team_target(&p)?;
    get_one(st, p, t).await
}

#[utoipa::path(
    put,
    path = "/environment-groups/{group}/locks/{lock}",
    summary = "Lock every environment of a group",
    params(("group" = String, Path, description = "environment group"), ("lock" = String, Path, description = "lock id")),
    request_body = railyard_wire::CreateLock,
    responses((status = 201, description = "success", body = Object)),
)]
/// Kuberpult answers 201 to a new group lock.
pub async fn put_group(st: Service, p: Params, OptionalJson(b): OptionalJson<railyard_wire::CreateLock>) -> Reply {
    let t = group_target(&p)?;
    put(st, p, t, b, StatusCode::CREATED).await
}
#[utoipa::path(
    delete,
    path = "/environment-groups/{group}/locks/{lock}",
    summary = "Unlock a group",
    params(("group" = String, Path, description = "environment group"), ("lock" = String, Path, description = "lock id")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn delete_group(st: Service, p: Params) -> Reply {
    let t = group_target(&p)?;
    delete(st, p, t).await
}
