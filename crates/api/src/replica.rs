//! `--ack after-push`: the remote's branch is the point of agreement between replicas. The writer pushes each batch
//! without force, as a compare-and-swap on the remote head the batch was built on, and answers only once the push
//! is accepted; a push that finds the branch moved (another replica wrote) fetches, rebuilds the batch on the new
//! head and tries again. A follower fetches the remote branch in the background, so reads see the other replicas'
//! writes, and each replica's local clone is rebuilt from the remote at start.
//!
//! The local branch only ever names a commit the remote branch has held: a batch moves it after its push, and the
//! follower moves it to what it fetched.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use railyard_export::{Config, ExportError};
use tokio::sync::Notify;

/// The follower's view of the remote, for `/readyz` and the metrics.
#[derive(Debug, Clone, Default)]
pub struct FollowState {
    /// The remote head at the last fetch (None before the first, or with an empty remote).
    pub remote_head: Option<Oid>,
    /// Whether a fetch has succeeded since start: a replica is ready only then.
    pub fetched: bool,
    pub last_fetch_unix: Option<i64>,
    pub last_error: Option<String>,
}

/// The remote as the writer and the follower of an after-push replica use it.
pub struct Remote {
    pub cfg: Config,
    /// How many times a batch is rebuilt on a moved branch before its callers get 503.
    pub push_attempts: u32,
    pub fetch_interval: Duration,
    pub state: Mutex<FollowState>,
    /// Rung to fetch now (a read waiting for `min_commit`).
    pub wake: Notify,
    /// Rung after every fetch.
    pub fetched: Notify,
    /// One fetch at a time: the writer's and the follower's would contend for the same ref locks.
    fetching: Mutex<()>,
}

/// A ref lock older than this was left by a killed process.
const STALE_LOCK: Duration = Duration::from_secs(2);
/// How long a fetch waits out a held ref lock.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

impl Remote {
    pub fn new(cfg: Config, push_attempts: u32, fetch_interval: Duration) -> Self {
        Self {
            cfg,
            push_attempts,
            fetch_interval,
            state: Mutex::new(FollowState::default()),
            wake: Notify::new(),
            fetched: Notify::new(),
            fetching: Mutex::new(()),
        }
    }

    fn branch_ref(&self) -> String {
        railyard_refs::branch_ref(&self.cfg.branch)
    }

    /// Fetches the remote branch and moves the local branch to it. Returns the remote head.
    pub fn fetch_and_follow(&self, repo: &Repository) -> Result<Option<Oid>, ExportError> {
        let result = self.fetch_inner(repo);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(head) => {
                st.remote_head = *head;
                st.fetched = true;
                st.last_fetch_unix = Some(time::OffsetDateTime::now_utc().unix_timestamp());
                st.last_error = None;
            }
            Err(e) => st.last_error = Some(e.to_string()),
        }
        drop(st);
        self.fetched.notify_waiters();
        result
    }

    fn fetch_inner(&self, repo: &Repository) -> Result<Option<Oid>, ExportError> {
        let _one = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        loop {
            let attempt =
                railyard_export::fetch_head(repo, &self.cfg, &railyard_refs::remote_branch_ref(&self.cfg.branch))
                    .and_then(|head| Ok(follow(repo, &self.branch_ref(), head).map(|()| head)?));
            match attempt {
                // A ref lock: the writer moving the branch (released in well under a millisecond), or one a killed
                // process left (removed once stale). Neither means the remote is down.
                Err(e) if e.is_lock() && started.elapsed() < LOCK_PATIENCE => {
                    railyard_refs::clear_stale_locks(&self.cfg.repo_dir, STALE_LOCK);
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    /// True once a fetch has succeeded.
    pub fn ready(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).fetched
    }

    pub fn snapshot(&self) -> FollowState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Moves the local branch to `remote` (None: the remote has no branch yet): it only ever holds what the remote
/// held, so anything else on it (a batch whose push was never accepted, before a crash) was never acknowledged.
fn follow(repo: &Repository, branch_ref: &str, remote: Option<Oid>) -> Result<(), git2::Error> {
    let local = railyard_refs::target(repo, branch_ref)?;
    if local == remote {
        return Ok(());
    }
    match remote {
        Some(r) => {
            let forward = match local {
                None => true,
                Some(l) => repo.graph_descendant_of(r, l)?,
            };
            if !forward {
                // Never for a commit this replica's writer made: those are on the remote before the branch names
                // them. The remote was rewritten, or this clone held a batch whose push was never accepted.
                tracing::warn!(local = ?local, remote = %r, "the local branch is not behind the remote; taking the remote's");
            }
            // A compare-and-swap on what was read: the writer may have moved the branch to a newer pushed commit.
            if !railyard_refs::swap(repo, branch_ref, local, r, "railyard: follows the remote")? {
                tracing::debug!("the writer moved the branch meanwhile; the next fetch looks again");
            }
        }
        None => {
            if let Some(l) = local {
                tracing::warn!(local = %l, "the remote has no branch: the local branch was never pushed; removing it");
                repo.find_reference(branch_ref)?.delete()?;
            }
        }
    }
    Ok(())
}

/// Fetches in the background every `fetch_interval` (and when woken), until the process ends.
pub async fn run_follower(remote: std::sync::Arc<Remote>, repo_dir: std::path::PathBuf) {
    let mut failures = 0u32;
    loop {
        let (r, dir) = (remote.clone(), repo_dir.clone());
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let repo = railyard_store::open(&dir)?;
            r.fetch_and_follow(&repo)
        })
        .await;
        let wait = match result {
            Ok(Ok(_)) => {
                if failures > 0 {
                    tracing::info!(after_failures = failures, "the remote can be fetched again");
                }
                failures = 0;
                remote.fetch_interval
            }
            Ok(Err(e)) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(error = %e, failures, ms = started.elapsed().as_millis() as u64, "fetching the remote failed");
                }
                remote.fetch_interval.max(railyard_export::backoff(failures).min(Duration::from_secs(5)))
            }
            Err(e) => {
                tracing::error!(error = %e, "the follower's task failed");
                remote.fetch_interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = remote.wake.notified() => {}
        }
    }
}

