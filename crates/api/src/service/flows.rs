//! Release flows: templates (stored as YAML, sent as YAML or JSON), runs (one commit, all steps or none) and their
//! records. Run bodies follow Northflank's rules, for every surface.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use railyard_manifest::flow::{Action, NodeOverride, RunInputs, Template};
use railyard_manifest::request::{FlowRunRecord, FlowStored, PutFlow, RunFlow, RunStatus};
use railyard_manifest::{state, AppName, EnvName, Error, Outcome, Request};
use regex::Regex;
use serde::Serialize;
use serde_json::{json, Value};

use super::Service;
use super::Written;
use crate::error::{ApiError, ApiResult};
use crate::routes::AppState;

/// A flow name as given: an environment-style name, optionally `pipeline/stage`, and not one that would overlap
/// another flow's files.
pub fn parse_flow(raw: &str) -> ApiResult<EnvName> {
    let flow = EnvName::parse(raw).map_err(|e| {
        ApiError::bad_request(
            "flow",
            format!("invalid flow name: {e} (flow names follow environment names, optionally `pipeline/stage`)"),
        )
    })?;
    railyard_manifest::layout::check_flow_name(&flow)?;
    Ok(flow)
}

/// A run id as given in a path.
pub fn parse_run_id(raw: &str) -> ApiResult<u64> {
    raw.parse().map_err(|_| ApiError::bad_request("id", "a run id is a positive integer"))
}

/// How a template body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// Stores the template of `flow` from `body`. The caller's flow role is checked before the body is parsed, and the
/// parse runs off the async runtime's threads.
pub async fn put(st: &Service, flow: EnvName, body: Vec<u8>, format: Format) -> ApiResult<Written<FlowStored>> {
    st.authorize_now(&crate::auth::flow_need(&flow))?;
    let template = tokio::task::spawn_blocking(move || Template::parse(&body, format == Format::Json))
        .await
        .map_err(ApiError::internal)??;
    super::write(st, Request::PutFlow(PutFlow { flow, template })).await
}

/// A stored template with the flow's name.
#[derive(Debug, Clone, Serialize)]
pub struct FlowTemplate {
    pub flow: EnvName,
    #[serde(flatten)]
    pub template: Template,
}

pub async fn get(st: &AppState, flow: EnvName) -> ApiResult<FlowTemplate> {
    let f = flow.clone();
    let template = st.read(move |s| state::flow_template(s, &f)).await?;
    Ok(FlowTemplate { flow, template })
}

fn name_pattern() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^[a-zA-Z]((-|\s)?[a-zA-Z0-9]+((-|\s)[a-zA-Z0-9]+)*)?$").expect("name pattern"))
}

fn description_pattern() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r#"^[a-zA-Z0-9.,?\s\\/'"()\[\];`%^&*\-_:!]+$"#).expect("description pattern"))
}

/// A run as asked for (Northflank's body: `name`, `description`, `arguments`, `overrides`, `releaseNodeOverrides`,
/// and Railyard's `dryRun`).
fn text(place: &str, v: &Value) -> ApiResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ApiError::bad_request("arguments", format!("{place} must be a string, number or boolean"))),
    }
}

fn inputs(b: &railyard_wire::RunFlow) -> ApiResult<RunInputs> {
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

/// What a run request got: what it would do (a dry run), or the run as committed (succeeded, or failed with only
/// its record written).
#[derive(Debug)]
pub enum RunAnswer {
    DryRun(Outcome),
    Done(Written<FlowRunRecord>),
}

/// Runs `flow` as `b` asks: the template resolved with the run's inputs, source tags of trains resolved to their
/// commits, then applied as one commit (or simulated).
pub async fn run(st: &Service, flow: EnvName, b: railyard_wire::RunFlow) -> ApiResult<RunAnswer> {
    // The flow role first; each step's own roles are checked by the writer on the state the run is applied to.
    st.authorize_now(&crate::auth::flow_need(&flow))?;
    let inputs = inputs(&b)?;
    let f = flow.clone();
    let resolve_inputs = inputs.clone();
    let steps = st
        .with_stage(move |s| {
            let mut steps = state::flow_template(s, &f)?.resolve(&resolve_inputs)?;
            for step in &mut steps {
                if let Action::Request { request } = &mut step.action {
                    if let Request::ReleaseTrain(t) = request.as_mut() {
                        if let Some(tag) = &t.source_git_tag {
                            let commit = railyard_refs::resolve_tag(s.repo(), tag.as_str())?
                                .ok_or_else(|| Error::not_found("tag", tag))?;
                            t.source_commit = Some(commit.to_string());
                        }
                    }
                }
            }
            Ok(steps)
        })
        .await?;
    let request = Request::RunFlow(RunFlow { flow, name: b.name, description: b.description, inputs, steps });
    if b.dry_run {
        return Ok(RunAnswer::DryRun(st.simulate(request).await?));
    }
    Ok(RunAnswer::Done(super::write(st, request).await?))
}

/// A failed run as an error answer: why it failed (taken out of the record into the message, so `error` is the
/// answer's one sentence), and the record beside it.
#[derive(Debug, Clone, Serialize)]
pub struct RunFailed {
    #[serde(flatten)]
    pub run: Written<FlowRunRecord>,
    pub code: &'static str,
    pub error: String,
}

impl RunFailed {
    /// `run` as a failure, if it failed.
    pub fn of(mut run: Written<FlowRunRecord>) -> Result<Written<FlowRunRecord>, Box<RunFailed>> {
        if run.outcome.status != RunStatus::Failed {
            return Ok(run);
        }
        let why = run.outcome.error.take().unwrap_or_default();
        let step = run.outcome.failed_step.clone().unwrap_or_default();
        let error = format!("step {step} failed: {why}; nothing but the run record was written");
        Err(Box::new(RunFailed { run, code: "flow_run_failed", error }))
    }
}

/// The run records of `flow` (404 when the flow does not exist).
pub async fn runs(st: &AppState, flow: EnvName) -> ApiResult<Vec<FlowRunRecord>> {
    st.read(move |s| {
        state::flow_template(s, &flow)?;
        state::flow_runs(s, &flow)
    })
    .await
}

pub async fn run_record(st: &AppState, flow: EnvName, id: u64) -> ApiResult<FlowRunRecord> {
    st.read(move |s| state::flow_run(s, &flow, id)?.ok_or_else(|| Error::not_found("release flow run", id.to_string())))
        .await
}
