//! The request bodies and answers of Railyard's native API (`/api/…`, docs/api.md) as plain serde types, one place
//! for the server, the `railyard` CLI and the tests. Names stay strings here: the server validates them.
//!
//! Answers tolerate fields they do not name and fields the server omits, so a newer server does not break an older
//! client. Request bodies are what the server reads (strict: `deny_unknown_fields`), and send only what is set.
//! With the `openapi` feature the request bodies derive utoipa's `ToSchema`, so the server's OpenAPI document is
//! derived from these very types.

mod applications;
mod argocd;
mod candidates;
mod deploy;
mod environments;
mod flows;
mod history;
mod locks;
mod overview;
#[cfg(feature = "openapi")]
mod schema;
mod trains;

pub use applications::UpdateApplication;
pub use argocd::ArgoCdObjects;
pub use candidates::{CreateReleaseCandidate, DeployReleaseCandidate, SetDeploymentStatus};
pub use deploy::{Deploy, Rollback};
pub use environments::{
    CreateEnvironment, Environment, EnvironmentConfig, EnvironmentList, UpdateEnvironment, Upstream,
};
pub use flows::{FlowRun, FlowRuns, FlowStep, NodeOverride, RunFlow};
pub use history::{Author, HistoryEntry, HistoryPage};
pub use locks::{CreateLock, Lock};
pub use overview::{DeployedApp, EnvironmentOverview, Overview};
pub use trains::{EnvironmentTrain, Train, TrainMove, TrainSkip};
