//! `PUT /api/environments/{env}/applications/{app}/deploy`.

use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{Deploy, Deployed};
use railyard_manifest::{AppName, EnvName, LockBehavior, Request, Version};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};
use crate::service::Service;
use crate::service::{self, Written};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    /// A number, or a string holding one.
    version: Value,
    #[serde(rename = "lockBehavior", alias = "lock_behavior", default)]
    lock_behavior: LockBehavior,
}

/// A version given as `3` or `"3"`.
pub fn version_value(v: &Value, field: &str) -> ApiResult<Version> {
    let parsed = match v {
        Value::Number(n) => n.as_u64().map(Version::new),
        Value::String(s) => Some(Version::parse(s)),
        _ => None,
    };
    match parsed {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(ApiError::from(railyard_manifest::Error::from(e)).with("field", field.into())),
        None => Err(ApiError::bad_request(field, format!("{field} must be a positive integer"))),
    }
}

pub async fn deploy(
    st: Service,
    p: Params,
    JsonBody(body): JsonBody<DeployBody>,
) -> ApiResult<(StatusCode, Json<Written<Deployed>>)> {
    let request = Deploy {
        environment: p.get::<EnvName, _>("env")?,
        application: p.get::<AppName, _>("app")?,
        version: version_value(&body.version, "version")?,
        lock_behavior: body.lock_behavior,
    };
    Ok((StatusCode::OK, Json(service::write(&st, Request::Deploy(request)).await?)))
}
