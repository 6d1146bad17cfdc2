//! Manifest export: pushes the local branch to the remote repo, retrying with backoff until it lands.
//! Progress (the last commit known to be on the remote) is a ref in the local repo, so a restart needs nothing else.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use git2::{Oid, Repository};
use tokio::sync::Notify;

/// Where the exporter keeps what it has pushed: `refs/railyard/exported/<branch>`.
pub fn exported_ref(branch: &str) -> String {
    format!("refs/railyard/exported/{branch}")
}

/// The local branch ref.
pub fn branch_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("the remote refused {refname}: {reason}")]
    Rejected { refname: String, reason: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub repo_dir: PathBuf,
    pub git_url: String,
    pub branch: String,
}

/// What the exporter last saw, for `/readyz` and logs.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The commit last confirmed on the remote.
    pub exported: Option<Oid>,
    /// Commits on the local branch not yet on the remote.
    pub pending_commits: usize,
    /// When the oldest of those was committed.
    pub oldest_pending: Option<SystemTime>,
    /// The last push error, cleared by a successful push.
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
}

/// If `url` names a local path (no scheme) that does not exist yet, creates a bare repo there.
pub fn ensure_local_remote(url: &str) -> Result<(), ExportError> {
    if url.contains("://") || url.contains('@') {
        return Ok(());
    }
    let path = Path::new(url);
    if !path.exists() {
        Repository::init_bare(path)?;
        tracing::info!(remote = %url, "created local bare remote repo");
    }
    Ok(())
}

