//! The one error type of the domain; the API maps each variant to an HTTP status in one place.

use std::borrow::Cow;

use serde::Serialize;

use crate::names::NameError;

/// A lock that stopped a write, as reported to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockingLock {
    /// `environment`, `application` or `team`.
    pub scope: &'static str,
    pub environment: String,
    pub lock_id: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name or version that does not match its pattern (client error).
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Any other invalid input; `field` names the offending field.
    #[error("{message}")]
    Invalid { field: Cow<'static, str>, message: String },
    /// Something named by the request does not exist.
    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },
    /// The request contradicts the current state; `code` is a stable snake_case reason.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The state of some environments stands in the way; `environments` names them.
    #[error("{message}")]
    Blocked { code: &'static str, message: String, environments: Vec<String> },
    /// Locks hold the write back.
    #[error("{message}")]
    Locked { message: String, locks: Vec<BlockingLock> },
    /// A file in the repo does not hold what the layout says it should.
    #[error("repository file {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

impl Error {
    pub fn not_found(what: &'static str, name: impl ToString) -> Self {
        Self::NotFound { what, name: name.to_string() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
