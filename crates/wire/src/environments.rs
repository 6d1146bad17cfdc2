//! Environments: their settings, the views `GET /api/environments[/{env}]` answer, and the create and update
//! bodies.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Where an environment takes its releases from: every new release (`latest`) or another environment's versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Upstream {
    /// `true`: the newest release of every application with a manifest for the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<bool>,
    /// The environment whose versions release trains take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// An environment's stored settings (`environments/<env>/config.json`), as the overview's `config` holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvironmentConfig {
    /// Where releases come from (none: only deploys move it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// The group a group train or lock reaches it through.
    #[serde(rename = "environmentGroup", skip_serializing_if = "Option::is_none")]
    pub environment_group: Option<String>,
    /// GitLab's deployment tier: `production`, `staging`, `testing`, `development` or `other`.
    pub tier: String,
    /// Where the environment can be seen running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// `available`, `stopping` or `stopped`.
    pub state: String,
    /// A protected environment cannot be stopped or deleted.
    pub protected: bool,
    /// The number GitLab's clients address it by.
    pub id: u64,
    /// When it was created (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When its settings last changed (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Argo CD settings (docs/api.md, "Argo CD"); with them the environment gets its generated Argo CD file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argocd: Option<Value>,
}

/// One environment as `GET /api/environments/{env}` (and each item of the list) answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    /// The environment's name.
    pub name: String,
    /// GitLab's slug of the name.
    pub slug: String,
    /// The stored settings, at the top level of the object.
    #[serde(flatten)]
    pub config: EnvironmentConfig,
    /// The latest deployment: a release candidate's deployment record, or the latest deploy read from the files
    /// (two shapes, docs/api.md); null when nothing was deployed.
    pub last_deployment: Option<Value>,
}

/// `GET /api/environments`: the environments the filters keep, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvironmentList {
    /// The environments.
    pub environments: Vec<Environment>,
}

/// `POST /api/environments`: a new environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EnvironmentCreate))]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    /// Its name.
    pub name: String,
    /// Where it takes releases from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// Its group.
    #[serde(
        rename = "environmentGroup",
        alias = "environment_group",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub environment_group: Option<String>,
    /// Its tier (default: guessed from the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::tier))]
    pub tier: Option<String>,
    /// Where it can be seen running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Its Argo CD settings: `destination`, `syncWindows`, `accessList`, `applicationAnnotations`,
    /// `ignoreDifferences`, `syncOptions` (docs/manifest-repo.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub argocd: Option<Value>,
}

/// `PUT /api/environments/{env}`: the settings to change; an absent one stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EnvironmentUpdate))]
#[serde(deny_unknown_fields)]
pub struct UpdateEnvironment {
    /// A new upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// A new group.
    #[serde(
        rename = "environmentGroup",
        alias = "environment_group",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub environment_group: Option<String>,
    /// A new tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::tier))]
    pub tier: Option<String>,
    /// A new external URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Protect it (or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    /// New Argo CD settings; `Some(None)` (sent as `null`) removes them and the environment's Argo CD file.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub argocd: Option<Option<Value>>,
}

/// Keeps a present `null` (Some(None)) apart from an absent field (None, by `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_environment_view_holds_its_settings_at_the_top_level() {
        let v = json!({"name": "prod", "slug": "prod", "id": 3, "tier": "production", "state": "available",
            "protected": false, "upstream": {"environment": "staging"}, "environmentGroup": "live",
            "last_deployment": null, "not_known_yet": 1});
        let env: Environment = serde_json::from_value(v).expect("environment");
        assert_eq!(env.config.tier, "production");
        assert_eq!(env.config.environment_group.as_deref(), Some("live"));
        assert_eq!(env.config.upstream.and_then(|u| u.environment).as_deref(), Some("staging"));
    }

    #[test]
    fn an_update_sends_a_removed_argocd_as_null_and_an_unchanged_one_not_at_all() {
        let remove = UpdateEnvironment { argocd: Some(None), ..Default::default() };
        assert_eq!(serde_json::to_value(&remove).expect("json"), json!({"argocd": null}));
        assert_eq!(serde_json::to_value(UpdateEnvironment::default()).expect("json"), json!({}));
        let back: UpdateEnvironment = serde_json::from_value(json!({"argocd": null})).expect("update");
        assert_eq!(back, remove);
        let back: UpdateEnvironment = serde_json::from_value(json!({})).expect("update");
        assert_eq!(back.argocd, None);
    }
}
