//! `GET /api/environments/{env}/argocd`: the Argo CD objects generated for an environment, as JSON.

use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::{layout, transform, Error};
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::extract::Params;
use crate::service::Service;

#[utoipa::path(
    get,
    path = "/environments/{env}/argocd",
    summary = "The Argo CD objects generated for an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)")),
    responses((status = 200, description = "success", body = Object)),
)]
/// The AppProject and Applications in `argocd/v1alpha1/<env>.yaml` as committed; 404 when the environment has no
/// Argo CD settings.
pub async fn get(st: Service, p: Params) -> ApiResult<(StatusCode, Json<Value>)> {
    let raw = p.raw("env").to_owned();
    let body = st
        .read(move |s| {
            let (env, _) = crate::service::environments::resolve(s, &raw)?;
            let objects = transform::argocd::read(s, &env)?
                .ok_or_else(|| Error::not_found("Argo CD settings of environment", &env))?;
            Ok(json!({ "environment": env, "path": layout::argocd_env_file(&env), "objects": objects }))
        })
        .await?;
    Ok((StatusCode::OK, Json(body)))
}
