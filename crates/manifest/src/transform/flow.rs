//! Release flows: store a template; run one, all steps applied to one tree or none, with a run record either way.

use serde_json::json;

use super::{deploy, Ctx};
use crate::error::{Error, Result};
use crate::flow::{Action, NodeOverride, Step};
use crate::layout;
use crate::names::{AppName, EnvName, Version};
use crate::request::{
    Deploy, Envelope, FlowRunRecord, FlowStored, LockBehavior, Outcome, PutFlow, Request, RunFlow, RunStatus,
    StepRecord, StepStatus,
};
use crate::stage::{EntryKind, Stage};
use crate::state;

pub(super) fn put(stage: &mut Stage<'_>, r: &PutFlow) -> Result<FlowStored> {
    layout::check_flow_name(&r.flow)?;
    let created = stage.read(&layout::flow_template(&r.flow))?.is_none();
    stage.write_if_changed(&layout::flow_template(&r.flow), r.template.to_yaml().as_bytes())?;
    Ok(FlowStored { flow: r.flow.clone(), steps: r.template.steps.len(), created })
}

/// Deploys `node` (a version or a release candidate) of `app` to `env`.
fn deploy_node(
    stage: &mut Stage<'_>,
    ctx: &Ctx<'_>,
    env: &EnvName,
    app: &AppName,
    node: &NodeOverride,
) -> Result<Version> {
    let version = match (&node.version, &node.release_candidate) {
        (Some(v), _) => *v,
        (None, Some(rc)) => state::release_candidate(stage, app, rc)?
            .ok_or_else(|| Error::not_found("release", format!("{app} {rc}")))?,
        (None, None) => return Err(Error::invalid("releaseNodeOverrides", format!("{app}: nothing to deploy"))),
    };
    let d = Deploy { environment: env.clone(), application: app.clone(), version, lock_behavior: LockBehavior::Fail };
    deploy::deploy(stage, ctx, &d)?;
    Ok(version)
}

/// The lock directories (one per environment) of locks this run set and has not lifted yet.
type OwnLocks = Vec<(String, crate::names::LockId)>;

/// Runs `f` as if the run's own locks were not there: a run that locks an environment, trains it and unlocks it is
/// not held back by itself. The locks are back (unchanged) afterwards.
fn past_own_locks<T>(stage: &mut Stage<'_>, own: &OwnLocks, f: impl FnOnce(&mut Stage<'_>) -> Result<T>) -> Result<T> {
    let mut saved = Vec::new();
    for (dir, id) in own {
        let lock_dir = layout::lock_dir(dir, id);
        for (name, kind) in stage.list(&lock_dir)? {
            if kind == EntryKind::File {
                let path = format!("{lock_dir}/{name}");
                if let Some(bytes) = stage.read(&path)? {
                    saved.push((path, bytes));
                }
            }
        }
    }
    stage.begin();
    for (dir, id) in own {
        stage.remove_dir(&layout::lock_dir(dir, id))?;
    }
    match f(stage) {
        Ok(v) => {
            for (path, bytes) in saved {
                stage.write(&path, &bytes)?;
            }
            stage.keep();
            Ok(v)
        }
        Err(e) => {
            stage.discard();
            Err(e)
        }
    }
}

fn apply_step(
    stage: &mut Stage<'_>,
    ctx: &Ctx<'_>,
    step: &Step,
    r: &RunFlow,
    own: &mut OwnLocks,
) -> Result<serde_json::Value> {
    // Locks and unlocks change what this run holds; everything else runs past the run's own locks.
    if let Action::Request { request } = &step.action {
        match request.as_ref() {
            Request::CreateLock(l) => {
                let dirs = crate::state::lock_dirs(stage, &l.target)?;
                let result = apply_request(stage, ctx, request)?;
                own.extend(dirs.into_iter().map(|(_, d)| (d, l.lock_id.clone())));
                return Ok(result);
            }
            Request::DeleteLock(l) => {
                let dirs: Vec<String> =
                    crate::state::lock_dirs(stage, &l.target)?.into_iter().map(|(_, d)| d).collect();
                let result = apply_request(stage, ctx, request)?;
                own.retain(|(d, id)| !(id == &l.lock_id && dirs.contains(d)));
                return Ok(result);
            }
            _ => {}
        }
    }
    past_own_locks(stage, own, |stage| apply_action(stage, ctx, step, r))
}