/// Pushes the branch once if the remote is behind; returns the commit now on the remote (None: nothing to push).
pub fn push_once(cfg: &Config) -> Result<Option<Oid>, ExportError> {
    let repo = Repository::open_bare(&cfg.repo_dir)?;
    let local = match repo.find_reference(&branch_ref(&cfg.branch)) {
        Ok(r) => r.target(),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let Some(local) = local else { return Ok(None) };
    let exported = repo
        .find_reference(&exported_ref(&cfg.branch))
        .ok()
        .and_then(|r| r.target());
    if exported == Some(local) {
        return Ok(Some(local));
    }
    let mut remote = repo.remote_anonymous(&cfg.git_url)?;
    let mut rejection: Option<(String, String)> = None;
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.push_update_reference(|refname, status| {
        if let Some(reason) = status {
            rejection = Some((refname.to_owned(), reason.to_owned()));
        }
        Ok(())
    });
    let mut opts = git2::PushOptions::new();
    opts.remote_callbacks(callbacks);
    let spec = format!("{0}:{0}", branch_ref(&cfg.branch));
    remote.push(&[spec.as_str()], Some(&mut opts))?;
    drop(opts);
    if let Some((refname, reason)) = rejection {
        return Err(ExportError::Rejected { refname, reason });
    }
    record_exported(&repo, &cfg.branch, exported, local)?;
    Ok(Some(local))
}

/// Moves the progress ref from `old` to `new`, compare-and-swap, so two exporters never step back each other's record.
fn record_exported(
    repo: &Repository,
    branch: &str,
    old: Option<Oid>,
    new: Oid,
) -> Result<(), git2::Error> {
    let name = exported_ref(branch);
    let msg = "railyard-export: pushed";
    let result = match old {
        Some(old) => repo.reference_matching(&name, new, true, old, msg),
        None => repo.reference(&name, new, false, msg),
    };
    match result {
        Ok(_) => Ok(()),
        // Someone else recorded progress meanwhile; theirs is at least as recent as the push they made.
        Err(e)
            if matches!(
                e.code(),
                git2::ErrorCode::Modified | git2::ErrorCode::Exists
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Commits on the branch not yet exported, and the commit time of the oldest of them.
pub fn pending(cfg: &Config) -> Result<(usize, Option<SystemTime>), git2::Error> {
    let repo = Repository::open_bare(&cfg.repo_dir)?;
    let Ok(head) = repo.find_reference(&branch_ref(&cfg.branch)) else {
        return Ok((0, None));
    };
    let Some(head) = head.target() else {
        return Ok((0, None));
    };
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    if let Some(done) = repo
        .find_reference(&exported_ref(&cfg.branch))
        .ok()
        .and_then(|r| r.target())
    {
        // The exported commit may not be an ancestor after an adoption; hide only what is reachable.
        if repo.graph_descendant_of(head, done).unwrap_or(false) || head == done {
            walk.hide(done)?;
        }
    }
    let mut count = 0;
    let mut oldest = None;
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        count += 1;
        let secs = u64::try_from(commit.time().seconds()).unwrap_or(0);
        oldest = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    Ok((count, oldest))
}

/// The in-process exporter: wakes on every commit (and every `idle` otherwise), pushes, backs off on failure.
pub struct Exporter {
    cfg: Config,
    wake: Arc<Notify>,
    status: Arc<Mutex<Status>>,
}

const IDLE: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Exponential backoff with full jitter: a random wait in [min, min·2^failures] capped at `BACKOFF_MAX`.
pub fn backoff(failures: u32) -> Duration {
    let cap = BACKOFF_MIN
        .saturating_mul(1u32 << failures.min(16))
        .min(BACKOFF_MAX);
    let span = cap.saturating_sub(BACKOFF_MIN).as_millis() as u64;
    BACKOFF_MIN
        + Duration::from_millis(if span == 0 {
            0
        } else {
            rand::random::<u64>() % span
        })
}

impl Exporter {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            wake: Arc::new(Notify::new()),
            status: Arc::new(Mutex::new(Status::default())),
        }
    }

    /// Notify this after every commit to push it at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// A live view of the exporter's status.
    pub fn status(&self) -> Arc<Mutex<Status>> {
        self.status.clone()
    }

    /// Runs until the task is dropped.
    pub async fn run(self) {
        loop {
            let cfg = self.cfg.clone();
            let started = Instant::now();
            let result = tokio::task::spawn_blocking(move || {
                let pushed = push_once(&cfg);
                let lag = pending(&cfg);
                (pushed, lag)
            })
            .await;
            let wait = {
                let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok((Ok(pushed), lag)) => {
                        if pushed.is_some() && pushed != st.exported {
                            tracing::info!(commit = ?pushed, remote = %self.cfg.git_url, ms = started.elapsed().as_millis() as u64, "exported branch");
                        }
                        st.exported = pushed;
                        st.last_error = None;
                        st.consecutive_failures = 0;
                        if let Ok((n, oldest)) = lag {
                            st.pending_commits = n;
                            st.oldest_pending = oldest;
                        }
                        None
                    }
                    Ok((Err(e), lag)) => {
                        st.consecutive_failures += 1;
                        let wait = backoff(st.consecutive_failures);
                        tracing::warn!(error = %e, remote = %self.cfg.git_url, retry_in_ms = wait.as_millis() as u64, "export failed; will retry");
                        st.last_error = Some(e.to_string());
                        if let Ok((n, oldest)) = lag {
                            st.pending_commits = n;
                            st.oldest_pending = oldest;
                        }
                        Some(wait)
                    }
                    Err(join) => {
                        st.consecutive_failures += 1;
                        st.last_error = Some(format!("export task failed: {join}"));
                        Some(backoff(st.consecutive_failures))
                    }
                }
            };
            match wait {
                // Retry after the backoff even if new commits arrive meanwhile: a down remote is not hammered.
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    let _ = tokio::time::timeout(IDLE, self.wake.notified()).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, parent: Option<Oid>, file: &str) -> Oid {
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert(file, repo.blob(file.as_bytes()).unwrap(), 0o100644)
            .unwrap();
        let tree = repo.find_tree(tb.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let parents: Vec<git2::Commit<'_>> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let oid = repo.commit(None, &sig, &sig, file, &tree, &refs).unwrap();
        repo.reference("refs/heads/main", oid, true, "t").unwrap();
        oid
    }

    #[test]
    fn pushes_branch_records_progress_and_counts_lag() {
        let dir = tempfile::tempdir().unwrap();
        let local = Repository::init_bare(dir.path().join("local.git")).unwrap();
        let remote_path = dir.path().join("remote.git");
        ensure_local_remote(remote_path.to_str().unwrap()).unwrap();
        let cfg = Config {
            repo_dir: dir.path().join("local.git"),
            git_url: remote_path.to_str().unwrap().into(),
            branch: "main".into(),
        };
        assert_eq!(push_once(&cfg).unwrap(), None);
        let c1 = commit(&local, None, "a");
        let c2 = commit(&local, Some(c1), "b");
        assert_eq!(pending(&cfg).unwrap().0, 2);
        assert_eq!(push_once(&cfg).unwrap(), Some(c2));
        let remote = Repository::open_bare(&remote_path).unwrap();
        assert_eq!(remote.refname_to_id("refs/heads/main").unwrap(), c2);
        assert_eq!(local.refname_to_id(&exported_ref("main")).unwrap(), c2);
        assert_eq!(pending(&cfg).unwrap().0, 0);
    }

    #[test]
    fn unreachable_remote_is_an_error_not_a_loss() {
        let dir = tempfile::tempdir().unwrap();
        let local = Repository::init_bare(dir.path().join("local.git")).unwrap();
        let cfg = Config {
            repo_dir: dir.path().join("local.git"),
            git_url: "git://127.0.0.1:9/none.git".into(),
            branch: "main".into(),
        };
        let c1 = commit(&local, None, "a");
        assert!(push_once(&cfg).is_err());
        assert_eq!(local.refname_to_id("refs/heads/main").unwrap(), c1);
        assert_eq!(pending(&cfg).unwrap().0, 1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) >= BACKOFF_MIN && backoff(0) <= BACKOFF_MIN * 2);
        for f in [5, 20, 100] {
            assert!(backoff(f) <= BACKOFF_MAX);
        }
    }
}
