//! Deploys and rollbacks of one application in one environment.

use serde::{Deserialize, Serialize};

/// `PUT /api/environments/{env}/applications/{app}/deploy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    /// The release to deploy (the server also takes a string holding the number).
    pub version: u64,
    /// `fail`, `queue` or `ignore`: what to do when a lock is in the way (default `fail`).
    #[serde(rename = "lockBehavior", default, skip_serializing_if = "Option::is_none")]
    pub lock_behavior: Option<String>,
}

/// `POST /api/environments/{env}/applications/{app}/rollback`: deploy an older release and lock the application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// The release to go back to (none: the one before the deployed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The application lock to create (none: `rollback-<version>`).
    #[serde(rename = "lockId", default, skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<String>,
    /// Why (the lock's message).
    pub message: String,
}
