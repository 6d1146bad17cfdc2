//! The write requests the single writer applies, as recorded in each commit's `Railyard-Request` trailer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{EnvironmentConfig, Identity, Tier, Upstream};
use crate::names::{AppName, EnvName, GroupName, LockId, TeamName, Version};

/// What a deploy does when a lock stands in the way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockBehavior {
    /// Refuse with 409 naming the locks.
    #[default]
    Fail,
    /// Record the version as `queued_version`; a later train or deploy moves it.
    Queue,
    /// Deploy anyway.
    Ignore,
}

/// What a lock is put on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum LockTarget {
    Environment {
        environment: EnvName,
    },
    Application {
        environment: EnvName,
        application: AppName,
    },
    Team {
        environment: EnvName,
        team: TeamName,
    },
    /// Every environment of the group (one commit).
    EnvironmentGroup {
        group: GroupName,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEnvironment {
    pub name: EnvName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_group: Option<GroupName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRelease {
    pub application: AppName,
    /// None: the next number after the highest existing release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    #[serde(default)]
    pub source_commit_id: String,
    #[serde(default)]
    pub source_author: String,
    #[serde(default)]
    pub source_message: String,
    #[serde(default)]
    pub display_version: String,
    /// Environment → blob id (hex) of the manifests, already written to the repo's object store.
    pub manifests: BTreeMap<EnvName, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    pub environment: EnvName,
    pub application: AppName,
    pub version: Version,
    #[serde(default)]
    pub lock_behavior: LockBehavior,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateLock {
    pub target: LockTarget,
    pub lock_id: LockId,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteLock {
    pub target: LockTarget,
    pub lock_id: LockId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateApplication {
    pub application: AppName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Request {
    CreateEnvironment(CreateEnvironment),
    CreateRelease(CreateRelease),
    Deploy(Deploy),
    CreateLock(CreateLock),
    DeleteLock(DeleteLock),
    UpdateApplication(UpdateApplication),
}

/// A request with who asked and when: what the trailer records, so that a write can be replayed as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub author: Identity,
    /// RFC 3339 UTC time the request was accepted; written into `created_at` / `deployed_at_utc`.
    pub at: String,
    pub request: Request,
}

fn target_text(t: &LockTarget) -> String {
    match t {
        LockTarget::Environment { environment } => format!("environment {environment}"),
        LockTarget::Application {
            environment,
            application,
        } => format!("{application} in {environment}"),
        LockTarget::Team { environment, team } => format!("team {team} in {environment}"),
        LockTarget::EnvironmentGroup { group } => format!("environment group {group}"),
    }
}

impl Request {
    /// A line a person can read, for the commit message.
    pub fn summary(&self) -> String {
        match self {
            Request::CreateEnvironment(r) => format!("create environment {}", r.name),
            Request::CreateRelease(r) => {
                let envs: Vec<&str> = r.manifests.keys().map(EnvName::as_str).collect();
                let v = r
                    .version
                    .map_or_else(|| "(next)".to_owned(), |v| v.to_string());
                format!("release {} {v} ({})", r.application, envs.join(", "))
            }
            Request::Deploy(r) => format!(
                "deploy {} {} to {}",
                r.application, r.version, r.environment
            ),
            Request::CreateLock(r) => format!("lock {}: {}", target_text(&r.target), r.lock_id),
            Request::DeleteLock(r) => format!("unlock {}: {}", target_text(&r.target), r.lock_id),
            Request::UpdateApplication(r) => format!("update application {}", r.application),
        }
    }
}

/// What one request did (the HTTP answer adds the commit).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Environment(EnvironmentCreated),
    Release(ReleaseCreated),
    Deploy(Deployed),
    Lock(LockChanged),
    Application(ApplicationUpdated),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentCreated {
    pub name: EnvName,
    #[serde(flatten)]
    pub config: EnvironmentConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseCreated {
    pub application: AppName,
    pub version: Version,
    /// False when the same release already existed with identical content.
    pub created: bool,
    /// `upstream.latest` environments the release was deployed to at once.
    pub deployed: Vec<EnvName>,
    /// `upstream.latest` environments where a lock queued it instead.
    pub queued: Vec<EnvName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployed {
    pub environment: EnvName,
    pub application: AppName,
    pub version: Version,
    pub previous_version: Option<Version>,
    /// True when a lock queued the version instead of deploying it.
    pub queued: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockChanged {
    #[serde(rename = "lockId")]
    pub lock_id: LockId,
    pub environments: Vec<EnvName>,
    /// False when every environment already was as asked.
    pub changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplicationUpdated {
    pub application: AppName,
    pub team: Option<TeamName>,
    pub repository: Option<String>,
}
