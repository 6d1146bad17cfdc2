//! `GET /api/environments/{env}/argocd`: the Argo CD objects generated for an environment.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The environment's Argo CD file, read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArgoCdObjects {
    /// The environment's name.
    pub environment: String,
    /// The file's path in the manifest repo.
    pub path: String,
    /// The AppProject, then one Application per application, as Kubernetes objects.
    pub objects: Vec<Value>,
}
