//! Release flows: `PUT`/`GET /api/release-flows/{flow}` (the template, YAML or JSON), `POST …/runs` (a run: one
//! commit, all steps or none), `GET …/runs` and `…/runs/{id}` (run records), over [`service::flows`].

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use railyard_manifest::EnvName;
use serde_json::json;

use crate::error::ApiResult;
use crate::extract::{JsonBody, Params};
use crate::service::flows::{self as service, Format, RunAnswer, RunFailed};
use crate::service::{DryRun, Service};

fn flow_param(p: &Params) -> ApiResult<EnvName> {
    service::parse_flow(p.raw("flow"))
}

#[utoipa::path(
    put,
    path = "/release-flows/{flow}",
    summary = "Store a release-flow template (YAML or JSON)",
    params(("flow" = String, Path, description = "release flow")),
    request_body(content((String = "application/yaml"), (Object = "application/json"))),
    responses((status = 201, description = "success", body = Object)),
)]
/// `PUT /api/release-flows/{flow}`: JSON (`Content-Type: application/json`) or YAML (anything else); 201 when new.
pub async fn put(st: Service, p: Params, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let flow = flow_param(&p)?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let stored = service::put(&st, flow, body.to_vec(), if json { Format::Json } else { Format::Yaml }).await?;
    let status = if stored.outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(stored)).into_response())
}

#[utoipa::path(
    get,
    path = "/release-flows/{flow}",
    summary = "A release-flow template",
    params(("flow" = String, Path, description = "release flow")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/release-flows/{flow}`
pub async fn get(st: Service, p: Params) -> ApiResult<Response> {
    Ok(Json(service::get(&st, flow_param(&p)?).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/release-flows/{flow}/runs",
    summary = "Run a flow (one commit, all steps or none)",
    params(("flow" = String, Path, description = "release flow")),
    request_body = railyard_wire::RunFlow,
    responses((status = 201, description = "success", body = Object)),
)]
/// `POST /api/release-flows/{flow}/runs` → 201 (succeeded), 409 `flow_run_failed` (nothing but the record written),
/// 200 with `dryRun: true` (nothing written).
pub async fn run(st: Service, p: Params, JsonBody(b): JsonBody<railyard_wire::RunFlow>) -> ApiResult<Response> {
    Ok(match service::run(&st, flow_param(&p)?, b).await? {
        RunAnswer::DryRun(outcome) => Json(DryRun::new(outcome)).into_response(),
        RunAnswer::Done(run) => match RunFailed::of(run) {
            Ok(run) => (StatusCode::CREATED, Json(run)).into_response(),
            Err(failed) => (StatusCode::CONFLICT, Json(failed)).into_response(),
        },
    })
}

#[utoipa::path(
    get,
    path = "/release-flows/{flow}/runs",
    summary = "A flow's runs",
    params(("flow" = String, Path, description = "release flow")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/release-flows/{flow}/runs`
pub async fn runs(st: Service, p: Params) -> ApiResult<Response> {
    Ok(Json(json!({ "runs": service::runs(&st, flow_param(&p)?).await? })).into_response())
}

#[utoipa::path(
    get,
    path = "/release-flows/{flow}/runs/{id}",
    summary = "One run",
    params(("flow" = String, Path, description = "release flow"), ("id" = String, Path, description = "run id")),
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/release-flows/{flow}/runs/{id}`
pub async fn run_record(st: Service, p: Params) -> ApiResult<Response> {
    let record = service::run_record(&st, flow_param(&p)?, service::parse_run_id(p.raw("id"))?).await?;
    Ok(Json(record).into_response())
}
