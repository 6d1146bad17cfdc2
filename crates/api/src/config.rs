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
    /// `embedded` runs the exporter in-process; `external` expects `railyard-export` beside it.
    #[arg(long, env = "RAILYARD_EXPORT", value_enum, default_value = "embedded")]
    pub export: ExportMode,
    /// A write that changes no file makes no commit and no tag.
    #[arg(long, env = "RAILYARD_MINIMIZE_EXPORTED_DATA", default_value = "false", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = railyard_export::bool_flag())]
    pub minimize_exported_data: bool,
    /// A tag the remote refuses (name taken by another commit) stops the exporter (true) or is logged,
    /// recorded under refs/railyard/failed-tags and skipped (false).
    #[arg(long, env = "RAILYARD_FAIL_ON_ERROR_WITH_GIT_PUSH_TAGS", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = railyard_export::bool_flag())]
    pub fail_on_error_with_git_push_tags: bool,
    /// Most requests the writer folds into one commit.
    #[arg(long, env = "RAILYARD_BATCH_MAX", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_max: u32,
    /// Requests that may wait for the writer; beyond that the API answers 503 with Retry-After.
    #[arg(long, env = "RAILYARD_QUEUE_CAPACITY", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue_capacity: u32,
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
    /// Credentials for the remote (embedded export only).
    #[command(flatten)]
    pub credentials: railyard_export::CredentialArgs,
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
}
