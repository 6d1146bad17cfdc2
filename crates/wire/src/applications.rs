//! Applications: the settings `PUT /api/applications/{app}` changes.

use serde::{Deserialize, Serialize};

/// `PUT /api/applications/{app}`: the application's team or source repository; an absent one stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApplicationUpdate))]
#[serde(deny_unknown_fields)]
pub struct UpdateApplication {
    /// The team that owns it (locks and roles by team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Where its source lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}
