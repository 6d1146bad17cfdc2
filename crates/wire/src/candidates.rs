//! Release candidates and their deployments (GitHub-style `/api/releases/{project}/…`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/releases/{project}/releases/{rc}`: a release candidate of a project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateReleaseCandidate {
    /// `org/repo` the candidate was built from.
    pub repo: String,
    /// The source commit.
    pub commit: String,
    /// Trigger the build workflow (when the server has one configured).
    #[serde(default)]
    pub trigger_build_workflow: bool,
    /// Manifests by environment.
    #[serde(default)]
    pub manifests: BTreeMap<String, String>,
}

/// `POST /api/releases/{project}/environments/{env}/deployments`: deploy a candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployReleaseCandidate {
    /// `<release-version>-rc<N>`.
    pub release_candidate_version: String,
}

/// `PATCH /api/releases/{project}/environments/{env}/deployments`: report a deployment's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetDeploymentStatus {
    /// `<release-version>-rc<N>`.
    pub release_candidate_version: String,
    /// `pending`, `in_progress`, `success`, `failure`, `canceling`, `canceled` or `unknown`.
    pub status: String,
}
