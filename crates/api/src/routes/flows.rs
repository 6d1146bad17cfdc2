//! Release flows: `PUT`/`GET /api/release-flows/{flow}` (the template, YAML or JSON), `POST …/runs` (a run: one
//! commit, all steps or none), `GET …/runs` and `…/runs/{id}` (run records). Run bodies follow Northflank's rules.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use railyard_manifest::flow::{Action, NodeOverride, RunInputs, Template};
use railyard_manifest::request::{PutFlow, RunFlow, RunStatus};
use railyard_manifest::transform::flow as flows;
use railyard_manifest::{AppName, EnvName, Error, Outcome, Request};
use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};

type Reply = ApiResult<(StatusCode, Json<Value>)>;

pub(super) fn flow_param(p: &Params) -> ApiResult<EnvName> {
    let flow = EnvName::parse(p.raw("flow")).map_err(|e| {
        ApiError::bad_request(
            "flow",
            format!("invalid flow name: {e} (flow names follow environment names, optionally `pipeline/stage`)"),
        )
    })?;
    railyard_manifest::layout::check_flow_name(&flow)?;
    Ok(flow)
}

/// `PUT /api/release-flows/{flow}`: JSON (`Content-Type: application/json`) or YAML (anything else).
pub async fn put(State(st): State<AppState>, p: Params, headers: HeaderMap, body: Bytes) -> Reply {
    let flow = flow_param(&p)?;
    // Who may store a template is known before its body is parsed.
    st.authorize_now(&crate::auth::flow_need(&flow))?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let template =
        tokio::task::spawn_blocking(move || Template::parse(&body, json)).await.map_err(ApiError::internal)??;
    let applied = st.write(Request::PutFlow(PutFlow { flow, template })).await?;
    let status = match &applied.outcome {
        Outcome::FlowStored(s) if !s.created => StatusCode::OK,
        _ => StatusCode::CREATED,
    };
    Ok(super::written(status, applied))
}

/// `GET /api/release-flows/{flow}`
pub async fn get(State(st): State<AppState>, p: Params) -> Reply {
    let flow = flow_param(&p)?;
    let f = flow.clone();
    let template = st.read(move |s| flows::template(s, &f)).await?;
    let mut body = serde_json::to_value(&template).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut body {
        m.insert("flow".into(), json!(flow));
    }
    Ok((StatusCode::OK, Json(body)))
}

fn name_pattern() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^[a-zA-Z]((-|\s)?[a-zA-Z0-9]+((-|\s)[a-zA-Z0-9]+)*)?$").expect("name pattern"))
}

fn description_pattern() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r#"^[a-zA-Z0-9.,?\s\\/'"()\[\];`%^&*\-_:!]+$"#).expect("description pattern"))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    arguments: Map<String, Value>,
    #[serde(default)]
    overrides: Map<String, Value>,
    #[serde(default)]
    release_node_overrides: Map<String, Value>,
    #[serde(default)]
    dry_run: bool,
}

fn text(place: &str, v: &Value) -> ApiResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ApiError::bad_request("arguments", format!("{place} must be a string, number or boolean"))),
    }
}

fn inputs(b: &RunBody) -> ApiResult<RunInputs> {
    if let Some(name) = &b.name {
        let n = name.chars().count();
        if !(3..=39).contains(&n) || !name_pattern().is_match(name) {
            return Err(ApiError::bad_request(
                "name",
                "name must be 3 to 39 characters matching ^[a-zA-Z]((-|\\s)?[a-zA-Z0-9]+((-|\\s)[a-zA-Z0-9]+)*)?$",
            ));
        }
    }
    if let Some(d) = &b.description {
        if d.chars().count() > 200 || !description_pattern().is_match(d) {
            return Err(ApiError::bad_request(
                "description",
                "description must be at most 200 characters of letters, digits, spaces and .,?\\/'\"()[];`%^&*-_:!",
            ));
        }
    }
    let mut out = RunInputs::default();
    for (k, v) in &b.arguments {
        out.arguments.insert(k.clone(), text(&format!("arguments.{k}"), v)?);
    }
    for (r, fields) in &b.overrides {
        let fields = fields
            .as_object()
            .ok_or_else(|| ApiError::bad_request("overrides", format!("overrides.{r} must be an object")))?;
        let mut m = BTreeMap::new();
        for (k, v) in fields {
            m.insert(
                k.clone(),
                text(&format!("overrides.{r}.{k}"), v).map_err(|e| e.with("field", json!("overrides")))?,
            );
        }
        out.overrides.insert(r.clone(), m);
    }
    for (app, spec) in &b.release_node_overrides {
        let app = AppName::parse(app).map_err(|e| ApiError::bad_request("releaseNodeOverrides", e.to_string()))?;
        let node: NodeOverride = serde_json::from_value(spec.clone()).map_err(|e| {
            ApiError::bad_request(
                "releaseNodeOverrides",
                format!("releaseNodeOverrides.{app}: {e} (give `version` or `releaseCandidate`)"),
            )
        })?;
        out.release_node_overrides.insert(app, node);
    }
    Ok(out)
}

