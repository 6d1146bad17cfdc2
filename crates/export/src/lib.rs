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

/// A tag the API recorded for the exporter to push: `refs/railyard/pending-tags/<name>`.
pub fn pending_tag_ref(name: &str) -> String {
    format!("{PENDING_TAGS}{name}")
}

/// A tag the remote refused (with `--fail-on-error-with-git-push-tags=false`): `refs/railyard/failed-tags/<name>`.
pub fn failed_tag_ref(name: &str) -> String {
    format!("refs/railyard/failed-tags/{name}")
}

const PENDING_TAGS: &str = "refs/railyard/pending-tags/";

/// The commit tag `name` names in the local repo: a tag already pushed or learnt (`refs/tags/`), or one
/// still waiting to be pushed.
pub fn resolve_tag(repo: &Repository, name: &str) -> Result<Option<Oid>, git2::Error> {
    for refname in [format!("refs/tags/{name}"), pending_tag_ref(name)] {
        match repo.find_reference(&refname) {
            Ok(r) => return Ok(Some(r.peel_to_commit()?.id())),
            Err(e) if matches!(e.code(), git2::ErrorCode::NotFound | git2::ErrorCode::InvalidSpec) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("tag {tag} cannot be pushed: {reason}")]
    TagRejected { tag: String, reason: String },
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
    /// A tag the remote refuses stops the export (true) or is recorded as failed and skipped (false).
    pub fail_on_error_with_git_push_tags: bool,
}

/// What the exporter last saw, for `/readyz` and logs.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The commit last confirmed on the remote.
    pub exported: Option<Oid>,
    /// What is not on the remote yet (as of the last round).
    pub lag: Lag,
    /// The last push error, cleared by a successful push.
    pub last_error: Option<String>,
    /// Set when export stopped for good (a refused tag with `--fail-on-error-with-git-push-tags`).
    pub fatal: Option<String>,
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
    let exported = repo.find_reference(&exported_ref(&cfg.branch)).ok().and_then(|r| r.target());
    if exported != Some(local) {
        let spec = format!("{0}:{0}", branch_ref(&cfg.branch));
        if let Some((refname, reason)) = push(&repo, &cfg.git_url, &[spec])?.into_iter().next() {
            return Err(ExportError::Rejected { refname, reason });
        }
        record_exported(&repo, &cfg.branch, exported, local)?;
    }
    push_tags(&repo, cfg, local)?;
    Ok(Some(local))
}

/// The remote's tags, by name, with the commit each peels to.
fn remote_tags(repo: &Repository, url: &str) -> Result<Vec<(String, Oid)>, git2::Error> {
    let mut remote = repo.remote_anonymous(url)?;
    let conn = remote.connect_auth(git2::Direction::Fetch, None, None)?;
    let mut tags: Vec<(String, Oid)> = Vec::new();
    for head in conn.list()? {
        let Some(rest) = head.name().strip_prefix("refs/tags/") else { continue };
        // An annotated tag is listed twice: as itself and, with `^{}`, as the commit it peels to.
        match rest.strip_suffix("^{}") {
            Some(name) => match tags.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = head.oid(),
                None => tags.push((name.to_owned(), head.oid())),
            },
            None => {
                if !tags.iter().any(|(n, _)| n == rest) {
                    tags.push((rest.to_owned(), head.oid()));
                }
            }
        }
    }
    Ok(tags)
}

/// Pushes `specs` in one connection; returns the refs the remote refused, with its reason.
fn push(repo: &Repository, url: &str, specs: &[String]) -> Result<Vec<(String, String)>, git2::Error> {
    let mut remote = repo.remote_anonymous(url)?;
    let mut rejected = Vec::new();
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.push_update_reference(|refname, status| {
        if let Some(reason) = status {
            rejected.push((refname.to_owned(), reason.to_owned()));
        }
        Ok(())
    });
    let mut opts = git2::PushOptions::new();
    opts.remote_callbacks(callbacks);
    remote.push(specs, Some(&mut opts))?;
    drop(opts);
    Ok(rejected)
}

/// The pending tags, by name, with the commit each names.
fn pending_tags(repo: &Repository) -> Result<Vec<(String, Oid)>, git2::Error> {
    let mut out = Vec::new();
    for r in repo.references_glob(&format!("{PENDING_TAGS}*"))? {
        let r = r?;
        if let (Some(name), Some(target)) = (r.name().ok().and_then(|n| n.strip_prefix(PENDING_TAGS)), r.target()) {
            out.push((name.to_owned(), target));
        }
    }
    Ok(out)
}

