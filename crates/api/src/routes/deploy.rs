//! `PUT /api/environments/{env}/applications/{app}/deploy`.

use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{Deploy, Deployed};
use railyard_manifest::{AppName, EnvName, LockBehavior, Request, Version};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::{body_variant, JsonBody, Params};
use crate::service::Service;
use crate::service::{self, Written};

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

#[utoipa::path(
    put,
    path = "/environments/{env}/applications/{app}/deploy",
    summary = "Deploy a release",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("app" = String, Path, description = "application")),
    request_body = railyard_wire::Deploy,
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn deploy(
    st: Service,
    p: Params,
    JsonBody(body): JsonBody<railyard_wire::Deploy>,
) -> ApiResult<(StatusCode, Json<Written<Deployed>>)> {
    let request = Deploy {
        environment: p.get::<EnvName, _>("env")?,
        application: p.get::<AppName, _>("app")?,
        version: version_value(&body.version, "version")?,
        lock_behavior: body
            .lock_behavior
            .as_deref()
            .map(|l| body_variant::<LockBehavior>("lockBehavior", l))
            .transpose()?
            .unwrap_or_default(),
    };
    Ok((StatusCode::OK, Json(service::write(&st, Request::Deploy(request)).await?)))
}
