//! Kuberpult's paths, for kuberpult-client and the curl scripts written against Kuberpult: the native handlers
//! under Kuberpult's routes, and Kuberpult's multipart environment create onto [`service::environments`].

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{post, put};
use axum::{Json, Router};
use railyard_manifest::{EnvName, Error, GroupName, Upstream};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::{rejection, Params};
use crate::routes::{environments, locks, releases, trains, AppState};
use crate::service::environments::{self as service, NewEnvironment};
use crate::service::Service;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/release", post(releases::create))
        .route("/environments/{env}/locks/{lock}", put(locks::put_env).delete(locks::delete_env))
        .route("/environments/{env}/applications/{app}/locks/{lock}", put(locks::put_app).delete(locks::delete_app))
        .route("/environment-groups/{group}/locks/{lock}", put(locks::put_group).delete(locks::delete_group))
        .route("/api/environments/{env}/lock/team/{team}/{lock}", put(locks::put_team).delete(locks::delete_team))
        .route("/environments/{env}/releasetrain", put(trains::environment))
        .route("/environment-groups/{group}/releasetrain", put(trains::group))
        .route("/api/environments/{env}/", post(create_environment))
}

/// Kuberpult's `POST /api/environments/{env}/`: a multipart form whose `config` part is Kuberpult's
/// EnvironmentConfig JSON (`upstream`, `environmentGroup`, `argocd`) → 201.
async fn create_environment(
    st: Service,
    p: Params,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<impl IntoResponse> {
    let mut multipart = multipart.map_err(|e| rejection(e.status(), "body", e.body_text()))?;
    let mut config: Option<Value> = None;
    while let Some(field) = multipart.next_field().await.map_err(|e| rejection(e.status(), "body", e.body_text()))? {
        if field.name() == Some("config") {
            let bytes = field.bytes().await.map_err(|e| rejection(e.status(), "config", e.body_text()))?;
            config = Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::bad_request("config", format!("config is not JSON: {e}")))?,
            );
        }
    }
    let config = config.unwrap_or_else(|| Value::Object(Default::default()));
    let upstream = match config.get("upstream") {
        None | Some(Value::Null) => None,
        Some(u) => Some(
            serde_json::from_value::<Upstream>(u.clone())
                .map_err(|e| ApiError::bad_request("config", format!("config.upstream: {e}")))?,
        ),
    };
    let environment_group = config
        .get("environmentGroup")
        .and_then(Value::as_str)
        .map(GroupName::parse)
        .transpose()
        .map_err(Error::from)?;
    let input = NewEnvironment {
        name: p.get::<EnvName, _>("env")?,
        upstream,
        environment_group,
        tier: None,
        external_url: None,
        argocd: environments::argocd_settings(config.get("argocd"))?,
    };
    Ok((StatusCode::CREATED, Json(service::create(&st, input).await?)))
}