/// Pushes every pending tag whose commit is on the remote (`exported` or an ancestor of it). A pending tag
/// whose commit never reached the branch was left by a crash before its write was acknowledged: dropped.
fn push_tags(repo: &Repository, cfg: &Config, exported: Oid) -> Result<(), ExportError> {
    // Only tags whose commit is on the remote are pushed; the others wait for a later round. None is ever dropped:
    // the writer records a tag only after its commit is on the branch.
    let mut ready = Vec::new();
    for (name, commit) in pending_tags(repo)? {
        if commit == exported || repo.graph_descendant_of(exported, commit)? {
            ready.push((name, commit));
        }
    }
    if ready.is_empty() {
        return Ok(());
    }
    // git refuses to move an existing tag on the client side, and libgit2 does not: look at the remote's tags first.
    let existing = remote_tags(repo, &cfg.git_url)?;
    let mut refused: Vec<(String, Oid, String)> = Vec::new();
    let mut to_push = Vec::new();
    for (name, commit) in ready {
        match existing.iter().find(|(n, _)| *n == name) {
            Some((_, there)) if *there == commit => to_push.push((name, commit, true)),
            Some((_, there)) => refused.push((name, commit, format!("already exists on the remote at {there}"))),
            None => to_push.push((name, commit, false)),
        }
    }
    let specs: Vec<String> = to_push
        .iter()
        .filter(|(_, _, there)| !there)
        .map(|(name, _, _)| format!("{}:refs/tags/{name}", pending_tag_ref(name)))
        .collect();
    let rejected = if specs.is_empty() { Vec::new() } else { push(repo, &cfg.git_url, &specs)? };
    for (name, commit, _) in to_push {
        match rejected.iter().find(|(r, _)| *r == format!("refs/tags/{name}")) {
            Some((_, reason)) => refused.push((name, commit, reason.clone())),
            None => {
                repo.reference(&format!("refs/tags/{name}"), commit, true, "railyard-export: tag pushed")?;
                repo.find_reference(&pending_tag_ref(&name))?.delete()?;
                tracing::info!(tag = %name, commit = %commit, "pushed tag");
            }
        }
    }
    for (name, commit, reason) in refused {
        if cfg.fail_on_error_with_git_push_tags {
            return Err(ExportError::TagRejected { tag: name, reason });
        }
        tracing::error!(tag = %name, commit = %commit, reason = %reason, "the remote refused a tag; recorded under refs/railyard/failed-tags and skipped");
        repo.reference(&failed_tag_ref(&name), commit, true, &reason)?;
        repo.find_reference(&pending_tag_ref(&name))?.delete()?;
    }
    Ok(())
}

