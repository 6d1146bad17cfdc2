//! Manifest export: everything Railyard says to the remote. Pushes the local branch and requested tags, retries
//! with backoff, and reconciles with the remote (learns its tags, adopts a branch moved outside Railyard).
//! Progress, pending tags and replay records are refs in the local repo, so a restart needs nothing else.

mod exporter;
pub mod memory;
mod merge;
mod narrow;
pub mod objects;
pub mod packs;
mod push;
mod rawtree;
mod reconcile;
mod status;
mod transport;

use std::path::{Path, PathBuf};

use git2::Repository;

pub use exporter::{backoff, round, Exporter, Round};
pub use push::{fetch_head, push_if_at, push_tags, remote_head, CasPush, TagsPushed};
pub use reconcile::{Adoption, Reconciled};
pub use status::{lag, read_status_file, status_file, write_status_file, Lag, Metrics, Status};
pub use transport::{init_libgit2, local_path, redact, Credentials};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("tag {tag} cannot be pushed: {reason}")]
    TagRejected { tag: String, reason: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("the remote refused {refname}: {reason}")]
    Rejected { refname: String, reason: String },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("the branch kept moving while replaying onto the adopted remote branch; will retry")]
    Busy,
}

impl ExportError {
    /// A ref lock held, or left behind by a killed process: worth a retry, never a reason to give up.
    pub fn is_lock(&self) -> bool {
        match self {
            ExportError::Git(e) => e.code() == git2::ErrorCode::Locked || e.message().contains("lock"),
            ExportError::Rejected { reason, .. } => reason.contains("lock"),
            _ => false,
        }
    }
}

/// What the exporter works on.
#[derive(Debug, Clone)]
pub struct Config {
    pub repo_dir: PathBuf,
    pub git_url: String,
    pub branch: String,
    /// A tag the remote refuses stops the export (true) or is recorded as failed and skipped (false).
    pub fail_on_error_with_git_push_tags: bool,
    pub credentials: Credentials,
}

/// The value parser of every boolean flag of both servers: with `num_args = 0..=1` and `default_missing_value =
/// "true"`, the bare `--flag` means true, and `--flag=false`, `--flag false` and `RAILYARD_FLAG=false` (also
/// `yes`/`no`, `on`/`off`, `1`/`0`) still work.
pub fn bool_flag() -> clap::builder::BoolishValueParser {
    clap::builder::BoolishValueParser::new()
}

/// The remote's credentials, as flags both `railyard-api` (embedded export) and `railyard-export` take.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CredentialArgs {
    /// File with one `https://USER:TOKEN@HOST[/PATH]` line per remote (the format of git's credential store).
    #[arg(long, env = "RAILYARD_GIT_CREDENTIALS")]
    pub git_credentials: Option<PathBuf>,
    /// User for an http(s) remote not in the credentials file; its password or token comes from
    /// `RAILYARD_GIT_PASSWORD` (environment only, so it never shows in a process list).
    #[arg(long, env = "RAILYARD_GIT_USERNAME")]
    pub git_username: Option<String>,
    /// Private key for ssh:// remotes (its passphrase, if any, from `RAILYARD_GIT_SSH_KEY_PASSPHRASE`);
    /// without it the SSH agent at `SSH_AUTH_SOCK` is asked.
    #[arg(long, env = "RAILYARD_GIT_SSH_KEY")]
    pub git_ssh_key: Option<PathBuf>,
    /// Host keys an ssh:// remote may present (OpenSSH known_hosts format); without it libgit2 checks
    /// `~/.ssh/known_hosts`.
    #[arg(long, env = "RAILYARD_GIT_SSH_KNOWN_HOSTS")]
    pub git_ssh_known_hosts: Option<PathBuf>,
}

impl CredentialArgs {
    /// Loads the credentials the flags and environment name.
    pub fn load(&self) -> Result<Credentials, ExportError> {
        let password = std::env::var("RAILYARD_GIT_PASSWORD").ok().filter(|p| !p.is_empty());
        let user_pass = match (&self.git_username, password) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (None, Some(p)) => Some(("git".to_owned(), p)),
            (Some(_), None) => {
                return Err(ExportError::Credentials("--git-username is set but RAILYARD_GIT_PASSWORD is not".into()))
            }
            (None, None) => None,
        };
        let passphrase = std::env::var("RAILYARD_GIT_SSH_KEY_PASSPHRASE").ok().filter(|p| !p.is_empty());
        let ssh_key = self.git_ssh_key.clone().map(|k| (k, passphrase));
        if let Some((key, _)) = &ssh_key {
            if !key.is_file() {
                return Err(ExportError::Credentials(format!("--git-ssh-key {} is not a file", key.display())));
            }
        }
        let creds = Credentials::load(self.git_credentials.as_deref(), user_pass, ssh_key)?;
        match &self.git_ssh_known_hosts {
            Some(file) => creds.with_known_hosts(file),
            None => Ok(creds),
        }
    }
}

/// If `url` names a local path (no scheme) that does not exist yet, creates a bare repo there, its `HEAD` on
/// `branch` (so a clone of it checks that branch out).
pub fn ensure_local_remote(url: &str, branch: &str) -> Result<(), ExportError> {
    if url.contains("://") || url.contains('@') {
        return Ok(());
    }
    let path = Path::new(url);
    if !path.exists() {
        let repo = Repository::init_bare(path)?;
        repo.set_head(&railyard_refs::branch_ref(branch))?;
        tracing::info!(remote = %url, "created local bare remote repo");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
