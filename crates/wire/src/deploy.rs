//! Deploys and rollbacks of one application in one environment.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `PUT /api/environments/{env}/applications/{app}/deploy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The release to deploy: a number, or a string holding one (anything else is 400 naming `version`).
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::version))]
    pub version: Value,
    /// What to do when a lock is in the way (default `fail`).
    #[serde(rename = "lockBehavior", alias = "lock_behavior", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::lock_behavior))]
    pub lock_behavior: Option<String>,
}

/// `POST /api/environments/{env}/applications/{app}/rollback`: deploy an older release and lock the application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The release to go back to, as for a deploy (none: the one before the deployed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::version))]
    pub version: Option<Value>,
    /// The application lock to create (none: `rollback-<version>`).
    #[serde(rename = "lockId", alias = "lock_id", default, skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<String>,
    /// Why (the lock's message).
    pub message: String,
}
