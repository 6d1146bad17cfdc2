//! The API call each subcommand stands for: its path, query and body (the wire types, or a multipart form), and the
//! files it reads for them.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use railyard_wire::{
    CreateEnvironment, CreateLock, CreateReleaseCandidate, Deploy, DeployReleaseCandidate, Rollback, RunFlow,
    SetDeploymentStatus, UpdateEnvironment, Upstream,
};
use reqwest::blocking::multipart::{Form, Part};
use reqwest::Method;
use serde_json::{Map, Value};

use crate::args::{Command, DeploymentCommand, EnvsCommand, FlowCommand, LockArgs, TrainArgs};
use crate::client::{segment, Body, Client};

/// `ENV=FILE` → (env, contents); `-` reads standard input.
fn manifest(spec: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let (env, file) = spec.split_once('=').ok_or_else(|| anyhow!("--manifest {spec:?}: expected ENV=FILE"))?;
    Ok((env.to_owned(), read(file)?))
}

/// The bytes of `file`; `-` reads standard input.
fn read(file: &str) -> anyhow::Result<Vec<u8>> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading stdin")?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {file}"))
    }
}

/// Settings read from a YAML or JSON file (JSON is YAML).
fn settings_file(path: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| path.to_owned())?;
    serde_yaml::from_str(&text).with_context(|| path.to_owned())
}

/// `KEY=VALUE` specs of the flag `what`.
fn pairs(specs: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    specs
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow!("{what} {s:?}: expected KEY=VALUE"))
        })
        .collect()
}

fn lock_path(a: &LockArgs) -> String {
    let id = segment(&a.lock_id);
    match (&a.environment, &a.environment_group, &a.application, &a.team) {
        (Some(env), _, Some(app), _) => {
            format!("/api/environments/{}/applications/{}/locks/{id}", segment(env), segment(app))
        }
        (Some(env), _, None, Some(team)) => {
            format!("/api/environments/{}/teams/{}/locks/{id}", segment(env), segment(team))
        }
        (Some(env), _, None, None) => format!("/api/environments/{}/locks/{id}", segment(env)),
        (None, Some(group), _, _) => format!("/api/environment-groups/{}/locks/{id}", segment(group)),
        (None, None, _, _) => unreachable!("clap requires a target"),
    }
}

/// The overview with only `team`'s applications and team locks. On the answer as it came, not the wire type:
/// `--output json` prints it, and it must keep every field the server sent.
fn team_only(mut overview: Value, team: &str) -> Value {
    for env in overview["environments"].as_array_mut().into_iter().flatten() {
        if let Some(apps) = env["applications"].as_array_mut() {
            apps.retain(|a| a["team"] == team);
        }
        if let Some(locks) = env["team_locks"].as_object_mut() {
            locks.retain(|t, _| t == team);
        }
    }
    overview
}

fn train(client: &Client, a: &TrainArgs) -> anyhow::Result<Value> {
    let path = match (&a.target_environment, &a.target_environment_group) {
        (Some(env), _) => format!("/api/environments/{}/releasetrain", segment(env)),
        (None, Some(group)) => format!("/api/environment-groups/{}/releasetrain", segment(group)),
        (None, None) => unreachable!("clap requires a target"),
    };
    let mut query = Vec::new();
    for (key, value) in [("team", &a.team), ("sourceGitTag", &a.source_git_tag), ("gitTag", &a.git_tag)] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    if a.dry_run {
        query.push(("dryRun", "true".into()));
    }
    Ok(client.call(Method::PUT, &path, &query)?)
}

