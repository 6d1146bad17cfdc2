//! Release candidates and their deployments (the surface is Aviator's release API, `routes::compat::aviator`):
//! checked inputs, the build webhook, the writes.

use std::collections::BTreeMap;
use std::time::Duration;

use railyard_manifest::request::{
    CreateReleaseCandidate, DeployReleaseCandidate, DeploymentRecord, DeploymentStatus, ReleaseCandidateCreated,
    SetDeploymentStatus,
};
use railyard_manifest::transform::candidate::{valid_commit_hash, valid_release_candidate_version};
use railyard_manifest::{AppName, EnvName, Request};
use serde_json::{json, Value};

use super::{Service, Written};
use crate::error::{ApiError, ApiResult};

fn invalid_rc() -> ApiError {
    ApiError::bad_request("release_candidate_version", "Invalid release candidate version")
}

fn check_rc(rc: &str) -> ApiResult<()> {
    if valid_release_candidate_version(rc) {
        Ok(())
    } else {
        Err(invalid_rc())
    }
}

/// Creates release candidate `rc` of `project` as `b` describes it; with `trigger_build_workflow`, the build webhook
/// is told first (only for a caller who may make the candidate, and a candidate the writer would accept now).
pub async fn create(
    st: &Service,
    project: AppName,
    rc: String,
    b: railyard_wire::CreateReleaseCandidate,
) -> ApiResult<Written<ReleaseCandidateCreated>> {
    check_rc(&rc)?;
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
    let manifests = crate::routes::blob_ids(&contents)?;
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
        st.simulate_with_blobs(candidate, blobs.clone()).await?;
        request.build = Some(trigger_build(&url, &project, &rc, &b.repo, &b.commit).await);
    }
    super::write_with_blobs(st, Request::CreateReleaseCandidate(request), blobs).await
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

/// Deploys candidate `rc` of `application` to `environment`: the deploy and its deployment record (status
/// `pending`) in one commit.
pub async fn deploy(
    st: &Service,
    application: AppName,
    environment: &str,
    rc: String,
) -> ApiResult<Written<DeploymentRecord>> {
    check_rc(&rc)?;
    let environment = release_environment(environment)?;
    let request = DeployReleaseCandidate { application, environment, release_candidate_version: rc };
    super::write(st, Request::DeployReleaseCandidate(request)).await
}

/// Records `status` for the deployment of candidate `rc`; a deployment is recorded (without deploying) if there is
/// none for the candidate.
pub async fn set_status(
    st: &Service,
    application: AppName,
    environment: &str,
    rc: String,
    status: &str,
) -> ApiResult<Written<DeploymentRecord>> {
    check_rc(&rc)?;
    let status: DeploymentStatus = serde_json::from_value(json!(status)).map_err(|_| {
        ApiError::bad_request(
            "status",
            "status must be one of pending, in_progress, success, failure, canceling, canceled, unknown",
        )
    })?;
    let environment = release_environment(environment)?;
    let request = SetDeploymentStatus { application, environment, release_candidate_version: rc, status };
    super::write(st, Request::SetDeploymentStatus(request)).await
}

/// An environment name that is not even valid cannot exist: 404, as for an unknown one.
fn release_environment(raw: &str) -> ApiResult<EnvName> {
    EnvName::parse(raw).map_err(|_| {
        ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "Release environment not found")
            .with("what", json!("release environment"))
    })
}