/// Moves the progress ref from `old` to `new`, compare-and-swap, so two exporters never step back each other's record.
fn record_exported(repo: &Repository, branch: &str, old: Option<Oid>, new: Oid) -> Result<(), git2::Error> {
    let name = exported_ref(branch);
    let msg = "railyard-export: pushed";
    let result = match old {
        Some(old) => repo.reference_matching(&name, new, true, old, msg),
        None => repo.reference(&name, new, false, msg),
    };
    match result {
        Ok(_) => Ok(()),
        // Someone else recorded progress meanwhile; theirs is at least as recent as the push they made.
        Err(e) if matches!(e.code(), git2::ErrorCode::Modified | git2::ErrorCode::Exists) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What is not on the remote yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    /// Commits on the local branch not yet exported.
    pub commits: usize,
    /// When the oldest of them was committed.
    pub oldest: Option<SystemTime>,
    /// Requested tags not yet pushed.
    pub tags: usize,
}

/// The export lag, read from the local repo.
pub fn lag(cfg: &Config) -> Result<Lag, git2::Error> {
    let repo = Repository::open_bare(&cfg.repo_dir)?;
    let mut lag = Lag { tags: pending_tags(&repo)?.len(), ..Lag::default() };
    let Some(head) = repo.find_reference(&branch_ref(&cfg.branch)).ok().and_then(|r| r.target()) else {
        return Ok(lag);
    };
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    if let Some(done) = repo.find_reference(&exported_ref(&cfg.branch)).ok().and_then(|r| r.target()) {
        // The exported commit may not be an ancestor after an adoption; hide only what is reachable.
        if head == done || repo.graph_descendant_of(head, done).unwrap_or(false) {
            walk.hide(done)?;
        }
    }
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        lag.commits += 1;
        let secs = u64::try_from(commit.time().seconds()).unwrap_or(0);
        lag.oldest = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    Ok(lag)
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
    let cap = BACKOFF_MIN.saturating_mul(1u32 << failures.min(16)).min(BACKOFF_MAX);
    let span = cap.saturating_sub(BACKOFF_MIN).as_millis() as u64;
    BACKOFF_MIN + Duration::from_millis(if span == 0 { 0 } else { rand::random::<u64>() % span })
}

impl Exporter {
    pub fn new(cfg: Config) -> Self {
        Self { cfg, wake: Arc::new(Notify::new()), status: Arc::new(Mutex::new(Status::default())) }
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
            let result = tokio::task::spawn_blocking(move || (push_once(&cfg), lag(&cfg))).await;
            let wait = {
                let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
                let pushed = match result {
                    Ok((pushed, lag)) => {
                        if let Ok(lag) = lag {
                            st.lag = lag;
                        }
                        pushed
                    }
                    Err(join) => Err(ExportError::Git(git2::Error::from_str(&format!("export task failed: {join}")))),
                };
                match pushed {
                    Ok(pushed) => {
                        if pushed.is_some() && pushed != st.exported {
                            tracing::info!(commit = ?pushed, remote = %self.cfg.git_url, ms = started.elapsed().as_millis() as u64, "exported branch");
                        }
                        st.exported = pushed;
                        st.last_error = None;
                        st.consecutive_failures = 0;
                        None
                    }
                    Err(ExportError::TagRejected { tag, reason }) => {
                        let msg = format!(
                            "tag {tag} cannot be pushed: {reason}; export stopped (--fail-on-error-with-git-push-tags)"
                        );
                        tracing::error!(tag = %tag, reason = %reason, "export stopped: the remote refused a tag");
                        st.last_error = Some(msg.clone());
                        st.fatal = Some(msg);
                        return;
                    }
                    Err(e) => {
                        st.consecutive_failures += 1;
                        let wait = backoff(st.consecutive_failures);
                        tracing::warn!(error = %e, remote = %self.cfg.git_url, retry_in_ms = wait.as_millis() as u64, "export failed; will retry");
                        st.last_error = Some(e.to_string());
                        Some(wait)
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
        tb.insert(file, repo.blob(file.as_bytes()).unwrap(), 0o100644).unwrap();
        let tree = repo.find_tree(tb.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let parents: Vec<git2::Commit<'_>> = parent.map(|p| repo.find_commit(p).unwrap()).into_iter().collect();
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
            fail_on_error_with_git_push_tags: true,
        };
        assert_eq!(push_once(&cfg).unwrap(), None);
        let c1 = commit(&local, None, "a");
        let c2 = commit(&local, Some(c1), "b");
        assert_eq!(lag(&cfg).unwrap().commits, 2);
        assert_eq!(push_once(&cfg).unwrap(), Some(c2));
        let remote = Repository::open_bare(&remote_path).unwrap();
        assert_eq!(remote.refname_to_id("refs/heads/main").unwrap(), c2);
        assert_eq!(local.refname_to_id(&exported_ref("main")).unwrap(), c2);
        assert_eq!(lag(&cfg).unwrap().commits, 0);
    }

    #[test]
    fn unreachable_remote_is_an_error_not_a_loss() {
        let dir = tempfile::tempdir().unwrap();
        let local = Repository::init_bare(dir.path().join("local.git")).unwrap();
        let cfg = Config {
            repo_dir: dir.path().join("local.git"),
            git_url: "git://127.0.0.1:9/none.git".into(),
            branch: "main".into(),
            fail_on_error_with_git_push_tags: true,
        };
        let c1 = commit(&local, None, "a");
        assert!(push_once(&cfg).is_err());
        assert_eq!(local.refname_to_id("refs/heads/main").unwrap(), c1);
        assert_eq!(lag(&cfg).unwrap().commits, 1);
    }

    #[test]
    fn tags_are_pushed_after_their_commit_and_refusals_follow_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let local = Repository::init_bare(dir.path().join("local.git")).unwrap();
        let remote_path = dir.path().join("remote.git");
        ensure_local_remote(remote_path.to_str().unwrap()).unwrap();
        let mut cfg = Config {
            repo_dir: dir.path().join("local.git"),
            git_url: remote_path.to_str().unwrap().into(),
            branch: "main".into(),
            fail_on_error_with_git_push_tags: true,
        };
        let c1 = commit(&local, None, "a");
        local.reference(&pending_tag_ref("v1"), c1, false, "t").unwrap();
        // a commit not on the branch
        let orphan = {
            let tree = local.find_commit(c1).unwrap().tree().unwrap();
            let sig = git2::Signature::now("t", "t@t").unwrap();
            local.commit(None, &sig, &sig, "orphan", &tree, &[]).unwrap()
        };
        local.reference(&pending_tag_ref("ghost"), orphan, false, "t").unwrap();
        push_once(&cfg).unwrap();
        let remote = Repository::open_bare(&remote_path).unwrap();
        assert_eq!(remote.refname_to_id("refs/tags/v1").unwrap(), c1);
        // a tag whose commit is not on the remote yet waits; it is never dropped
        assert!(remote.refname_to_id("refs/tags/ghost").is_err());
        assert_eq!(resolve_tag(&local, "v1").unwrap(), Some(c1));
        assert_eq!(pending_tags(&local).unwrap(), vec![("ghost".to_owned(), orphan)]);
        local.find_reference(&pending_tag_ref("ghost")).unwrap().delete().unwrap();

        // the remote has v2 on another commit: refused
        remote.reference("refs/tags/v2", c1, false, "by hand").unwrap();
        let c2 = commit(&local, Some(c1), "b");
        local.reference(&pending_tag_ref("v2"), c2, false, "t").unwrap();
        assert!(matches!(push_once(&cfg), Err(ExportError::TagRejected { .. })));
        cfg.fail_on_error_with_git_push_tags = false;
        push_once(&cfg).unwrap();
        assert_eq!(local.refname_to_id(&failed_tag_ref("v2")).unwrap(), c2);
        assert_eq!(remote.refname_to_id("refs/tags/v2").unwrap(), c1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) >= BACKOFF_MIN && backoff(0) <= BACKOFF_MIN * 2);
        for f in [5, 20, 100] {
            assert!(backoff(f) <= BACKOFF_MAX);
        }
    }
}
