//! The release lifecycle: undeploy releases, deleting an application, removing it from one environment, rollback.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{CreateUndeploy, DeleteApplication, RemoveFromEnvironment, Rollback};
use railyard_manifest::{AppName, EnvName, LockId, Outcome, Request};
use serde::Deserialize;
use serde_json::Value;

use super::deploy::version_value;
use super::{written, AppState};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};

type Reply = ApiResult<(StatusCode, Json<Value>)>;

/// `POST /api/applications/{app}/undeploy`: 201 with the new undeploy release, 200 when the newest release already
/// is one.
pub async fn undeploy(State(st): State<AppState>, p: Params) -> Reply {
    let request = CreateUndeploy { application: p.get::<AppName, _>("app")?, version: None };
    let applied = st.write(Request::CreateUndeploy(request)).await?;
    let status = match &applied.outcome {
        Outcome::Undeploy(u) if !u.created => StatusCode::OK,
        _ => StatusCode::CREATED,
    };
    Ok(written(status, applied))
}

/// `DELETE /api/applications/{app}`: 409 naming the environments that do not run the undeploy release yet.
pub async fn delete_app(State(st): State<AppState>, p: Params) -> Reply {
    let request = DeleteApplication { application: p.get::<AppName, _>("app")? };
    Ok(written(StatusCode::OK, st.write(Request::DeleteApplication(request)).await?))
}

/// `DELETE /api/environments/{env}/applications/{app}`.
pub async fn remove_from_env(State(st): State<AppState>, p: Params) -> Reply {
    let request =
        RemoveFromEnvironment { environment: p.get::<EnvName, _>("env")?, application: p.get::<AppName, _>("app")? };
    Ok(written(StatusCode::OK, st.write(Request::RemoveFromEnvironment(request)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// A number or a string holding one; absent: the release before the deployed one.
    #[serde(default)]
    version: Option<Value>,
    #[serde(rename = "lockId", alias = "lock_id", default)]
    lock_id: Option<String>,
    message: String,
}

/// `POST /api/environments/{env}/applications/{app}/rollback`: deploy and lock in one commit.
pub async fn rollback(State(st): State<AppState>, p: Params, JsonBody(body): JsonBody<RollbackBody>) -> Reply {
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
    Ok(written(StatusCode::OK, st.write(Request::Rollback(request)).await?))
}
