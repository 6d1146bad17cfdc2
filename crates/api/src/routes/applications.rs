//! Applications: their releases, team and repository.

use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{ApplicationUpdated, UpdateApplication};
use railyard_manifest::{state, AppName, Error, Request, TeamName};
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::extract::{JsonBody, Params};
use crate::service::Service;
use crate::service::{self, Written};

type Reply = ApiResult<(StatusCode, Json<Value>)>;

#[utoipa::path(
    put,
    path = "/applications/{app}",
    summary = "Set an application's team or repository",
    params(("app" = String, Path, description = "application")),
    request_body = railyard_wire::UpdateApplication,
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn update(
    st: Service,
    p: Params,
    JsonBody(b): JsonBody<railyard_wire::UpdateApplication>,
) -> ApiResult<Json<Written<ApplicationUpdated>>> {
    let request = UpdateApplication {
        application: p.get::<AppName, _>("app")?,
        team: b.team.as_deref().map(TeamName::parse).transpose().map_err(Error::from)?,
        repository: b.repository,
    };
    Ok(Json(service::write(&st, Request::UpdateApplication(request)).await?))
}

#[utoipa::path(
    get,
    path = "/applications/{app}/releases",
    summary = "An application's releases",
    params(("app" = String, Path, description = "application")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn releases(st: Service, p: Params) -> Reply {
    let app = p.get::<AppName, _>("app")?;
    let body = st
        .read(move |s| {
            if !state::app_exists(s, &app)? {
                return Err(Error::not_found("application", &app));
            }
            let mut releases = Vec::new();
            for v in state::release_versions(s, &app)?.into_iter().rev() {
                releases.extend(state::release(s, &app, v)?);
            }
            Ok(json!({
                "application": app,
                "team": state::app_team(s, &app)?,
                "repository": state::app_repository(s, &app)?,
                "releases": releases,
            }))
        })
        .await?;
    Ok((StatusCode::OK, Json(body)))
}