/// Sends the request `command` stands for; the API's answer as it came.
pub fn send(client: &Client, command: &Command) -> anyhow::Result<Value> {
    let call = |method: Method, path: &str| client.call(method, path, &[]);
    Ok(match command {
        Command::Completions { .. } => unreachable!("completions make no request"),
        Command::ReleaseTrain(a) => train(client, a)?,
        Command::Status { team } => {
            let overview = call(Method::GET, "/api/overview")?;
            match team {
                Some(t) => team_only(overview, t),
                None => overview,
            }
        }
        Command::Release(a) => {
            // Part names as they are (`manifests[review/fix-a]`), as Kuberpult's clients send them.
            let mut form = Form::new().percent_encode_noop().text("application", a.application.clone());
            for (key, value) in [
                ("version", a.version.map(|v| v.to_string())),
                ("team", a.team.clone()),
                ("source_commit_id", a.source_commit_id.clone()),
                ("source_author", a.source_author.clone()),
                ("source_message", a.source_message.clone()),
                ("display_version", a.display_version.clone()),
            ] {
                if let Some(v) = value {
                    form = form.text(key, v);
                }
            }
            for m in &a.manifests {
                let (env, bytes) = manifest(m)?;
                form = form.part(format!("manifests[{env}]"), Part::bytes(bytes));
            }
            client.send(Method::POST, "/api/release", &[], Body::Multipart(form))?
        }
        Command::Deploy(a) => {
            let path = format!(
                "/api/environments/{}/applications/{}/deploy",
                segment(&a.environment),
                segment(&a.application)
            );
            let body = Deploy { version: Value::from(a.version), lock_behavior: Some(a.lock_behavior.clone()) };
            client.send(Method::PUT, &path, &[], Body::json(&body)?)?
        }
        Command::Lock(a) => {
            let body = CreateLock { message: a.message.clone(), ..CreateLock::default() };
            client.send(Method::PUT, &lock_path(a), &[], Body::json(&body)?)?
        }
        Command::Unlock(a) => call(Method::DELETE, &lock_path(a))?,
        Command::Rollback(a) => {
            let path = format!(
                "/api/environments/{}/applications/{}/rollback",
                segment(&a.environment),
                segment(&a.application)
            );
            let body = Rollback {
                version: a.version.map(Value::from),
                lock_id: a.lock_id.clone(),
                message: a.message.clone(),
            };
            client.send(Method::POST, &path, &[], Body::json(&body)?)?
        }
        Command::Undeploy { application } => {
            call(Method::POST, &format!("/api/applications/{}/undeploy", segment(application)))?
        }
        Command::DeleteApp { application } => {
            call(Method::DELETE, &format!("/api/applications/{}", segment(application)))?
        }
        Command::RemoveEnv { environment, application } => call(
            Method::DELETE,
            &format!("/api/environments/{}/applications/{}", segment(environment), segment(application)),
        )?,
        Command::Envs(c) => envs(client, c)?,
        Command::ReleaseCandidate(a) => {
            let mut manifests = BTreeMap::new();
            for m in &a.manifests {
                let (env, bytes) = manifest(m)?;
                manifests.insert(env, String::from_utf8(bytes).map_err(|_| anyhow!("{m}: not UTF-8"))?);
            }
            let body = CreateReleaseCandidate {
                repo: a.repo.clone(),
                commit: a.commit.clone(),
                trigger_build_workflow: a.trigger_build,
                manifests,
            };
            let path = format!("/api/releases/{}/releases/{}", segment(&a.project), segment(&a.rc));
            client.send(Method::POST, &path, &[], Body::json(&body)?)?
        }
        Command::Deployment(c) => match c {
            DeploymentCommand::Create { project, environment, rc } => {
                let path =
                    format!("/api/releases/{}/environments/{}/deployments", segment(project), segment(environment));
                let body = DeployReleaseCandidate { release_candidate_version: rc.clone() };
                client.send(Method::POST, &path, &[], Body::json(&body)?)?
            }
            DeploymentCommand::Status { project, environment, rc, status } => {
                let path =
                    format!("/api/releases/{}/environments/{}/deployments", segment(project), segment(environment));
                let body = SetDeploymentStatus { release_candidate_version: rc.clone(), status: status.clone() };
                client.send(Method::PATCH, &path, &[], Body::json(&body)?)?
            }
        },
        Command::History { environment, application, limit, before } => {
            let path = match (environment, application) {
                (Some(e), Some(a)) => format!("/api/environments/{}/applications/{}/history", segment(e), segment(a)),
                (Some(e), None) => format!("/api/environments/{}/history", segment(e)),
                (None, Some(a)) => format!("/api/applications/{}/history", segment(a)),
                (None, None) => "/api/history".to_owned(),
            };
            let mut query = vec![("limit", limit.to_string())];
            if let Some(b) = before {
                query.push(("before", b.clone()));
            }
            client.call(Method::GET, &path, &query)?
        }
        Command::Flow(c) => flow(client, c)?,
    })
}

