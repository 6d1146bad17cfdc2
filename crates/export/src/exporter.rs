//! The export loop: a round reconciles (at start, after a failure, and every idle period), pushes the branch,
//! then the tags; failures back off with jitter.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::push::{self, TagsPushed};
use crate::reconcile::{self, Reconciled};
use crate::status::{self, now_unix, Metrics, Status};
use railyard_refs as refs;

use crate::{transport, Config, ExportError};

/// What one round did.
#[derive(Debug, Default)]
pub struct Round {
    /// The local head, now on the remote (None: no branch yet).
    pub head: Option<git2::Oid>,
    /// The branch was pushed in this round.
    pub pushed: bool,
    pub tags: TagsPushed,
    pub reconciled: Option<Reconciled>,
}

/// One round: reconcile if asked, push the branch, push the tags whose commits are on the remote.
pub fn round(cfg: &Config, reconcile: bool) -> Result<Round, ExportError> {
    let result = round_inner(cfg, reconcile);
    if let Err(e) = &result {
        if e.is_lock() {
            // A process killed mid-update left a lock: in the local repo, or, when the remote is a directory here
            // and the push ran in the killed process, in the remote. Once stale it goes, and the retry succeeds.
            refs::clear_stale_locks(&cfg.repo_dir, STALE_LOCK);
            if let Some(remote) = transport::local_path(&cfg.git_url) {
                refs::clear_stale_locks(&remote, STALE_LOCK);
            }
        }
    }
    result
}

fn round_inner(cfg: &Config, reconcile: bool) -> Result<Round, ExportError> {
    let repo = railyard_store::open(&cfg.repo_dir)?;
    let reconciled = if reconcile { Some(reconcile::reconcile(&repo, cfg)?) } else { None };
    let (head, pushed) = push::push_branch(&repo, cfg)?;
    let tags = match head {
        Some(h) => push::push_tags(&repo, cfg, h)?,
        None => TagsPushed::default(),
    };
    Ok(Round { head, pushed, tags, reconciled })
}

/// A lock file older than this was left by a killed process (a live update holds it for well under a millisecond).
const STALE_LOCK: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The CPU priority of an export round (nice 10, on a thread of its own): beside the API's writer (in its process, or
/// in its pod), a push (reading what the commits changed and writing it to the remote) takes the CPU the writer and
/// the requests leave, so that it does not lengthen their answers on a machine of few cores. Behind a busy writer it
/// pushes more commits at once; idle, it runs at once all the same.
pub(crate) const EXPORT_NICE: i32 = 10;

/// Exponential backoff with full jitter: a random wait in [min, min·2^failures] capped at `BACKOFF_MAX`.
pub fn backoff(failures: u32) -> Duration {
    let cap = BACKOFF_MIN.saturating_mul(1u32 << failures.min(16)).min(BACKOFF_MAX);
    let span = cap.saturating_sub(BACKOFF_MIN).as_millis() as u64;
    BACKOFF_MIN + Duration::from_millis(if span == 0 { 0 } else { rand::random::<u64>() % span })
}

/// The exporter task: wakes on every commit (the embedded API notifies it) or, beside a separate API, polls the
/// local branch; reconciles every idle period so tags created on the remote are learnt.
pub struct Exporter {
    cfg: Config,
    wake: Arc<Notify>,
    status: Arc<Mutex<Status>>,
    metrics: Metrics,
    poll: Option<Duration>,
}

enum Next {
    Idle,
    Retry(Duration),
    Stop,
}

impl Exporter {
    pub fn new(cfg: Config, metrics: Metrics) -> Self {
        Self {
            cfg,
            wake: Arc::new(Notify::new()),
            status: Arc::new(Mutex::new(Status::default())),
            metrics,
            poll: None,
        }
    }

    /// Also look at the local repo every `interval` for commits and tags to push (when no API notifies us).
    pub fn polling(mut self, interval: Duration) -> Self {
        self.poll = Some(interval);
        self
    }

    /// Notify this after every commit to push it at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// A live view of the exporter's status.
    pub fn status(&self) -> Arc<Mutex<Status>> {
        self.status.clone()
    }

