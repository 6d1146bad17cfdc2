//! What the exporter reports: lag read from the local repo, its status (also kept in a file under the repo so
//! the API can show a separate exporter's state), and Prometheus metrics.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use railyard_refs::{self as refs, branch_ref, exported_ref};

/// What is not on the remote yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lag {
    /// Commits on the local branch not yet exported.
    pub commits: usize,
    /// When the oldest of them was committed (unix seconds).
    pub oldest_unix: Option<i64>,
    /// Requested tags not yet pushed.
    pub tags: usize,
}

impl Lag {
    /// Age of the oldest commit not yet exported.
    pub fn oldest_age_seconds(&self) -> Option<u64> {
        self.oldest_unix.map(|t| u64::try_from(now_unix() - t).unwrap_or(0))
    }
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The export lag, read from the local repo (cost: the commits not yet exported).
pub fn lag(repo_dir: &Path, branch: &str) -> Result<Lag, git2::Error> {
    let repo = railyard_store::open(repo_dir)?;
    let mut lag = Lag { tags: refs::pending_tags(&repo)?.len(), ..Lag::default() };
    let Some(head) = refs::target(&repo, &branch_ref(branch))? else { return Ok(lag) };
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    if let Some(done) = refs::target(&repo, &exported_ref(branch))? {
        if head == done || repo.graph_descendant_of(head, done)? {
            walk.hide(done)?;
        }
    }
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        lag.commits += 1;
        lag.oldest_unix = Some(commit.time().seconds());
    }
    Ok(lag)
}

/// What the exporter last saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The commit last confirmed on the remote.
    pub exported: Option<String>,
    /// What was not on the remote yet after the last round.
    pub lag: Lag,
    /// The last error, cleared by a successful round.
    pub last_error: Option<String>,
    /// Set when export stopped for good (a refused tag with `--fail-on-error-with-git-push-tags`).
    pub stopped: Option<String>,
    pub consecutive_failures: u32,
    /// When the exporter last reconciled with the remote (unix seconds).
    pub reconciled_at: Option<i64>,
    /// When this status was written (unix seconds).
    pub updated_at: i64,
}

/// `<repo-dir>/railyard/export-status.json`: a separate exporter's status, for the API's `/readyz`.
pub fn status_file(repo_dir: &Path) -> PathBuf {
    repo_dir.join("railyard").join("export-status.json")
}

/// Writes the status file atomically (write, then rename).
pub fn write_status_file(repo_dir: &Path, status: &Status) -> std::io::Result<()> {
    let path = status_file(repo_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(status).unwrap_or_default())?;
    std::fs::rename(&tmp, &path)
}

/// The status a (separate) exporter last wrote; None if there is none or it cannot be read.
pub fn read_status_file(repo_dir: &Path) -> Option<Status> {
    serde_json::from_slice(&std::fs::read(status_file(repo_dir)).ok()?).ok()
}

/// The exporter's Prometheus metrics; clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub lag_commits: Gauge,
    pub lag_tags: Gauge,
    pub lag_oldest_seconds: Gauge<f64, AtomicU64>,
    pub stopped: Gauge,
    pub consecutive_failures: Gauge,
    pub pushes: Counter,
    pub push_failures: Counter,
    pub tags_pushed: Counter,
    pub tags_failed: Counter,
    pub learnt_tags: Counter,
    pub adoptions: Counter,
    pub replayed_commits: Counter,
    pub failed_requests: Counter,
}

impl Metrics {
    /// Registers every metric under `railyard_export_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("railyard_export");
        r.register("lag_commits", "Commits on the local branch not yet on the remote", self.lag_commits.clone());
        r.register("lag_tags", "Requested tags not yet on the remote", self.lag_tags.clone());
        r.register(
            "lag_oldest_seconds",
            "Age of the oldest commit not yet on the remote (0: none)",
            self.lag_oldest_seconds.clone(),
        );
        r.register("stopped", "1 when export stopped for good (a refused tag)", self.stopped.clone());
        r.register("consecutive_failures", "Failed rounds since the last success", self.consecutive_failures.clone());
        r.register("pushes", "Branch pushes that succeeded", self.pushes.clone());
        r.register("push_failures", "Rounds that failed (and were retried)", self.push_failures.clone());
        r.register("tags_pushed", "Tags created on the remote", self.tags_pushed.clone());
        r.register("tags_failed", "Tags that could not be created", self.tags_failed.clone());
        r.register("learnt_tags", "Tags created on the remote by others and learnt", self.learnt_tags.clone());
        r.register("adoptions", "Times a remote branch moved outside Railyard was adopted", self.adoptions.clone());
        r.register("replayed_commits", "Local commits replayed onto an adopted branch", self.replayed_commits.clone());
        r.register("failed_requests", "Requests that no longer applied when replayed", self.failed_requests.clone());
    }

    /// Sets the lag gauges.
    pub fn set_lag(&self, lag: &Lag) {
        self.lag_commits.set(lag.commits as i64);
        self.lag_tags.set(lag.tags as i64);
        self.lag_oldest_seconds.set(lag.oldest_age_seconds().unwrap_or(0) as f64);
    }

    /// Sets the gauges that follow the status.
    pub fn set_status(&self, status: &Status) {
        self.stopped.set(i64::from(status.stopped.is_some()));
        self.consecutive_failures.set(i64::from(status.consecutive_failures));
    }
}
