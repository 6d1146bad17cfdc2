//! Northflank's release-flow API under `/v1/[teams/{teamId}/]projects/{projectId}/pipelines/{pipelineId}/release-flows/{stage}`,
//! for @northflank/js-client and curl: the flow `{pipeline}/{stage}` (stage matched case-insensitively, as
//! `Production` → `production`), answered in Northflank's envelope `{"data": …}` and `{"error": {"status", "message"}}`
//! (every error under `/v1`, unknown routes included: see [`envelope`]).

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use railyard_manifest::request::RunStatus;
use railyard_manifest::EnvName;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::Params;
use crate::routes::AppState;
use crate::service::flows::{self, Format, RunAnswer, RunFailed};
use crate::service::{DryRun, Service};

/// The same routes with and without the team: `teamId` names the Northflank team that owns the project, which one
/// Railyard does not model, so any team is accepted.
pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for prefix in ["/projects/{project}/pipelines/{pipeline}", "/teams/{team}/projects/{project}/pipelines/{pipeline}"]
    {
        r = r
            .route(&format!("{prefix}/release-flows/{{stage}}"), get(get_flow).put(put_flow).post(put_flow))
            .route(&format!("{prefix}/release-flows/{{stage}}/runs"), get(list_runs).post(run))
            .route(&format!("{prefix}/release-flows/{{stage}}/runs/{{run}}"), get(get_run))
            .route(&format!("{prefix}/release-flows/{{stage}}/runs/{{run}}/abort"), post(abort_run));
    }
    r
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

/// The flow of a pipeline stage: `{pipeline}/{stage}`, lower-cased, in the one project this Railyard serves.
fn flow_of(st: &AppState, p: &Params) -> Result<EnvName, NorthflankError> {
    let project = p.raw("project");
    if project != "1" && project != st.project {
        return Err(NorthflankError(ApiError::new(StatusCode::NOT_FOUND, "not_found", "project not found")));
    }
    let flow = format!("{}/{}", p.raw("pipeline").to_ascii_lowercase(), p.raw("stage").to_ascii_lowercase());
    Ok(flows::parse_flow(&flow)?)
}

/// The flow and run id of a run's path.
fn run_of(st: &AppState, p: &Params) -> Result<(EnvName, u64), NorthflankError> {
    Ok((flow_of(st, p)?, flows::parse_run_id(p.raw("run"))?))
}

/// Northflank answers every success with 200 (its client takes anything else for an error).
fn data(v: impl Serialize) -> Response {
    (StatusCode::OK, Json(json!({ "data": v }))).into_response()
}

async fn get_flow(st: Service, p: Params) -> NfResult {
    let flow = flow_of(&st, &p)?;
    Ok(data(flows::get(&st, flow).await?))
}

/// The template: Railyard's `{"steps": [...]}`, also accepted inside Northflank's `{"spec": …}`.
async fn put_flow(st: Service, p: Params, body: Bytes) -> NfResult {
    let flow = flow_of(&st, &p)?;
    // Authorized before the body is parsed, as on the native path.
    st.authorize_now(&crate::auth::flow_need(&flow))?;
    let mut v: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("body", format!("not JSON: {e}")))?;
    if let Some(spec) = v.get_mut("spec").map(Value::take) {
        v = spec;
    }
    let body = serde_json::to_vec(&v).map_err(ApiError::internal)?;
    Ok(data(flows::put(&st, flow, body, Format::Json).await?))
}

async fn run(st: Service, p: Params, body: Bytes) -> NfResult {
    let flow = flow_of(&st, &p)?;
    let b: railyard_wire::RunFlow = if body.is_empty() {
        railyard_wire::RunFlow::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("body", format!("invalid JSON body: {e}")))?
    };
    match flows::run(&st, flow, b).await? {
        RunAnswer::DryRun(outcome) => Ok(data(DryRun::new(outcome))),
        // A failed run is an error in Northflank's shape, with the run record beside it.
        RunAnswer::Done(run) => match RunFailed::of(run) {
            Ok(run) => Ok(data(run)),
            Err(failed) => {
                let error = json!({ "status": 409, "message": failed.error, "code": failed.code });
                Ok((StatusCode::CONFLICT, Json(json!({ "error": error, "data": failed.run }))).into_response())
            }
        },
    }
}

async fn list_runs(st: Service, p: Params) -> NfResult {
    let flow = flow_of(&st, &p)?;
    Ok(data(json!({ "runs": flows::runs(&st, flow).await? })))
}

async fn get_run(st: Service, p: Params) -> NfResult {
    let (flow, id) = run_of(&st, &p)?;
    Ok(data(flows::run_record(&st, flow, id).await?))
}

/// `POST …/runs/{runId}/abort`: a run is applied inside the request that starts it, as one commit, so a run that
/// exists has always finished: 409 saying so (404 for an unknown run).
async fn abort_run(st: Service, p: Params) -> NfResult {
    let (flow, id) = run_of(&st, &p)?;
    // Aborting is a write for whoever may run the flow, even though a finished run has nothing left to abort.
    st.authorize_now(&crate::auth::flow_need(&flow))?;
    let record = flows::run_record(&st, flow, id).await?;
    let status = match record.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
    };
    Err(NorthflankError(ApiError::new(
        StatusCode::CONFLICT,
        "run_finished",
        format!(
            "release flow run {id} has already finished ({status}); runs are applied at once, as one commit, so there is \
             nothing to abort"
        ),
    )))
}

/// Northflank's error envelope for every error answer under `/v1` that its handlers did not shape: unknown routes
/// and methods, authentication, body limits and path rejections (Railyard's `{"error": "…", "code"}` or plain text).
pub fn envelope(status: StatusCode, body: &Bytes) -> Option<Body> {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    if parsed.as_ref().is_some_and(|v| v["error"].is_object()) {
        return None;
    }
    let message = match &parsed {
        Some(v) => v["error"].as_str().map(str::to_owned),
        None => std::str::from_utf8(body).ok().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned),
    }
    .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let mut error = json!({ "status": status.as_u16(), "message": message });
    if let Some(code) = parsed.as_ref().and_then(|v| v.get("code")).filter(|c| c.is_string()) {
        error["code"] = code.clone();
    }
    Some(Body::from(json!({ "error": error }).to_string()))
}
