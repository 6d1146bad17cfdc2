//! Release flows: the body of a run and the run records `GET /api/release-flows/{flow}/runs` answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /api/release-flows/{flow}/runs` (and Northflank's run): run a flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = FlowRun))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunFlow {
    /// The run's name: 3 to 39 of `[a-z0-9-]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 3, max_length = 39))]
    pub name: Option<String>,
    /// What it is for (up to 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub description: Option<String>,
    /// The template's `${args.NAME}`, by name: strings, numbers or booleans.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub arguments: Map<String, Value>,
    /// Fields of steps to replace, by step `ref`: an object of field to value each.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub overrides: Map<String, Value>,
    /// Northflank's per-node overrides, by node `ref`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub release_node_overrides: Map<String, Value>,
    /// Show what would happen; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `GET /api/release-flows/{flow}/runs`: a flow's runs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowRuns {
    /// The run records.
    pub runs: Vec<FlowRun>,
}

/// A run record: what was asked and what each step did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowRun {
    /// The run's number in its flow.
    pub id: u64,
    /// The flow.
    pub flow: String,
    /// The run's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it was for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `succeeded` or `failed`.
    pub status: String,
    /// The `ref` of the step that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each step, in order.
    pub steps: Vec<FlowStep>,
    /// The arguments given.
    pub arguments: BTreeMap<String, String>,
    /// The overrides given, by step `ref` and field.
    pub overrides: BTreeMap<String, BTreeMap<String, String>>,
    /// What replaced a release for an application, by application.
    #[serde(rename = "releaseNodeOverrides")]
    pub release_node_overrides: BTreeMap<String, NodeOverride>,
    /// When it ran (RFC 3339 UTC).
    pub created_at: String,
    /// Who ran it.
    pub created_by_name: String,
    /// Their email address.
    pub created_by_email: String,
}

/// One step of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowStep {
    /// The step's `ref` in the template.
    #[serde(rename = "ref")]
    pub step_ref: String,
    /// What it does: `release-train`, `deploy`, `lock`, `unlock` or `tag`.
    pub kind: String,
    /// `applied`, `failed` or `not_run`.
    pub status: String,
    /// What it did (the answer of the write it stands for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What replaces a deploy's (or a train's) release for one application: a version or a release candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NodeOverride {
    /// A release number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// A release candidate (`<release-version>-rc<N>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_candidate: Option<String>,
}
