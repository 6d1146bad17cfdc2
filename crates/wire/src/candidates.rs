//! Release candidates and their deployments (GitHub-style `/api/releases/{project}/…`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/releases/{project}/releases/{rc}`: a release candidate of a project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ReleaseCandidate))]
#[serde(deny_unknown_fields)]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CandidateDeploy))]
#[serde(deny_unknown_fields)]
pub struct DeployReleaseCandidate {
    /// `<release-version>-rc<N>`.
    pub release_candidate_version: String,
}

/// `PATCH /api/releases/{project}/environments/{env}/deployments`: report a deployment's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DeploymentStatusUpdate))]
#[serde(deny_unknown_fields)]
pub struct SetDeploymentStatus {
    /// `<release-version>-rc<N>`.
    pub release_candidate_version: String,
    /// `pending`, `in_progress`, `success`, `failure`, `canceling`, `canceled` or `unknown`.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::deployment_status))]
    pub status: String,
}
