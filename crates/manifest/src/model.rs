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
