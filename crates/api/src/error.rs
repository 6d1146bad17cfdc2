//! The API's one error type: every domain error is mapped to an HTTP status here and nowhere else.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use railyard_manifest::Error as DomainError;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra members of the JSON body (`field`, `locks`, ...).
    pub extra: serde_json::Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: serde_json::Map::new() }
    }

    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message).with("field", json!(field))
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message.to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let message = e.to_string();
        match e {
            DomainError::InvalidName(n) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_name", message).with("field", json!(n.kind))
            }
            DomainError::Invalid { field, .. } => Self::bad_request(&field, message),
            DomainError::NotFound { what, .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", message).with("what", json!(what))
            }
            DomainError::Conflict { code, .. } => Self::new(StatusCode::CONFLICT, code, message),
            DomainError::Blocked { code, environments, .. } => {
                Self::new(StatusCode::CONFLICT, code, message).with("environments", json!(environments))
            }
            DomainError::Locked { locks, .. } => {
                Self::new(StatusCode::CONFLICT, "locked", message).with("locks", json!(locks))
            }
            DomainError::Corrupt { .. } => {
                tracing::error!(error = %message, "corrupt repository data");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt_repository", message)
            }
            DomainError::Git(g) => g.into(),
        }
    }
}

/// A failed repository operation. The answer never carries git's own message, which names server paths; the log
/// line does.
impl From<git2::Error> for ApiError {
    fn from(e: git2::Error) -> Self {
        tracing::error!(error = %e, "repository operation failed");
        if says_disk_full(&e.to_string()) {
            return disk_full("the repository operation failed");
        }
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "repository_error",
            "a repository operation failed; the server log has the details",
        )
    }
}

fn says_disk_full(message: &str) -> bool {
    message.contains("No space left on device") || message.contains("os error 28")
}

fn disk_full(context: &str) -> ApiError {
    ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "disk_full", format!("no space left on the repo's disk: {context}"))
}

/// Free bytes below which a failed write is put down to a full disk: libgit2 does not always say so (it has
/// answered "no error" for a short write).
const NEARLY_FULL: u64 = 1024 * 1024;

/// True when the filesystem of `dir` has (nearly) no space left.
#[cfg(target_os = "linux")]
fn disk_nearly_full(dir: &std::path::Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) < NEARLY_FULL)
}

#[cfg(not(target_os = "linux"))]
fn disk_nearly_full(_dir: &std::path::Path) -> bool {
    false
}

/// The answer to a write the repo in `repo_dir` could not store: 507 when its disk is full, else 500; `context`
/// says what happened to the request. The git error goes to the log only (it names server paths).
pub fn storage_error(repo_dir: &std::path::Path, e: &git2::Error, context: &str) -> ApiError {
    if says_disk_full(&e.to_string()) || disk_nearly_full(repo_dir) {
        tracing::error!(error = %e, repo = %repo_dir.display(), "no space left on the repo's disk");
        return disk_full(context);
    }
    tracing::error!(error = %e, "repository write failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "repository_error",
        format!("{context} (the server log has the details)"),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = self.code, error = %self.message, "request failed");
        }
        let body = ErrorBody { error: self.message, code: self.code.to_owned(), extra: self.extra };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The body of every error answer on the native API: the reason, a code a client can match on, and what the
/// error adds (`field`, `what`, `locks`, `environments`, `conflicting_tag`, …) beside them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: serde_json::Map<String, Value>,
}
