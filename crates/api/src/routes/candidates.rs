//! Release candidates and deployments, Aviator's release API: `/api/releases/{project}/…`. A project is an
//! application; errors carry Aviator's messages (`Invalid release candidate version`, `Release not found`, …).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{
    CreateReleaseCandidate, DeployReleaseCandidate, DeploymentRecord, DeploymentStatus, ReleaseCandidateCreated,
    SetDeploymentStatus,
};
use railyard_manifest::transform::candidate::{valid_commit_hash, valid_release_candidate_version};
use railyard_manifest::{AppName, EnvName, Request};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};
use crate::service::Service;
use crate::service::{self, Written};

type Reply = ApiResult<(StatusCode, Json<Value>)>;

/// Aviator's wording for what is not found.
fn aviator(mut e: ApiError) -> ApiError {
    if e.status == StatusCode::NOT_FOUND {
        let message = match e.extra.get("what").and_then(Value::as_str) {
            Some("release environment") => Some("Release environment not found"),
            Some("release") => Some("Release not found"),
            Some("repository") => Some("Repository not found"),
            _ => None,
        };
        if let Some(m) = message {
            e.message = m.to_owned();
        }
    }
    e
}

fn invalid_rc() -> ApiError {
    ApiError::bad_request("release_candidate_version", "Invalid release candidate version")
}

#[utoipa::path(
    post,
    path = "/releases/{project}/releases/{rc}",
    summary = "Create a release candidate",
    params(("project" = String, Path, description = "project (an application)"), ("rc" = String, Path, description = "release candidate version (<version>-rc<N>)")),
    request_body = railyard_wire::CreateReleaseCandidate,
    responses((status = 201, description = "success", body = Object)),
)]
/// `POST /api/releases/{project}/releases/{rc}` → 201 (200: the same candidate again).
pub async fn create(st: Service, p: Params, JsonBody(b): JsonBody<railyard_wire::CreateReleaseCandidate>) -> Reply {
    let project = p.get::<AppName, _>("project")?;
    let rc = p.raw("rc").to_owned();
    if !valid_release_candidate_version(&rc) {
        return Err(invalid_rc());
    }
    if !valid_commit_hash(&b.commit) {
        return Err(ApiError::bad_request("commit", "Invalid commit hash"));
    }
    let valid_repo = b.repo.split_once('/').is_some_and(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'));
    if !valid_repo || b.repo.len() > 200 || b.repo.chars().any(char::is_control) {
        return Err(ApiError::bad_request("repo", "repo must be \"org/repo\""));
    }
    let mut contents = BTreeMap::new();
    for (env, yaml) in b.manifests {
        let env = EnvName::parse(&env).map_err(|e| ApiError::from(railyard_manifest::Error::from(e)))?;
        contents.insert(env, yaml.into_bytes());
    }
    let manifests = super::blob_ids(&contents)?;
    let blobs: Vec<Vec<u8>> = contents.into_values().collect();
    let mut request = CreateReleaseCandidate {
        application: project.clone(),
        release_candidate_version: rc.clone(),
        repository: b.repo.clone(),
        commit: b.commit.clone(),
        manifests,
        build: None,
    };
    if b.trigger_build_workflow {
        let Some(url) = st.build_webhook.clone() else {
            return Err(ApiError::bad_request(
                "trigger_build_workflow",
                "trigger_build_workflow is true but no build webhook is configured for this project (--build-webhook)",
            ));
        };
        // The webhook is a side effect: it fires only for a caller who may make the candidate, and for a candidate
        // that would be accepted as things stand (the same check the writer makes, on a scratch copy).
        let candidate = Request::CreateReleaseCandidate(request.clone());
        st.authorize(&candidate).await?;
        st.simulate_with_blobs(candidate, blobs.clone()).await.map_err(aviator)?;
        request.build = Some(trigger_build(&url, &project, &rc, &b.repo, &b.commit).await);
    }
    let written: Written<ReleaseCandidateCreated> =
        service::write_with_blobs(&st, Request::CreateReleaseCandidate(request), blobs).await.map_err(aviator)?;
    let status = if written.outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!(written))))
}

