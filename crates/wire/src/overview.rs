//! `GET /api/overview`: every environment with its settings, locks and what each application runs there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{EnvironmentConfig, Lock};

/// The answer of `GET /api/overview`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Overview {
    /// Every environment, by name.
    pub environments: Vec<EnvironmentOverview>,
}

/// One environment with everything in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvironmentOverview {
    /// The environment's name.
    pub name: String,
    /// Its stored settings.
    pub config: EnvironmentConfig,
    /// The environment's own locks: nothing moves into it while one is there.
    pub locks: Vec<Lock>,
    /// Team locks, by team.
    pub team_locks: BTreeMap<String, Vec<Lock>>,
    /// The applications deployed (or queued) there.
    pub applications: Vec<DeployedApp>,
}

/// An application as deployed in one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeployedApp {
    /// The application's name.
    pub application: String,
    /// The version deployed (none: removed, or only queued).
    pub version: Option<u64>,
    /// A version that waits for a lock to go.
    pub queued_version: Option<u64>,
    /// The application's team.
    pub team: Option<String>,
    /// Who deployed it.
    pub deployed_by: Option<String>,
    /// Their email address.
    pub deployed_by_email: Option<String>,
    /// When (RFC 3339 UTC).
    pub deployed_at_utc: Option<String>,
    /// The application's locks in the environment.
    pub locks: Vec<Lock>,
}
