//! The documents stored in the repo and the records read back from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::{AppName, EnvName, GroupName, LockId, TeamName, Version};

/// Where an environment takes its releases from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// Newest release of every app (with a manifest for this env).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<bool>,
    /// The versions deployed in another environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvName>,
}

impl Upstream {
    pub fn is_latest(&self) -> bool {
        self.latest == Some(true)
    }
}

/// GitLab's deployment tiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Production,
    Staging,
    Testing,
    Development,
    #[default]
    Other,
}

impl Tier {
    /// GitLab's guess from the name when no tier is given.
    pub fn guess(env: &EnvName) -> Self {
        let n = env.as_str();
        let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
        if has(&["prod", "live"]) {
            Tier::Production
        } else if has(&["stag", "model", "demo", "pre"]) {
            Tier::Staging
        } else if has(&["test", "qa"]) {
            Tier::Testing
        } else if has(&["dev", "review", "trunk"]) {
            Tier::Development
        } else {
            Tier::Other
        }
    }
}

/// The life-cycle state of an environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvState {
    #[default]
    Available,
    Stopping,
    Stopped,
}

/// `environments/<env>/config.json`. Fields Railyard does not know are kept as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    #[serde(rename = "environmentGroup", default, skip_serializing_if = "Option::is_none")]
    pub environment_group: Option<GroupName>,
    #[serde(default)]
    pub tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    #[serde(default)]
    pub state: EnvState,
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Argo CD settings: with them the environment gets `argocd/v1alpha1/<env>.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<crate::argocd::ArgoCd>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl EnvironmentConfig {
    /// The group of the environment: its `environmentGroup`, or its own name when it has none (Kuberpult).
    pub fn group_or(&self, env: &EnvName) -> String {
        self.environment_group.as_ref().map_or_else(|| env.to_string(), ToString::to_string)
    }
}

/// A lock as stored in a lock directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    #[serde(rename = "lockId")]
    pub id: LockId,
    pub message: String,
    pub created_by_name: String,
    pub created_by_email: String,
    pub created_at: String,
}

/// A release of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub application: AppName,
    pub version: Version,
    pub source_commit_id: String,
    pub source_author: String,
    pub source_message: String,
    pub display_version: String,
    pub created_at: String,
    /// True for an undeploy release (empty manifests; `DELETE /api/applications/{app}` needs it everywhere).
    pub undeploy: bool,
    /// Environments this release has a manifest for.
    pub environments: Vec<EnvName>,
    #[serde(skip)]
    pub manifests: BTreeMap<EnvName, git2::Oid>,
}

/// An application as deployed in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployedApp {
    pub application: AppName,
    pub version: Option<Version>,
    pub queued_version: Option<Version>,
    pub team: Option<TeamName>,
    pub deployed_by: Option<String>,
    pub deployed_by_email: Option<String>,
    pub deployed_at_utc: Option<String>,
    pub locks: Vec<Lock>,
}

/// One environment with everything in it (the overview's unit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentOverview {
    pub name: EnvName,
    pub config: EnvironmentConfig,
    pub locks: Vec<Lock>,
    pub team_locks: BTreeMap<TeamName, Vec<Lock>>,
    pub applications: Vec<DeployedApp>,
}

/// Who asked for a write: the commit author and the `created_by_*` / `deployed_by*` of what it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self { name: "railyard".into(), email: "railyard@localhost".into() }
    }
}

/// A validated template: its steps in order, each a map of its fields (with `ref` and `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub steps: Vec<BTreeMap<String, String>>,
}

/// What replaces a deploy's (or a train's) release for one application: a version or a release candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_candidate: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Pending,
    InProgress,
    Success,
    Failure,
    Canceling,
    Canceled,
    Unknown,
}

/// A deployment record, as stored in `applications/<app>/deployments/<env>/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: u64,
    pub project: AppName,
    pub environment: EnvName,
    pub release_candidate_version: String,
    pub version: Version,
    pub status: DeploymentStatus,
    /// True when Railyard deployed it (POST); false when only the status was reported (PATCH).
    pub deployed: bool,
    pub created_at: String,
    pub updated_at: String,
    pub created_by_name: String,
    pub created_by_email: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Applied,
    Failed,
    NotRun,
}

/// One step of a run, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    #[serde(rename = "ref")]
    pub step_ref: String,
    pub kind: String,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A run record, as stored in `release-flows/<flow>/runs/<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRunRecord {
    pub id: u64,
    pub flow: EnvName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: Vec<StepRecord>,
    pub arguments: BTreeMap<String, String>,
    pub overrides: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(rename = "releaseNodeOverrides")]
    pub release_node_overrides: BTreeMap<AppName, NodeOverride>,
    pub created_at: String,
    pub created_by_name: String,
    pub created_by_email: String,
}
