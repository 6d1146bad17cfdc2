//! Locks: as the overview and the lock listings show them, and the body that creates one.

use serde::{Deserialize, Serialize};

/// A lock on an environment, an application in one, a team in one, or an environment group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lock {
    /// The lock's id, chosen by whoever set it.
    #[serde(rename = "lockId")]
    pub lock_id: String,
    /// Why.
    pub message: String,
    /// Who set it.
    pub created_by_name: String,
    /// Their email address.
    pub created_by_email: String,
    /// When (RFC 3339 UTC).
    pub created_at: String,
}

/// `PUT …/locks/{lock}`: the body of a new lock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Lock))]
#[serde(deny_unknown_fields)]
pub struct CreateLock {
    /// Why.
    #[serde(default)]
    pub message: String,
    /// Sent by newer Kuberpult clients; accepted and not stored.
    #[serde(rename = "ciLink", default, skip_serializing_if = "Option::is_none")]
    pub ci_link: Option<String>,
    /// Sent by newer Kuberpult clients; accepted and not stored (locks do not expire).
    #[serde(rename = "suggestedLifeTime", default, skip_serializing_if = "Option::is_none")]
    pub suggested_life_time: Option<String>,
}
