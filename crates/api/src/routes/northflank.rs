//! Northflank's release-flow API under `/v1/projects/{project}/pipelines/{pipeline}/release-flows/{stage}`, for
//! @northflank/js-client and curl: the flow `{pipeline}/{stage}` (stage matched case-insensitively, as
//! `Production` → `production`), answered in Northflank's envelope `{"data": …}` and `{"error": {"status", "message"}}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{flows, AppState};
use crate::error::ApiError;
use crate::extract::{JsonBody, Params};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/projects/{project}/pipelines/{pipeline}/release-flows/{stage}",
            get(get_flow).put(put_flow).post(put_flow),
        )
        .route("/projects/{project}/pipelines/{pipeline}/release-flows/{stage}/runs", get(list_runs).post(run))
        .route("/projects/{project}/pipelines/{pipeline}/release-flows/{stage}/runs/{run}", get(get_run))
}

struct NorthflankError(ApiError);

impl From<ApiError> for NorthflankError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for NorthflankError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.status.is_server_error() {
            return e.into_response();
        }
        let mut error = json!({ "status": e.status.as_u16(), "message": e.message, "code": e.code });
        if let Some(field) = e.extra.get("field") {
            error["field"] = field.clone();
        }
        (e.status, Json(json!({ "error": error }))).into_response()
    }
}

type NfResult = Result<Response, NorthflankError>;

/// Northflank answers every success with 200 (its client takes anything else for an error).
fn data(v: Value) -> Response {
    (StatusCode::OK, Json(json!({ "data": v }))).into_response()
}

/// The flow of a pipeline stage: `{pipeline}/{stage}`, lower-cased, in the one project this Railyard serves.
fn flow_of(st: &AppState, project: &str, pipeline: &str, stage: &str) -> Result<Params, NorthflankError> {
    if project != "1" && project != st.project {
        return Err(NorthflankError(ApiError::new(StatusCode::NOT_FOUND, "not_found", "project not found")));
    }
    let flow = format!("{}/{}", pipeline.to_ascii_lowercase(), stage.to_ascii_lowercase());
    Ok(Params::from_pairs(&[("flow", &flow)]))
}

async fn get_flow(
    State(st): State<AppState>,
    Path((project, pipeline, stage)): Path<(String, String, String)>,
) -> NfResult {
    let p = flow_of(&st, &project, &pipeline, &stage)?;
    let (_, Json(v)) = flows::get(State(st), p).await?;
    Ok(data(v))
}

/// The template: Railyard's `{"steps": [...]}`, also accepted inside Northflank's `{"spec": …}`.
async fn put_flow(
    State(st): State<AppState>,
    Path((project, pipeline, stage)): Path<(String, String, String)>,
    body: Bytes,
) -> NfResult {
    let p = flow_of(&st, &project, &pipeline, &stage)?;
    let mut v: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("body", format!("not JSON: {e}")))?;
    if let Some(spec) = v.get("spec").cloned() {
        v = spec;
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let bytes = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
    let (_, Json(out)) = flows::put(State(st), p, headers, bytes).await?;
    Ok(data(out))
}

async fn run(
    State(st): State<AppState>,
    Path((project, pipeline, stage)): Path<(String, String, String)>,
    body: Bytes,
) -> NfResult {
    let p = flow_of(&st, &project, &pipeline, &stage)?;
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("body", format!("not JSON: {e}")))?
    };
    let b = serde_json::from_value(v).map_err(|e| ApiError::bad_request("body", e.to_string()))?;
    let (status, Json(mut out)) = flows::run(State(st), p, JsonBody(b)).await?;
    // A failed run is an error in Northflank's shape, with the run record beside it.
    if status == StatusCode::CONFLICT {
        let message = out.get("error").and_then(Value::as_str).unwrap_or("the run failed").to_owned();
        if let Value::Object(m) = &mut out {
            m.remove("error");
            m.remove("code");
        }
        let body = json!({ "error": { "status": 409, "message": message, "code": "flow_run_failed" }, "data": out });
        return Ok((status, Json(body)).into_response());
    }
    Ok(data(out))
}

async fn list_runs(
    State(st): State<AppState>,
    Path((project, pipeline, stage)): Path<(String, String, String)>,
) -> NfResult {
    let p = flow_of(&st, &project, &pipeline, &stage)?;
    let (_, Json(v)) = flows::runs(State(st), p).await?;
    Ok(data(v))
}

async fn get_run(
    State(st): State<AppState>,
    Path((project, pipeline, stage, run)): Path<(String, String, String, String)>,
) -> NfResult {
    let mut p = flow_of(&st, &project, &pipeline, &stage)?;
    p = Params::from_pairs(&[("flow", p.raw("flow")), ("id", &run)]);
    let (_, Json(v)) = flows::run_record(State(st), p).await?;
    Ok(data(v))
}
