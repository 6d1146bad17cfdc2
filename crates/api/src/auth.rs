//! Authentication and authorisation (`--auth-tokens FILE`): tokens stored as SHA-256 hashes, each with a name, an
//! email and roles; a role grants actions on environments and teams matched by globs. A request's caller becomes
//! the author of its commit and the `created_by_*` of what it writes.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use railyard_manifest::Identity;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Lock,
    Release,
    Train,
    Flow,
    Environment,
    /// Everything, everywhere.
    Admin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub action: Action,
    #[serde(default = "everything")]
    pub environments: Vec<String>,
    #[serde(default = "everything")]
    pub teams: Vec<String>,
}

fn everything() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token_sha256: String,
    name: String,
    email: String,
    #[serde(default)]
    roles: Vec<Role>,
}

/// Who is calling: a token's identity and roles.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub roles: Vec<Role>,
}

/// The tokens file, loaded.
#[derive(Debug, Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], Caller)>,
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Equal without an early exit, so the time taken says nothing about how much matched.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    /// Reads `file` (YAML: a list of `{token_sha256, name, email, roles}`); errors name the entry, never a secret.
    pub fn load(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        let entries: Vec<TokenEntry> =
            serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let mut out = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            let hash = hex32(&e.token_sha256.to_ascii_lowercase()).ok_or_else(|| {
                anyhow::anyhow!("{} entry {} ({}): token_sha256 must be 64 hex digits", file.display(), i + 1, e.name)
            })?;
            out.push((hash, Caller { identity: Identity { name: e.name, email: e.email }, roles: e.roles }));
        }
        Ok(Self { entries: out })
    }

    /// The caller a token belongs to. Every entry is compared, in constant time each.
    pub fn find(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (hash, caller) in &self.entries {
            if constant_time_eq(hash, &digest) && found.is_none() {
                found = Some(caller.clone());
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(after) = text.strip_prefix(head) else { return false };
            (0..=after.len()).filter(|i| after.is_char_boundary(*i)).any(|i| glob(rest, &after[i..]))
        }
    }
}

impl Caller {
    /// True when a role grants `action` on environment `env` (None: the action is not tied to one) for team `team`
    /// (None: no team involved).
    pub fn may(&self, action: Action, env: Option<&str>, team: Option<&str>) -> bool {
        self.roles.iter().any(|r| {
            (r.action == action || r.action == Action::Admin)
                && env.is_none_or(|e| r.environments.iter().any(|g| glob(g, e)))
                && team.is_none_or(|t| r.teams.iter().any(|g| glob(g, t)))
        })
    }

    /// True when some role grants `action` on environment `env` for every team.
    pub fn may_all_teams(&self, action: Action, env: &str) -> bool {
        self.roles.iter().any(|r| {
            (r.action == action || r.action == Action::Admin)
                && r.environments.iter().any(|g| glob(g, env))
                && r.teams.iter().any(|g| g == "*")
        })
    }

    /// True when some role grants `action` on every environment and team (`*`).
    pub fn may_everywhere(&self, action: Action) -> bool {
        self.roles.iter().any(|r| {
            (r.action == action || r.action == Action::Admin)
                && r.environments.iter().any(|g| g == "*")
                && r.teams.iter().any(|g| g == "*")
        })
    }
}

tokio::task_local! {
    /// The caller of the request being handled (None: auth is off).
    static CALLER: Option<Caller>;
}

/// The caller of the request this task serves, if auth is on.
pub fn caller() -> Option<Caller> {
    CALLER.try_with(Clone::clone).ok().flatten()
}

/// The token a request presents: `Authorization: Bearer …`, or GitLab's `PRIVATE-TOKEN`.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    headers.get("private-token").and_then(|v| v.to_str().ok()).map(|t| t.trim().to_owned())
}

/// Paths probes and Prometheus reach without a token.
fn open_path(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The middleware: with `--auth-tokens`, every request but the probes needs a valid token (401 otherwise); the
/// caller is known to the handlers (and the writer) for the rest of the request.
pub async fn authenticate(State(tokens): State<Option<std::sync::Arc<Tokens>>>, req: Request, next: Next) -> Response {
    let Some(tokens) = tokens else {
        return CALLER.scope(None, next.run(req)).await;
    };
    if open_path(req.uri().path()) {
        return CALLER.scope(None, next.run(req)).await;
    }
    match presented(req.headers()).and_then(|t| tokens.find(&t)) {
        Some(caller) => CALLER.scope(Some(caller), next.run(req)).await,
        None => {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid token is required (Authorization: Bearer <token> or PRIVATE-TOKEN)",
            )
            .into_response();
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

/// 403 for a caller whose roles do not allow `what`.
pub fn forbidden(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("your token does not allow {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("staging-*", "staging-eu"));
        assert!(!glob("staging-*", "prod"));
        assert!(glob("review/*", "review/fix-a"));
        assert!(glob("*-eu", "prod-eu"));
        assert!(!glob("dev", "dev2"));
        assert!(glob("a*b*c", "axxbyyc"));
    }

    #[test]
    fn tokens_are_found_by_their_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.yaml");
        let hash: String = Sha256::digest(b"s3cret").iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            &file,
            format!("- token_sha256: {hash}\n  name: Ada\n  email: ada@example.com\n  roles:\n    - action: deploy\n      environments: [\"staging-*\"]\n"),
        )
        .unwrap();
        let t = Tokens::load(&file).unwrap();
        let c = t.find("s3cret").expect("found");
        assert_eq!(c.identity.name, "Ada");
        assert!(t.find("s3cret ").is_none() && t.find("").is_none());
        assert!(c.may(Action::Deploy, Some("staging-eu"), Some("core")));
        assert!(!c.may(Action::Deploy, Some("prod"), None));
        assert!(!c.may(Action::Lock, Some("staging-eu"), None));
        std::fs::write(&file, "- token_sha256: abc\n  name: Bad\n  email: b@x\n").unwrap();
        let err = Tokens::load(&file).unwrap_err().to_string();
        assert!(err.contains("entry 1 (Bad)"), "{err}");
    }
}
