//! Railyard's domain: validated names, the manifest-repo layout, state read from git trees, and transformers
//! that turn one request into edits of a tree. No HTTP, no network.

pub mod argocd;
pub mod commit;
pub mod error;
pub mod flow;
pub mod history;
pub mod layout;
pub mod memory;
pub mod model;
pub mod names;
pub mod request;
pub mod stage;
pub mod state;
pub mod transform;

pub use error::{BlockingLock, Error, Result};
pub use model::*;
pub use names::{AppName, EnvName, GroupName, LockId, NameError, TagName, TeamName, Version};
pub use request::{Envelope, LockBehavior, LockTarget, Outcome, Request, SkipReason, TrainTarget};
pub use stage::Stage;
pub use transform::{apply, finish};