fn envs(client: &Client, c: &EnvsCommand) -> anyhow::Result<Value> {
    let env_path = |env: &str| format!("/api/environments/{}", segment(env));
    Ok(match c {
        EnvsCommand::List { name, search, states } => {
            let mut q = Vec::new();
            for (k, v) in [("name", name), ("search", search), ("states", states)] {
                if let Some(v) = v {
                    q.push((k, v.clone()));
                }
            }
            client.call(Method::GET, "/api/environments", &q)?
        }
        EnvsCommand::Get { env } => client.call(Method::GET, &env_path(env), &[])?,
        EnvsCommand::Create { name, upstream_latest, upstream, group, tier, external_url, argocd } => {
            let upstream = if *upstream_latest {
                Some(Upstream { latest: Some(true), environment: None })
            } else {
                upstream.as_ref().map(|u| Upstream { latest: None, environment: Some(u.clone()) })
            };
            let body = CreateEnvironment {
                name: name.clone(),
                upstream,
                environment_group: group.clone(),
                tier: tier.clone(),
                external_url: external_url.clone(),
                argocd: argocd.as_deref().map(settings_file).transpose()?,
            };
            client.send(Method::POST, "/api/environments", &[], Body::json(&body)?)?
        }
        EnvsCommand::Update { env, upstream, group, tier, external_url, protected, argocd, no_argocd } => {
            let argocd = match argocd {
                Some(file) => Some(Some(settings_file(file)?)),
                None if *no_argocd => Some(None),
                None => None,
            };
            let body = UpdateEnvironment {
                upstream: upstream.as_ref().map(|u| Upstream { latest: None, environment: Some(u.clone()) }),
                environment_group: group.clone(),
                tier: tier.clone(),
                external_url: external_url.clone(),
                protected: *protected,
                argocd,
            };
            client.send(Method::PUT, &env_path(env), &[], Body::json(&body)?)?
        }
        EnvsCommand::Stop { env, force } => {
            client.call(Method::POST, &format!("{}/stop", env_path(env)), &[("force", force.to_string())])?
        }
        EnvsCommand::Argocd { env } => client.call(Method::GET, &format!("{}/argocd", env_path(env)), &[])?,
        EnvsCommand::Delete { env } => client.call(Method::DELETE, &env_path(env), &[])?,
    })
}

fn flow(client: &Client, c: &FlowCommand) -> anyhow::Result<Value> {
    let flow_path = |flow: &str| format!("/api/release-flows/{}", segment(flow));
    Ok(match c {
        FlowCommand::Put { flow, file } => {
            let bytes = read(file)?;
            let json = bytes.first().is_some_and(|b| *b == b'{');
            let ct = if json { "application/json" } else { "application/yaml" };
            client.send(Method::PUT, &flow_path(flow), &[], Body::Raw(ct.into(), bytes))?
        }
        FlowCommand::Get { flow } => client.call(Method::GET, &flow_path(flow), &[])?,
        FlowCommand::Runs { flow } => client.call(Method::GET, &format!("{}/runs", flow_path(flow)), &[])?,
        FlowCommand::Run { flow, args, overrides, name, description, dry_run } => {
            let mut body = RunFlow {
                name: name.clone(),
                description: description.clone(),
                arguments: pairs(args, "--arg")?.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
                dry_run: *dry_run,
                ..RunFlow::default()
            };
            for (k, v) in pairs(overrides, "--override")? {
                let (r, field) =
                    k.split_once('.').ok_or_else(|| anyhow!("--override {k}: expected REF.FIELD=VALUE"))?;
                let fields = body.overrides.entry(r.to_owned()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(fields) = fields {
                    fields.insert(field.to_owned(), Value::String(v));
                }
            }
            client.send(Method::POST, &format!("{}/runs", flow_path(flow)), &[], Body::json(&body)?)?
        }
    })
}
