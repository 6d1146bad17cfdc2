//! The server's flags; every flag also reads `RAILYARD_<FLAG>` from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportMode {
    /// Run the exporter in this process.
    Embedded,
    /// `railyard-export` runs beside this process on the same repo.
    External,
}

/// When a write is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ack {
    /// Once the commit is durable in the local repo; the exporter pushes it (one replica).
    AfterCommit,
    /// Once the commit is on the remote branch (and its tags pushed): replicas agree on the remote.
    AfterPush,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Railyard's API server: the single writer of the manifest repo.
#[derive(Debug, Clone, Parser)]
#[command(name = "railyard-api", version, about)]
pub struct Config {
    /// Address of the API.
    #[arg(long, env = "RAILYARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The local bare manifest repo (created if missing).
    #[arg(long, env = "RAILYARD_REPO_DIR", default_value = "./.railyard/repo.git")]
    pub repo_dir: PathBuf,
    /// The remote manifest repo: a path (created if missing), file://, git://, http(s):// or ssh:// URL.
    #[arg(long, env = "RAILYARD_GIT_URL", default_value = "./.railyard/remote.git")]
    pub git_url: String,
    /// Branch written and pushed.
    #[arg(long, env = "RAILYARD_BRANCH", default_value = "main")]
    pub branch: String,
    /// The manifest repo's URL as Argo CD reads it (the generated Applications' `repoURL`); default: `--git-url`
    /// without credentials.
    #[arg(long, env = "RAILYARD_ARGOCD_REPO_URL", value_name = "URL")]
    pub argocd_repo_url: Option<String>,
    /// `embedded` runs the exporter in-process; `external` expects `railyard-export` beside it.
    #[arg(long, env = "RAILYARD_EXPORT", value_enum, default_value = "embedded")]
    pub export: ExportMode,
    /// `after-commit`: a 2xx means the commit is durable in the local repo (the exporter pushes it). `after-push`:
    /// a 2xx means it is on the remote branch; several replicas can then share one remote, each with a clone of
    /// its own, agreeing through the remote's atomic ref update (no `railyard-export` runs beside them).
    #[arg(long, env = "RAILYARD_ACK", value_enum, default_value = "after-commit")]
    pub ack: Ack,
    /// With `--ack after-push`: how often the remote branch is fetched, so reads see the other replicas' writes.
    #[arg(long = "fetch-interval-ms", env = "RAILYARD_FETCH_INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(50..=600_000))]
    pub fetch_interval_ms: u32,
    /// With `--ack after-push`: how many pushes a batch tries (rebuilt each time on the branch another replica
    /// moved) before its callers get 503.
    #[arg(long = "push-attempts", env = "RAILYARD_PUSH_ATTEMPTS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub push_attempts: u32,
    /// A write that changes no file makes no commit and no tag.
    #[arg(long, env = "RAILYARD_MINIMIZE_EXPORTED_DATA", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = railyard_export::bool_flag())]
    pub minimize_exported_data: bool,
    /// A tag the remote refuses (name taken by another commit) stops the exporter (true) or is logged,
    /// recorded under refs/railyard/failed-tags and skipped (false).
    #[arg(long, env = "RAILYARD_FAIL_ON_ERROR_WITH_GIT_PUSH_TAGS", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = railyard_export::bool_flag())]
    pub fail_on_error_with_git_push_tags: bool,
    /// Most requests the writer folds into one batch (one commit, or a chain when tagged requests end commits).
    #[arg(long, env = "RAILYARD_BATCH_MAX", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_max: u32,
    /// Requests that may wait for the writer; beyond that the API answers 503 with Retry-After.
    #[arg(long, env = "RAILYARD_QUEUE_CAPACITY", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue_capacity: u32,
    /// Seconds a client has to send a request's headers; a slower one is disconnected.
    #[arg(long, env = "RAILYARD_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub header_read_timeout_seconds: u32,
    /// Seconds a keep-alive connection may sit idle (no request in progress, nothing sent) before it is closed.
    #[arg(long, env = "RAILYARD_IDLE_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86400))]
    pub idle_timeout_seconds: u32,
    /// Most client connections held at once (lowered to fit the open-file limit); at the limit, the connection
    /// idle the longest is closed to make room.
    #[arg(long, env = "RAILYARD_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Releases kept per application when an upload adds one (Kuberpult's `git.releaseVersionsLimit`): older ones
    /// are deleted in the upload's commit, except any still deployed or queued and any newer than the oldest of
    /// those. 0 keeps every release.
    #[arg(long, env = "RAILYARD_RELEASE_VERSIONS_LIMIT", default_value_t = 20)]
    pub release_versions_limit: u32,
    /// Larger request bodies get 413.
    #[arg(long, env = "RAILYARD_MAX_BODY_BYTES", default_value_t = 12 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// YAML list of `{token_sha256, name, email, roles}`: turns authentication on (every request but /healthz,
    /// /readyz and /metrics needs `Authorization: Bearer <token>` or `PRIVATE-TOKEN`).
    #[arg(long, env = "RAILYARD_AUTH_TOKENS")]
    pub auth_tokens: Option<PathBuf>,
    /// Allow listening on a non-loopback address without authentication.
    #[arg(long, env = "RAILYARD_INSECURE_NO_AUTH", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = railyard_export::bool_flag())]
    pub insecure_no_auth: bool,
    /// `text` or `json`.
    #[arg(long, env = "RAILYARD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// The project name the GitLab-compatible API answers to (`/api/v4/projects/{1 or this name}`).
    #[arg(long, env = "RAILYARD_PROJECT", default_value = "railyard")]
    pub project: String,
    /// URL a release candidate created with `trigger_build_workflow: true` is POSTed to (its answer is recorded with
    /// the candidate). Without it, such a request is refused with 400.
    #[arg(long, env = "RAILYARD_BUILD_WEBHOOK")]
    pub build_webhook: Option<String>,
    /// The URL clients reach this API at (e.g. `https://railyard.example.com`), for the absolute URLs in answers
    /// (GitLab's `Link` header and `web_url`). Default: `http://<listen address>`, or relative URLs when listening
    /// on every address. A request's `Host` header is never used.
    #[arg(long, env = "RAILYARD_EXTERNAL_URL", value_parser = parse_external_url)]
    pub external_url: Option<String>,
    /// Sign-in with OIDC.
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// YAML list of `{url, secret, events}`: after each commit, every subscriber whose `events` list its actions
    /// (or `*`) gets a signed POST per event, and an `exported` event once the commit is on the remote.
    #[arg(long, env = "RAILYARD_WEBHOOKS")]
    pub webhooks: Option<PathBuf>,
    /// Credentials for the remote (embedded export only).
    #[command(flatten)]
    pub credentials: railyard_export::CredentialArgs,
}