/// `POST /api/release-flows/{flow}/runs` → 201 (succeeded), 409 `flow_run_failed` (nothing but the record written),
/// 200 with `dryRun: true` (nothing written).
pub async fn run(State(st): State<AppState>, p: Params, JsonBody(b): JsonBody<RunBody>) -> Reply {
    let flow = flow_param(&p)?;
    // The flow role first; each step's own roles are checked by the writer on the state the run is applied to.
    st.authorize_now(&crate::auth::flow_need(&flow))?;
    let inputs = inputs(&b)?;
    let f = flow.clone();
    let resolve_inputs = inputs.clone();
    // The template, resolved with the run's inputs; source tags of trains resolved to their commits.
    let steps = st
        .with_stage(move |s| {
            let mut steps = flows::template(s, &f)?.resolve(&resolve_inputs)?;
            for step in &mut steps {
                if let Action::Request { request } = &mut step.action {
                    if let Request::ReleaseTrain(t) = request.as_mut() {
                        if let Some(tag) = &t.source_git_tag {
                            let commit = railyard_export::resolve_tag(s.repo(), tag.as_str())?
                                .ok_or_else(|| Error::not_found("tag", tag))?;
                            t.source_commit = Some(commit.to_string());
                        }
                    }
                }
            }
            Ok(steps)
        })
        .await?;
    let request =
        Request::RunFlow(RunFlow { flow, name: b.name.clone(), description: b.description.clone(), inputs, steps });
    if b.dry_run {
        return Ok(super::dry_run_answer(&st.simulate(request).await?, "dryRun"));
    }
    let applied = st.write(request).await?;
    let failed = matches!(&applied.outcome, Outcome::FlowRun(r) if r.status == RunStatus::Failed);
    let (_, Json(mut body)) = super::written(StatusCode::CREATED, applied);
    if failed {
        if let Value::Object(m) = &mut body {
            let why = m.get("error").and_then(Value::as_str).unwrap_or_default().to_owned();
            let step = m.get("failed_step").and_then(Value::as_str).unwrap_or_default().to_owned();
            m.insert("code".into(), json!("flow_run_failed"));
            m.insert(
                "error".into(),
                json!(format!("step {step} failed: {why}; nothing but the run record was written")),
            );
        }
        return Ok((StatusCode::CONFLICT, Json(body)));
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /api/release-flows/{flow}/runs`
pub async fn runs(State(st): State<AppState>, p: Params) -> Reply {
    let flow = flow_param(&p)?;
    let runs = st
        .read(move |s| {
            flows::template(s, &flow)?;
            flows::runs(s, &flow)
        })
        .await?;
    Ok((StatusCode::OK, Json(json!({ "runs": runs }))))
}

/// `GET /api/release-flows/{flow}/runs/{id}`
pub async fn run_record(State(st): State<AppState>, p: Params) -> Reply {
    let flow = flow_param(&p)?;
    let raw = p.raw("id").to_owned();
    let id: u64 = raw.parse().map_err(|_| ApiError::bad_request("id", "a run id is a positive integer"))?;
    let record =
        st.read(move |s| flows::run(s, &flow, id)?.ok_or_else(|| Error::not_found("release flow run", raw))).await?;
    Ok((StatusCode::OK, Json(json!(record))))
}