/// POSTs the candidate to the build webhook; the answer (or why there is none) is recorded with the candidate.
async fn trigger_build(url: &str, project: &AppName, rc: &str, repo: &str, commit: &str) -> Value {
    let body = json!({ "project": project, "release_candidate_version": rc, "repo": repo, "commit": commit });
    let shown = railyard_export::redact(url);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build();
    let answer = match client {
        Ok(c) => c.post(url).json(&body).send().await,
        Err(e) => return json!({ "url": shown, "error": e.to_string() }),
    };
    match answer {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let mut text = resp.text().await.unwrap_or_default();
            text.truncate(4096);
            tracing::info!(webhook = %shown, status, release_candidate = %rc, "build webhook answered");
            json!({ "url": shown, "status": status, "body": text })
        }
        Err(e) => {
            tracing::warn!(webhook = %shown, error = %e, "build webhook failed");
            json!({ "url": shown, "error": e.to_string() })
        }
    }
}

#[utoipa::path(
    post,
    path = "/releases/{project}/environments/{env}/deployments",
    summary = "Deploy a release candidate",
    params(("project" = String, Path, description = "project (an application)"), ("env" = String, Path, description = "environment name (or GitLab id)")),
    request_body = railyard_wire::DeployReleaseCandidate,
    responses((status = 201, description = "success", body = Object)),
)]
/// `POST /api/releases/{project}/environments/{env}/deployments` → 201 with the record (status `pending`); the
/// deploy is in the same commit. Locked: 409 with the locks.
pub async fn deploy(st: Service, p: Params, JsonBody(b): JsonBody<railyard_wire::DeployReleaseCandidate>) -> Reply {
    let application = p.get::<AppName, _>("project")?;
    if !valid_release_candidate_version(&b.release_candidate_version) {
        return Err(invalid_rc());
    }
    let environment = env_param(&p)?;
    let request =
        DeployReleaseCandidate { application, environment, release_candidate_version: b.release_candidate_version };
    let written: Written<DeploymentRecord> =
        service::write(&st, Request::DeployReleaseCandidate(request)).await.map_err(aviator)?;
    Ok((StatusCode::CREATED, Json(json!(written))))
}

#[utoipa::path(
    patch,
    path = "/releases/{project}/environments/{env}/deployments",
    summary = "Set a deployment's status",
    params(("project" = String, Path, description = "project (an application)"), ("env" = String, Path, description = "environment name (or GitLab id)")),
    request_body = railyard_wire::SetDeploymentStatus,
    responses((status = 200, description = "success", body = Object)),
)]
/// `PATCH …/deployments` → 200; records a deployment (without deploying) if there is none for the candidate.
pub async fn set_status(st: Service, p: Params, JsonBody(b): JsonBody<railyard_wire::SetDeploymentStatus>) -> Reply {
    let application = p.get::<AppName, _>("project")?;
    if !valid_release_candidate_version(&b.release_candidate_version) {
        return Err(invalid_rc());
    }
    let status: DeploymentStatus = serde_json::from_value(json!(b.status)).map_err(|_| {
        ApiError::bad_request(
            "status",
            "status must be one of pending, in_progress, success, failure, canceling, canceled, unknown",
        )
    })?;
    let environment = env_param(&p)?;
    let request = SetDeploymentStatus {
        application,
        environment,
        release_candidate_version: b.release_candidate_version,
        status,
    };
    let written: Written<DeploymentRecord> =
        service::write(&st, Request::SetDeploymentStatus(request)).await.map_err(aviator)?;
    Ok((StatusCode::OK, Json(json!(written))))
}

/// An environment name that is not even valid cannot exist: Aviator's 404.
fn env_param(p: &Params) -> ApiResult<EnvName> {
    EnvName::parse(p.raw("env")).map_err(|_| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Release environment not found")
            .with("what", json!("release environment"))
    })
}