impl Config {
    /// What the pushing side needs, whether the writer pushes (`--ack after-push`) or the embedded exporter does: a
    /// local remote (a path) is created first when missing.
    pub fn export_config(&self) -> anyhow::Result<railyard_export::Config> {
        use anyhow::Context;
        railyard_export::ensure_local_remote(&self.git_url, &self.branch).context("creating the local remote repo")?;
        Ok(railyard_export::Config {
            repo_dir: self.repo_dir.clone(),
            git_url: self.git_url.clone(),
            branch: self.branch.clone(),
            fail_on_error_with_git_push_tags: self.fail_on_error_with_git_push_tags,
            credentials: self.credentials.load()?,
        })
    }
}

/// An absolute http(s) URL, kept without a trailing `/`.
fn parse_external_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or a fragment".into());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    fn parse(flags: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("railyard-api").chain(flags.iter().copied()))
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"))
    }

    #[test]
    fn boolean_flags_take_the_bare_form_equals_and_a_separate_value() {
        assert!(!parse(&[]).minimize_exported_data);
        assert!(parse(&[]).fail_on_error_with_git_push_tags);
        for (flags, want) in [
            (&["--minimize-exported-data"][..], true),
            (&["--minimize-exported-data=true"], true),
            (&["--minimize-exported-data=false"], false),
            (&["--minimize-exported-data", "true"], true),
            (&["--minimize-exported-data", "false"], false),
            (&["--minimize-exported-data", "--listen", "127.0.0.1:1"], true),
        ] {
            assert_eq!(parse(flags).minimize_exported_data, want, "{flags:?}");
        }
        assert!(parse(&["--fail-on-error-with-git-push-tags"]).fail_on_error_with_git_push_tags);
        assert!(!parse(&["--fail-on-error-with-git-push-tags=false"]).fail_on_error_with_git_push_tags);
        assert!(parse(&["--insecure-no-auth"]).insecure_no_auth);
        assert!(parse(&["--insecure-no-auth=true"]).insecure_no_auth);
        assert!(!parse(&["--insecure-no-auth=false"]).insecure_no_auth);
        assert!(Config::try_parse_from(["railyard-api", "--minimize-exported-data=maybe"]).is_err());
    }

    #[test]
    fn the_external_url_is_an_absolute_http_url_kept_without_a_trailing_slash() {
        let cfg = parse(&["--external-url", "https://railyard.example.com/"]);
        assert_eq!(cfg.external_url.as_deref(), Some("https://railyard.example.com"));
        for bad in ["railyard.example.com", "ftp://x", "https://x/?a=b", "http://"] {
            assert!(Config::try_parse_from(["railyard-api", "--external-url", bad]).is_err(), "{bad}");
        }
    }
}

/// OIDC sign-in: JWTs from an issuer, and Kuberpult's policy for what signed-in people may do.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcArgs {
    /// The issuer URL (its `/.well-known/openid-configuration` names the keys). A bearer token that is a JWT is
    /// checked against it; other tokens go to `--auth-tokens`.
    #[arg(long = "oidc-issuer", env = "RAILYARD_OIDC_ISSUER")]
    pub issuer: Option<String>,
    /// An accepted `aud` (repeatable; comma-separated in the variable).
    #[arg(long = "oidc-audience", env = "RAILYARD_OIDC_AUDIENCE", value_delimiter = ',')]
    pub audience: Vec<String>,
    /// The client id the web UI signs people in with (authorization code with PKCE, redirect to
    /// `<external URL>/auth/callback`); its ID tokens are accepted as an audience of their own.
    #[arg(long = "oidc-client-id", env = "RAILYARD_OIDC_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The fewest seconds between two fetches of the issuer's keys for an unknown key id.
    #[arg(long = "oidc-jwks-min-refresh-seconds", env = "RAILYARD_OIDC_JWKS_MIN_REFRESH_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub jwks_min_refresh_seconds: u32,
    /// Kuberpult's Dex policy file: what signed-in people may do (`p, role:…, Action, group:env, app, allow` and
    /// `g, <group>, role:…` lines).
    #[arg(long = "rbac-policy", env = "RAILYARD_RBAC_POLICY")]
    pub rbac_policy: Option<PathBuf>,
}