/// How long a read waits for the commit its `min_commit` names.
const MIN_COMMIT_WAIT: Duration = Duration::from_secs(10);

/// The commit a read asks to see: `?min_commit=<sha>` or the `Railyard-Min-Commit` header (None: it asks for none).
fn wanted(req: &axum::extract::Request) -> Option<String> {
    let from_query =
        req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("min_commit=").map(str::to_owned)));
    from_query.or_else(|| req.headers().get("railyard-min-commit").and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// The request's URI without its `min_commit` parameter, so the handlers' own query checks do not see it.
fn without_min_commit(uri: &axum::http::Uri) -> Option<axum::http::Uri> {
    let query = uri.query()?;
    let rest: Vec<&str> = query.split('&').filter(|kv| !kv.starts_with("min_commit=") && *kv != "min_commit").collect();
    let path_and_query =
        if rest.is_empty() { uri.path().to_owned() } else { format!("{}?{}", uri.path(), rest.join("&")) };
    path_and_query.parse().ok()
}

/// True when the branch holds `commit` (it is the head or one of its ancestors).
fn holds(repo_dir: &std::path::Path, branch_ref: &str, commit: Oid) -> Result<bool, git2::Error> {
    let repo = railyard_store::open(repo_dir)?;
    Ok(match railyard_refs::target(&repo, branch_ref)? {
        Some(head) if head == commit => true,
        Some(head) => repo.odb()?.exists(commit) && repo.graph_descendant_of(head, commit)?,
        None => false,
    })
}

/// Read-your-writes across replicas: a read (GET or HEAD) with `?min_commit=<sha>` (or `Railyard-Min-Commit`) is
/// answered only once this replica's branch holds that commit, fetching the remote meanwhile; after 10 s it is 503
/// `min_commit_not_seen` (the commit is not on the remote branch, or the remote cannot be reached).
pub async fn min_commit(
    axum::extract::State(st): axum::extract::State<crate::routes::AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let read = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    let Some(raw) = wanted(&req).filter(|_| read) else { return next.run(req).await };
    if let Some(uri) = without_min_commit(req.uri()) {
        *req.uri_mut() = uri;
    }
    let commit = match Oid::from_str(&raw) {
        Ok(c) if raw.len() == 40 => c,
        _ => {
            return crate::error::ApiError::bad_request(
                "min_commit",
                "min_commit must be a full commit id (40 hex digits)",
            )
            .into_response()
        }
    };
    let deadline = Instant::now() + MIN_COMMIT_WAIT;
    let branch_ref = railyard_refs::branch_ref(&st.branch);
    loop {
        let (dir, name) = (st.repo_dir.clone(), branch_ref.clone());
        match tokio::task::spawn_blocking(move || holds(&dir, &name, commit)).await {
            Ok(Ok(true)) => return next.run(req).await,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => return crate::error::ApiError::from(e).into_response(),
            Err(e) => return crate::error::ApiError::internal(e).into_response(),
        }
        if Instant::now() >= deadline {
            return crate::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "min_commit_not_seen",
                format!("this replica has not seen commit {commit} within {} s", MIN_COMMIT_WAIT.as_secs()),
            )
            .into_response();
        }
        match &st.remote {
            Some(r) => {
                let fetched = r.fetched.notified();
                r.wake.notify_one();
                let _ = tokio::time::timeout(Duration::from_millis(500), fetched).await;
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