fn apply_request(stage: &mut Stage<'_>, ctx: &Ctx<'_>, request: &Request) -> Result<serde_json::Value> {
    let mut envelope = Envelope { author: ctx.author.clone(), at: ctx.at.to_owned(), request: request.clone() };
    let outcome = super::apply(stage, &mut envelope)?;
    Ok(serde_json::to_value(&outcome).unwrap_or_default())
}

fn apply_action(stage: &mut Stage<'_>, ctx: &Ctx<'_>, step: &Step, r: &RunFlow) -> Result<serde_json::Value> {
    match &step.action {
        Action::Request { request } => {
            let mut envelope =
                Envelope { author: ctx.author.clone(), at: ctx.at.to_owned(), request: (**request).clone() };
            let outcome = super::apply(stage, &mut envelope)?;
            let mut result = serde_json::to_value(&outcome).unwrap_or_default();
            // releaseNodeOverrides: what the train moved for an overridden application is replaced.
            if let Outcome::Train(t) = &outcome {
                let mut replaced = Vec::new();
                for e in &t.environments {
                    for moved in &e.deployed {
                        if let Some(node) = r.inputs.release_node_overrides.get(&moved.application) {
                            let v = deploy_node(stage, ctx, &e.environment, &moved.application, node)?;
                            replaced.push(
                                json!({"environment": e.environment, "application": moved.application, "version": v}),
                            );
                        }
                    }
                }
                if !replaced.is_empty() {
                    result["release_node_overrides"] = json!(replaced);
                }
            }
            Ok(result)
        }
        Action::DeployCandidate { application, environment, release_candidate_version, lock_behavior } => {
            let version = state::release_candidate(stage, application, release_candidate_version)?
                .ok_or_else(|| Error::not_found("release", format!("{application} {release_candidate_version}")))?;
            let d = Deploy {
                environment: environment.clone(),
                application: application.clone(),
                version,
                lock_behavior: *lock_behavior,
            };
            let out = deploy::deploy(stage, ctx, &d)?;
            Ok(serde_json::to_value(&out).unwrap_or_default())
        }
        Action::Tag { tag } => Ok(json!({ "tag": tag })),
    }
}

pub(super) fn run_flow(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &RunFlow) -> Result<FlowRunRecord> {
    state::flow_template(stage, &r.flow)?;
    let id = state::flow_runs(stage, &r.flow)?.last().map_or(1, |last| last.id + 1);
    let mut steps: Vec<StepRecord> = Vec::with_capacity(r.steps.len());
    let mut failure: Option<(String, String)> = None;
    let mut own = OwnLocks::new();
    // One layer for the whole run: a failing step drops every step's edits, and only the record is written.
    stage.begin();
    for step in &r.steps {
        if failure.is_some() {
            steps.push(StepRecord {
                step_ref: step.step_ref.clone(),
                kind: step.kind.clone(),
                status: StepStatus::NotRun,
                result: None,
                error: None,
            });
            continue;
        }
        match apply_step(stage, ctx, step, r, &mut own) {
            Ok(result) => steps.push(StepRecord {
                step_ref: step.step_ref.clone(),
                kind: step.kind.clone(),
                status: StepStatus::Applied,
                result: Some(result),
                error: None,
            }),
            Err(e) => {
                failure = Some((step.step_ref.clone(), e.to_string()));
                steps.push(StepRecord {
                    step_ref: step.step_ref.clone(),
                    kind: step.kind.clone(),
                    status: StepStatus::Failed,
                    result: None,
                    error: Some(e.to_string()),
                });
            }
        }
    }
    if failure.is_some() {
        stage.discard();
    } else {
        stage.keep();
    }
    let record = FlowRunRecord {
        id,
        flow: r.flow.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        status: if failure.is_some() { RunStatus::Failed } else { RunStatus::Succeeded },
        failed_step: failure.as_ref().map(|(s, _)| s.clone()),
        error: failure.map(|(_, e)| e),
        steps,
        arguments: r.inputs.arguments.clone(),
        overrides: r.inputs.overrides.clone(),
        release_node_overrides: r.inputs.release_node_overrides.clone(),
        created_at: ctx.at.to_owned(),
        created_by_name: ctx.author.name.clone(),
        created_by_email: ctx.author.email.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).map_err(|e| Error::invalid("run", e.to_string()))?;
    stage.write(&layout::flow_run(&r.flow, id), &json)?;
    Ok(record)
}
