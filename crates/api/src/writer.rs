//! The single writer: one thread takes requests from a bounded queue, folds up to `batch_max` of them into
//! one commit, moves the branch with a compare-and-swap, then answers each caller with its own result.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::{ErrorCode, Oid, Repository};
use railyard_manifest::{commit, Envelope, Identity, Outcome, Stage};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::error::ApiError;

/// A write that was applied: what it did and the commit that holds it (None: it changed nothing).
#[derive(Debug)]
pub struct Applied {
    pub outcome: Outcome,
    pub commit: Option<Oid>,
}

struct Job {
    envelope: Envelope,
    reply: oneshot::Sender<Result<Applied, ApiError>>,
}

/// The queue end the handlers hold.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

pub struct WriterConfig {
    pub repo_dir: PathBuf,
    pub branch: String,
    pub batch_max: usize,
    pub queue_capacity: usize,
    /// Woken after every commit (the exporter).
    pub on_commit: Option<Arc<Notify>>,
    /// Batch sizes and commit latency.
    pub metrics: crate::metrics::WriterMetrics,
}

impl Writer {
    /// Starts the writer thread.
    pub fn start(cfg: WriterConfig) -> Result<Self, git2::Error> {
        let repo = Repository::open_bare(&cfg.repo_dir)?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        std::thread::Builder::new()
            .name("railyard-writer".into())
            .spawn(move || run(repo, cfg, rx))
            .map_err(|e| git2::Error::from_str(&format!("cannot start writer thread: {e}")))?;
        Ok(Self { tx })
    }

    /// Queues one request and waits for its commit. A full queue is 503.
    pub async fn submit(&self, envelope: Envelope) -> Result<Applied, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Job { envelope, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                "the writer's queue is full; retry shortly",
            ),
            mpsc::error::TrySendError::Closed(_) => ApiError::internal("the writer has stopped"),
        })?;
        rx.await.map_err(|_| ApiError::internal("the writer stopped before answering"))?
    }

    /// True while the writer thread runs.
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Requests waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

fn run(repo: Repository, cfg: WriterConfig, mut rx: mpsc::Receiver<Job>) {
    let branch_ref = railyard_export::branch_ref(&cfg.branch);
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        // A request that tags its commit ends the batch, so the tag marks the state right after it.
        while jobs.len() < cfg.batch_max && jobs.last().is_none_or(|j| j.envelope.request.git_tags().is_empty()) {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let results = apply_batch(&repo, &cfg.repo_dir, &branch_ref, &mut jobs);
        let n = jobs.len();
        match results {
            Ok((commit, results)) => {
                if let Some(c) = commit {
                    tracing::info!(commit = %c, requests = n, ms = started.elapsed().as_millis() as u64, "committed batch");
                    cfg.metrics.batch_size.observe(n as f64);
                    cfg.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
                    cfg.metrics.commits.inc();
                    if let Some(w) = &cfg.on_commit {
                        w.notify_one();
                    }
                }
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(result.map(|outcome| Applied { outcome, commit }).map_err(ApiError::from));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = n, "batch failed; nothing written");
                for job in jobs {
                    let _ = job.reply.send(Err(ApiError::internal(format!("commit failed: {e}"))));
                }
            }
        }
    }
    tracing::info!("writer stopped");
}

/// A ref lock older than this was left by a killed process.
const STALE_LOCK: Duration = Duration::from_secs(2);
/// How long the writer waits for a locked branch before failing the batch.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

type BatchResults = (Option<Oid>, Vec<railyard_manifest::Result<Outcome>>);