    /// Runs until export stops for good (a refused tag with `--fail-on-error-with-git-push-tags`) or the task is
    /// dropped.
    pub async fn run(self) {
        let mut reconcile = true;
        loop {
            let cfg = self.cfg.clone();
            let started = Instant::now();
            let result = tokio::task::spawn_blocking(move || {
                crate::packs::at_priority(EXPORT_NICE, || {
                    let round = round(&cfg, reconcile);
                    (round, status::lag(&cfg.repo_dir, &cfg.branch))
                })
            })
            .await;
            let next = match result {
                Ok((round, lag)) => self.record(round, lag.ok(), reconcile, started),
                Err(join) => self.record(
                    Err(ExportError::Git(git2::Error::from_str(&format!("export task failed: {join}")))),
                    None,
                    reconcile,
                    started,
                ),
            };
            match next {
                Next::Stop => return,
                Next::Retry(wait) => {
                    // Retry after the backoff even if new commits arrive meanwhile: a down remote is not hammered.
                    reconcile = true;
                    tokio::time::sleep(wait).await;
                }
                Next::Idle => reconcile = !self.wait_for_work().await,
            }
        }
    }

    /// Waits for a commit notification, or (when polling) for local work; false when the idle period ran out.
    async fn wait_for_work(&self) -> bool {
        let deadline = tokio::time::Instant::now() + IDLE;
        loop {
            let tick = match self.poll {
                Some(p) => p.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                None => deadline.saturating_duration_since(tokio::time::Instant::now()),
            };
            if tokio::time::timeout(tick, self.wake.notified()).await.is_ok() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let cfg = self.cfg.clone();
            if tokio::task::spawn_blocking(move || has_work(&cfg)).await.unwrap_or(true) {
                return true;
            }
        }
    }

    fn record(
        &self,
        round: Result<Round, ExportError>,
        lag: Option<status::Lag>,
        reconciled: bool,
        started: Instant,
    ) -> Next {
        let m = &self.metrics;
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lag) = lag {
            st.lag = lag;
            m.set_lag(&lag);
        }
        let remote = transport::redact(&self.cfg.git_url);
        let next = match round {
            Ok(r) => {
                if let Some(rec) = &r.reconciled {
                    st.reconciled_at = Some(now_unix());
                    m.learnt_tags.inc_by(rec.learnt_tags.len() as u64);
                    if let Some(a) = &rec.adoption {
                        m.adoptions.inc();
                        m.replayed_commits.inc_by(a.replayed as u64);
                        m.failed_requests.inc_by(a.failed_requests.len() as u64);
                    }
                }
                if r.pushed {
                    m.pushes.inc();
                    tracing::info!(commit = ?r.head.map(|h| h.to_string()), remote = %remote, ms = started.elapsed().as_millis() as u64, "exported branch");
                }
                m.tags_pushed.inc_by(r.tags.pushed.len() as u64);
                m.tags_failed.inc_by(r.tags.failed.len() as u64);
                st.exported = r.head.map(|h| h.to_string());
                st.last_error = None;
                st.consecutive_failures = 0;
                Next::Idle
            }
            Err(ExportError::TagRejected { tag, reason }) => {
                let msg = format!(
                    "tag {tag} cannot be pushed: {reason}; export stopped (--fail-on-error-with-git-push-tags)"
                );
                tracing::error!(tag = %tag, reason = %reason, "export stopped: the remote refused a tag");
                st.last_error = Some(msg.clone());
                st.stopped = Some(msg);
                Next::Stop
            }
            Err(e) => {
                st.consecutive_failures += 1;
                m.push_failures.inc();
                let wait = backoff(st.consecutive_failures);
                tracing::warn!(error = %e, remote = %remote, reconcile = reconciled, retry_in_ms = wait.as_millis() as u64, "export failed; will retry");
                st.last_error = Some(e.to_string());
                Next::Retry(wait)
            }
        };
        st.updated_at = now_unix();
        m.set_status(&st);
        if let Err(e) = status::write_status_file(&self.cfg.repo_dir, &st) {
            tracing::warn!(error = %e, "cannot write the export status file");
        }
        next
    }
}

/// True when the local branch is ahead of what was exported or a tag waits to be pushed.
fn has_work(cfg: &Config) -> bool {
    let Ok(repo) = railyard_store::open(&cfg.repo_dir) else { return true };
    let head = refs::target(&repo, &refs::branch_ref(&cfg.branch)).ok().flatten();
    let exported = refs::target(&repo, &refs::exported_ref(&cfg.branch)).ok().flatten();
    head != exported || refs::pending_tags(&repo).map(|t| !t.is_empty()).unwrap_or(true)
}