/// Applies every job to the branch head and commits; when the branch moved meanwhile (the exporter adopted a
/// remote branch), the batch is rebuilt on the new head.
fn apply_batch(
    repo: &Repository,
    repo_dir: &Path,
    branch_ref: &str,
    jobs: &mut [Job],
) -> Result<BatchResults, git2::Error> {
    loop {
        let head = railyard_export::target(repo, branch_ref)?;
        let base = head.map(|h| repo.find_commit(h).and_then(|c| c.tree())).transpose()?;
        let base_id = base.as_ref().map(|t| t.id());
        let mut stage = Stage::new(repo, base);
        let mut claimed: Vec<String> = Vec::new();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs.iter_mut() {
            let tags: Vec<String> = job.envelope.request.git_tags().iter().map(|t| t.to_string()).collect();
            let mut taken = None;
            for (i, tag) in tags.iter().enumerate() {
                if claimed.contains(tag)
                    || tags[..i].contains(tag)
                    || railyard_export::resolve_tag(repo, tag)?.is_some()
                {
                    taken = Some(tag.clone());
                    break;
                }
            }
            if let Some(tag) = taken {
                results
                    .push(Err(railyard_manifest::Error::conflict("tag_exists", format!("tag {tag} already exists"))));
                continue;
            }
            let result = railyard_manifest::apply(&mut stage, &mut job.envelope);
            // A flow run that failed keeps only its record: no tag.
            let tagged = match &result {
                Ok(Outcome::FlowRun(run)) => run.status == railyard_manifest::request::RunStatus::Succeeded,
                Ok(_) => true,
                Err(_) => false,
            };
            if tagged {
                claimed.extend(tags);
            }
            results.push(result);
        }
        let wants_commit = results.iter().any(|r| r.as_ref().is_ok_and(Outcome::wants_commit));
        let changed =
            if stage.is_unchanged() { None } else { Some(stage.write_tree()?).filter(|t| Some(*t) != base_id) };
        let tree = match (changed, wants_commit, base_id) {
            (Some(tree), _, _) => tree,
            (None, true, Some(base)) => base,
            (None, true, None) => stage.write_tree()?,
            (None, false, _) => return Ok((None, untag(results))),
        };
        let applied: Vec<&Envelope> =
            jobs.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(j, _)| &j.envelope).collect();
        let author = common_author(&applied);
        let message = commit::message(&applied);
        let new = commit::write_commit(repo, head, tree, &author, &message)?;
        // The commit and every object it needs are on disk before the branch names it.
        sync_to_disk(repo_dir)?;
        let log = format!("railyard: {}", message.lines().next().unwrap_or_default());
        let moved = retry_locked(repo_dir, || match head {
            Some(old) => repo.reference_matching(branch_ref, new, true, old, &log).map(|_| ()),
            None => repo.reference(branch_ref, new, false, &log).map(|_| ()),
        });
        match moved {
            Ok(_) => {
                // Tags are recorded after the branch moved and before anyone is answered: a pending tag always
                // names a commit on the branch, and a crash in between loses only the tag of an unanswered write.
                for tag in &claimed {
                    retry_locked(repo_dir, || {
                        repo.reference(&railyard_export::pending_tag_ref(tag), new, false, "railyard: tag requested")
                            .map(|_| ())
                    })?;
                }
                // ...and the branch and tag refs are, before anyone is answered.
                sync_to_disk(repo_dir)?;
                return Ok((Some(new), results));
            }
            Err(e) => {
                if !matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) {
                    return Err(e);
                }
                tracing::info!("branch moved under the writer; rebuilding the batch on the new head");
            }
        }
    }
}

/// True where [`sync_to_disk`] flushes the filesystem (Linux); elsewhere git fsyncs each object
/// (`core.fsyncObjectFiles`) and refs are left to the OS.
pub const SYNCS_FILESYSTEM: bool = cfg!(target_os = "linux");

/// Flushes everything written to the repo's filesystem: one `syncfs` per batch makes its objects (written without
/// fsync) and then its refs durable, whatever their number.
#[cfg(target_os = "linux")]
fn sync_to_disk(repo_dir: &Path) -> Result<(), git2::Error> {
    let dir =
        std::fs::File::open(repo_dir).map_err(|e| git2::Error::from_str(&format!("cannot open the repo: {e}")))?;
    rustix::fs::syncfs(&dir).map_err(|e| git2::Error::from_str(&format!("cannot sync the repo to disk: {e}")))
}

#[cfg(not(target_os = "linux"))]
fn sync_to_disk(_repo_dir: &Path) -> Result<(), git2::Error> {
    Ok(())
}

/// Runs a ref update, waiting out a lock: one left by a killed process is removed once stale; a live one is
/// released in well under a millisecond.
fn retry_locked(repo_dir: &Path, mut update: impl FnMut() -> Result<(), git2::Error>) -> Result<(), git2::Error> {
    let started = Instant::now();
    loop {
        match update() {
            Err(e) if e.code() == ErrorCode::Locked && started.elapsed() < LOCK_PATIENCE => {
                railyard_export::clear_stale_locks(repo_dir, STALE_LOCK);
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Without a commit there is nothing to tag: trains answer `tag: null`.
fn untag(mut results: Vec<railyard_manifest::Result<Outcome>>) -> Vec<railyard_manifest::Result<Outcome>> {
    for r in results.iter_mut().flatten() {
        if let Outcome::Train(t) = r {
            t.tag = None;
        }
    }
    results
}

/// The author of a batch: the one requester if there is one, else Railyard itself.
fn common_author(applied: &[&Envelope]) -> Identity {
    match applied.first() {
        Some(first) if applied.iter().all(|e| e.author == first.author) => first.author.clone(),
        _ => Identity::default(),
    }
}
