//! The single writer: one thread takes requests from a bounded queue, folds up to `batch_max` of them into
//! one commit, moves the branch with a compare-and-swap, then answers each caller with its own result.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::{ErrorCode, ObjectType, Oid, Repository};
use railyard_manifest::memory::MemoryObjects;
use railyard_manifest::stage::BigDirs;
use railyard_manifest::{commit, Envelope, Identity, Outcome, Stage};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::auth::Caller;
use crate::error::{storage_error, ApiError, ApiResult};

/// A write that was applied: what it did and the commit that holds it (None: it changed nothing).
#[derive(Debug)]
pub struct Applied {
    pub outcome: Outcome,
    pub commit: Option<Oid>,
}

/// One queued write.
pub struct Job {
    pub envelope: Envelope,
    /// Who asked (None: auth is off); checked against the state the request is applied to.
    pub caller: Option<Caller>,
    /// The blobs the request names by id (a release's manifests): written only once the caller is authorized, and
    /// removed again when the request fails, so a refused upload leaves the object store as it was.
    pub blobs: Vec<Vec<u8>>,
}

struct Queued {
    job: Job,
    reply: oneshot::Sender<ApiResult<Applied>>,
}

/// The queue end the handlers hold.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Queued>,
}

pub struct WriterConfig {
    pub repo_dir: PathBuf,
    pub branch: String,
    pub batch_max: usize,
    pub queue_capacity: usize,
    /// Woken after every commit (the exporter).
    pub on_commit: Option<Arc<Notify>>,
    /// The newest commit known to be on disk with its branch ref: set after each batch's final sync, before
    /// `on_commit` is woken, so that nothing announced afterwards (webhooks) can be lost by a machine crash.
    pub durable: Arc<std::sync::Mutex<Option<Oid>>>,
    /// Batch sizes and commit latency.
    pub metrics: crate::metrics::WriterMetrics,
    /// `--ack after-push`: every batch is pushed (a compare-and-swap on the remote branch) before it is answered.
    pub remote: Option<Arc<crate::replica::Remote>>,
    /// Bumped by every pack roll-up. libgit2 keeps each pack an open object store has seen, removed from disk or
    /// not, and searches them all for an object it lacks, so the writer opens its stores again after a roll-up:
    /// otherwise every batch gets slower with every batch before it.
    pub rollups: Arc<std::sync::atomic::AtomicU64>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn start(cfg: WriterConfig) -> Result<Self, git2::Error> {
        let repo = railyard_store::open(&cfg.repo_dir)?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let retired = crate::retired::Retired::start(&cfg.repo_dir)
            .map_err(|e| tracing::warn!(error = %e, "cannot keep replaced ref files for removal off the writer's path; the writer removes them"))
            .ok();
        std::thread::Builder::new()
            .name("railyard-writer".into())
            .spawn(move || run(repo, cfg, rx, retired))
            .map_err(|e| git2::Error::from_str(&format!("cannot start writer thread: {e}")))?;
        Ok(Self { tx })
    }

    /// Queues one write and waits for its commit. A full queue is 503.
    pub async fn submit(&self, job: Job) -> ApiResult<Applied> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Queued { job, reply }).map_err(|e| match e {
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

fn run(repo: Repository, cfg: WriterConfig, mut rx: mpsc::Receiver<Queued>, retired: Option<crate::retired::Retired>) {
    let mut repo = Some(repo);
    loop {
        let repo = match repo.take().map_or_else(|| railyard_store::open(&cfg.repo_dir), Ok) {
            Ok(r) => r,
            Err(e) => return tracing::error!(error = %e, "the writer cannot open the repo"),
        };
        if !serve(&repo, &cfg, retired.as_ref(), &mut rx) {
            break;
        }
        tracing::debug!("packs were rolled up: the writer opens its object stores again");
    }
    tracing::info!("writer stopped");
}

/// Serves batches on `repo` until the queue closes (false) or the packs were rolled up since it began (true).
fn serve(
    repo: &Repository,
    cfg: &WriterConfig,
    retired: Option<&crate::retired::Retired>,
    rx: &mut mpsc::Receiver<Queued>,
) -> bool {
    use std::sync::atomic::Ordering;
    let rollups = cfg.rollups.load(Ordering::Acquire);
    let branch_ref = railyard_refs::branch_ref(&cfg.branch);
    // A batch's objects are written to memory (a mempack ahead of the disk backends) and reach the disk as one pack
    // with its index, made durable by the batch's one sync: no loose object per blob and tree.
    let odb = match repo.odb() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "the writer cannot open the object store");
            return false;
        }
    };
    let objects = match (odb.add_new_mempack_backend(1000), railyard_store::open(&cfg.repo_dir)) {
        (Ok(memory), Ok(disk)) => Objects {
            memory,
            disk,
            retired,
            flushing: Default::default(),
            packing: Default::default(),
            moving: Default::default(),
        },
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "the writer cannot set up its object store");
            return false;
        }
    };
    // The big directories the last batch read or wrote, parsed ([`Stage::keep_big_dirs`]); let go before `objects`.
    let big_dirs: RefCell<BigDirs<'_>> = RefCell::default();
    while cfg.rollups.load(Ordering::Acquire) == rollups {
        let Some(first) = rx.blocking_recv() else { return false };
        let mut queued = vec![first];
        // A request that tags its commit ends that commit, not the batch: the batch is a chain of commits, pushed
        // at once, and each tag names the state right after its request.
        while queued.len() < cfg.batch_max {
            match rx.try_recv() {
                Ok(q) => queued.push(q),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let (mut jobs, replies): (Vec<Job>, Vec<_>) = queued.into_iter().map(|q| (q.job, q.reply)).unzip();
        let n = jobs.len();
        let (commit, commits, results) =
            apply_batch(repo, &objects, &big_dirs, &cfg.repo_dir, &branch_ref, &mut jobs, cfg.remote.as_deref());
        let flushed = objects.flushing.take();
        let (packing, moving) = (objects.packing.take(), objects.moving.take());
        // The batch's objects are in its pack by now, or were never needed: they leave memory now rather than when
        // the next batch starts (a train's 40,000 new trees and blobs at 10,000 applications would wait there).
        if let Err(e) = objects.memory.reset() {
            tracing::warn!(error = %e, "the writer's memory could not be emptied after a batch; the next batch will try again");
        }
        if let Some(c) = commit {
            // A failed final sync turned every answer into an error: the commit is not known to be durable.
            if results.iter().any(Result::is_ok) {
                *cfg.durable.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
            }
            let took = started.elapsed();
            let (ms, sync_ms) = (took.as_millis() as u64, flushed.as_millis() as u64);
            let (pack_ms, ref_ms) = (packing.as_millis() as u64, moving.as_millis() as u64);
            tracing::info!(commit = %c, requests = n, ms, sync_ms, pack_ms, ref_ms, "committed batch");
            cfg.metrics.batch_size.observe(n as f64);
            cfg.metrics.sync_seconds.observe(flushed.as_secs_f64());
            cfg.metrics.commit_seconds.observe(took.as_secs_f64());
            cfg.metrics.commits.inc();
            if let Some(w) = &cfg.on_commit {
                w.notify_one();
            }
        }
        for (i, (reply, result)) in replies.into_iter().zip(results).enumerate() {
            let commit = commits.get(i).copied().flatten();
            let _ = reply.send(result.map(|outcome| Applied { outcome, commit }));
        }
        if started.elapsed() > BIG_BATCH {
            // A batch this long (a train over thousands of applications) read and built many trees: once its
            // answers are out, the memory it freed goes back to the system (now and then, under a steady load).
            railyard_export::memory::give_back_at_most_every(Duration::from_secs(30));
        }
    }
    true
}

/// A batch that takes longer than this gives the heap's free memory back to the system after answering.
const BIG_BATCH: Duration = Duration::from_millis(250);

/// A ref lock older than this was left by a killed process.
const STALE_LOCK: Duration = Duration::from_secs(2);
/// How long the writer waits for a locked branch before failing the batch.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

type Results = Vec<ApiResult<Outcome>>;

/// What a batch built on the branch head: a chain of commits, one per segment of its requests. A request that tags
/// its commit ends a segment, so its tag names the state right after it; the chain is pushed and synced at once.
struct Built {
    head: Option<Oid>,
    /// The new commits, oldest first; never empty.
    chain: Vec<Oid>,
    /// The commit each job's answer names: its segment's, else the newest one before it (None: none before it).
    commits: Vec<Option<Oid>>,
    /// The reflog message of the branch update.
    log: String,
}

impl Built {
    fn tip(&self) -> Oid {
        *self.chain.last().expect("a built batch has a commit")
    }
}

/// Applies every job to the branch head and commits; when the branch moved meanwhile (the exporter adopted a
/// remote branch), the batch is rebuilt on the new head. Each job gets its own answer and the commit it names, and
/// each answer says what really happened: a job refused alone fails alone, and nothing committed is ever answered
/// as "not written". Returns the branch's new head, if it moved.
fn apply_batch<'r>(
    repo: &'r Repository,
    objects: &'r Objects<'_>,
    big_dirs: &RefCell<BigDirs<'r>>,
    repo_dir: &Path,
    branch_ref: &str,
    jobs: &mut [Job],
    remote: Option<&crate::replica::Remote>,
) -> (Option<Oid>, Vec<Option<Oid>>, Results) {
    let mut moved = 0u32;
    loop {
        // What an earlier attempt (or batch) left in memory is either in a pack by now or was never needed (the
        // blobs of a refused upload): a refused request leaves nothing behind.
        if let Err(e) = objects.memory.reset() {
            tracing::error!(error = %e, "the writer's memory could not be emptied; batch not written");
            let failed = || storage_error(repo_dir, &e, "the commit failed; nothing was written");
            return (None, Vec::new(), jobs.iter().map(|_| Err(failed())).collect());
        }
        if let Some(r) = remote.filter(|r| !r.ready()) {
            // A replica writes on the remote's head, so it must have read it once.
            if let Err(e) = r.fetch_and_follow(repo) {
                tracing::error!(error = %e, requests = jobs.len(), "the remote cannot be reached; batch not written");
                return (None, Vec::new(), jobs.iter().map(|_| Err(unreachable())).collect());
            }
        }
        let base = railyard_refs::target(repo, branch_ref).ok().flatten();
        let mut results: Results = Vec::with_capacity(jobs.len());
        let mut claims: Vec<(usize, Vec<String>)> = Vec::new();
        let built = build_commit(repo, objects, big_dirs, repo_dir, branch_ref, jobs, &mut results, &mut claims);
        // After push, a refusal (404, 409, …) must reflect the remote's state, not a stale fetch: a batch that refused
        // a request, or has nothing to push, is decided again if the remote moved meanwhile.
        if let Some(r) = remote.filter(|_| matches!(built, Ok(None)) || results.iter().any(Result::is_err)) {
            match railyard_export::remote_head(repo, &r.cfg) {
                Ok(there) if there != base && moved + 1 < r.push_attempts => {
                    moved += 1;
                    tracing::info!(base = ?base, remote = ?there, "the remote moved since the last fetch; deciding the batch again on its head");
                    if let Err(e) = r.fetch_and_follow(repo) {
                        return (None, Vec::new(), remote_down(results, &e));
                    }
                    continue;
                }
                Ok(_) => {}
                // A refusal decided on a state that cannot be confirmed is not an answer: every request gets 503.
                Err(e) => return (None, Vec::new(), remote_down(results, &e)),
            }
        }
        let built = match built {
            Ok(Some(built)) => built,
            Ok(None) => return (None, Vec::new(), untag(results)),
            Err(e) => return (None, Vec::new(), not_written(results, repo_dir, &e)),
        };
        let (head, new) = (built.head, built.tip());
        if let Some(r) = remote {
            // After push: the remote branch moves first, as a compare-and-swap on the head the batch was built on.
            match railyard_export::push_if_at(repo, &r.cfg, head, new) {
                Ok(railyard_export::CasPush::Done) => {}
                Ok(railyard_export::CasPush::Moved(there)) => {
                    moved += 1;
                    if moved >= r.push_attempts {
                        tracing::warn!(attempts = moved, "the remote branch kept moving; the batch is not written");
                        return (None, Vec::new(), contended(results));
                    }
                    tracing::info!(base = ?head, remote = ?there, attempt = moved, "another replica moved the remote branch; rebuilding the batch on its head");
                    std::thread::sleep(push_backoff(moved));
                    if let Err(e) = r.fetch_and_follow(repo) {
                        return (None, Vec::new(), remote_down(results, &e));
                    }
                    continue;
                }
                Err(e) => return (None, Vec::new(), remote_down(results, &e)),
            }
        }
        let log = &built.log;
        // The same compare-and-swap the exporter uses: false when it moved the branch first.
        let moving = Instant::now();
        // The file the move replaces is freed off the writer's path ([`crate::retired`]).
        let kept = objects.retired.and_then(|r| r.keep(repo_dir, branch_ref));
        let swapped = retry_locked(repo_dir, || railyard_refs::swap(repo, branch_ref, head, new, log));
        if let Some(r) = objects.retired {
            r.release(kept);
        }
        objects.moving.set(objects.moving.get() + moving.elapsed());
        match swapped {
            Ok(true) => {}
            Ok(false) if remote.is_some() => {
                // The follower fetched the pushed commit (or a later one) first: the branch holds it either way.
                let now = railyard_refs::target(repo, branch_ref).ok().flatten();
                let holds = now == Some(new) || now.is_some_and(|n| repo.graph_descendant_of(n, new).unwrap_or(false));
                if !holds {
                    if let Err(e) = retry_locked(repo_dir, || repo.reference(branch_ref, new, true, log).map(|_| ())) {
                        return (None, Vec::new(), not_written(results, repo_dir, &e));
                    }
                }
            }
            Ok(false) => {
                tracing::info!("branch moved under the writer; rebuilding the batch on the new head");
                continue;
            }
            Err(e) => return (None, Vec::new(), not_written(results, repo_dir, &e)),
        }
        if let Some(r) = remote {
            // What was pushed is exported: nothing is left for an exporter to do.
            let exported = railyard_refs::exported_ref(&r.cfg.branch);
            if let Err(e) = repo.reference(&exported, new, true, "railyard: pushed by the writer") {
                tracing::warn!(error = %e, "could not record the pushed commit as exported");
            }
        }
        // Tags are recorded after the branch moved and before anyone is answered: a pending tag always names a
        // commit on the branch, and a crash in between loses only the tag of an unanswered write. A tag that cannot
        // be recorded fails its own request, which is told its changes are committed.
        for (i, tags) in claims.iter().cloned() {
            // A claim is kept only for a segment that made a commit.
            let Some(at) = built.commits[i] else { continue };
            for tag in tags {
                let recorded = retry_locked(repo_dir, || {
                    repo.reference(&railyard_refs::pending_tag_ref(&tag), at, false, "railyard: tag requested")
                        .map(|_| ())
                });
                if let Err(e) = recorded {
                    tracing::error!(commit = %at, tag = %tag, error = %e, "committed, but the requested tag could not be recorded");
                    results[i] = Err(storage_error(repo_dir, &e, &format!(
                        "the changes are committed as {at}, but tag {tag} could not be recorded; request it again with a train"
                    )));
                    break;
                }
            }
        }
        if let Some(r) = remote {
            push_claimed_tags(repo, r, new, &claims, &mut results);
        }
        // ...and the branch and tag refs are durable before anyone is answered.
        if let Err(e) = objects.flush(repo_dir) {
            tracing::error!(commit = %new, error = %e, "committed, but the repo could not be flushed to disk");
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(storage_error(repo_dir, &e, &format!(
                    "the changes are committed as {new}, but could not be flushed to disk: a machine crash may lose them"
                )));
            }
        }
        return (Some(new), built.commits, results);
    }
}

/// Applies each job to a stage over the branch head and writes the chain of commits (not yet on the branch): a job
/// that takes a tag ends its segment's commit. None: nothing to commit. Fills `results` with each job's answer and
/// `claims` with the tags each applied job takes, in a segment that made a commit (a job whose segment made none
/// answers `tag: null`).
#[allow(clippy::too_many_arguments)]
fn build_commit<'r>(
    repo: &'r Repository,
    objects: &'r Objects<'_>,
    big_dirs: &RefCell<BigDirs<'r>>,
    repo_dir: &Path,
    branch_ref: &str,
    jobs: &mut [Job],
    results: &mut Results,
    claims: &mut Vec<(usize, Vec<String>)>,
) -> Result<Option<Built>, git2::Error> {
    let head = railyard_refs::target(repo, branch_ref)?;
    let base = head.map(|h| repo.find_commit(h).and_then(|c| c.tree())).transpose()?;
    let mut stage = Stage::with_big_dirs(repo, base, big_dirs.take());
    stage.write_objects_to(MemoryObjects::new(&objects.memory));
    let built = build_on(objects, repo_dir, &mut stage, head, jobs, results, claims);
    // Read or written, the batch's big directories stay parsed for the next batch (which verifies each by id).
    match stage.keep_big_dirs() {
        Ok(dirs) => *big_dirs.borrow_mut() = dirs,
        Err(e) => tracing::warn!(error = %e, "the batch's big directories could not be kept for the next batch"),
    }
    built
}

/// [`build_commit`] on its stage over `head`.
fn build_on(
    objects: &Objects<'_>,
    repo_dir: &Path,
    stage: &mut Stage<'_>,
    head: Option<Oid>,
    jobs: &mut [Job],
    results: &mut Results,
    claims: &mut Vec<(usize, Vec<String>)>,
) -> Result<Option<Built>, git2::Error> {
    let repo = stage.repo();
    let mut parent = (head, stage.base_id());
    let mut claimed: Vec<String> = Vec::new();
    let (mut chain, mut commits, mut log) = (Vec::new(), Vec::with_capacity(jobs.len()), String::new());
    let mut segment_claims: Vec<(usize, Vec<String>)> = Vec::new();
    let mut start = 0;
    for i in 0..jobs.len() {
        let job = &mut jobs[i];
        let result = apply_job(repo, repo_dir, stage, &claimed, job);
        // A flow run that failed keeps only its record: no tag.
        let tagged = match &result {
            Ok(Outcome::FlowRun(run)) => run.status == railyard_manifest::request::RunStatus::Succeeded,
            Ok(_) => true,
            Err(_) => false,
        };
        let tags: Vec<String> = job.envelope.request.git_tags().iter().map(|t| t.to_string()).collect();
        let ends = tagged && !tags.is_empty();
        if ends {
            claimed.extend(tags.iter().cloned());
            segment_claims.push((i, tags));
        }
        results.push(result);
        if !ends && i + 1 < jobs.len() {
            continue;
        }
        match commit_segment(stage, parent, &jobs[start..=i], &results[start..=i])? {
            Some((commit, tree, message)) => {
                parent = (Some(commit), Some(tree));
                chain.push(commit);
                claims.append(&mut segment_claims);
                log = format!("railyard: {}", message.lines().next().unwrap_or_default());
            }
            None => {
                for (j, _) in segment_claims.drain(..) {
                    if let Ok(Outcome::Train(t)) = &mut results[j] {
                        t.tag = None;
                    }
                }
            }
        }
        commits.resize(i + 1, chain.last().copied());
        start = i + 1;
    }
    if chain.is_empty() {
        return Ok(None);
    }
    // The commits and every object they need are on disk, in one pack, before the branch names them.
    let packing = Instant::now();
    objects.write_pack(repo, &chain, &stage.take_added())?;
    objects.packing.set(objects.packing.get() + packing.elapsed());
    objects.flush(repo_dir)?;
    Ok(Some(Built { head, chain, commits, log }))
}

/// Writes the commit of one segment of a batch (`jobs` and their `results`) on `parent` (a commit and its tree):
/// its commit, tree and message. None: the segment changed nothing and asks for no commit.
fn commit_segment(
    stage: &mut Stage<'_>,
    (parent, parent_tree): (Option<Oid>, Option<Oid>),
    jobs: &[Job],
    results: &[ApiResult<Outcome>],
) -> Result<Option<(Oid, Oid, String)>, git2::Error> {
    railyard_manifest::finish(stage).map_err(|e| git2::Error::from_str(&format!("Argo CD files: {e}")))?;
    let wants_commit = results.iter().any(|r| r.as_ref().is_ok_and(Outcome::wants_commit));
    // The stage holds the whole batch so far: a segment changed something when its tree is not its parent's.
    let changed =
        if stage.is_unchanged() { None } else { Some(stage.write_tree()?).filter(|t| Some(*t) != parent_tree) };
    let tree = match (changed, wants_commit, parent_tree) {
        (Some(tree), _, _) => tree,
        (None, true, Some(parent)) => parent,
        (None, true, None) => stage.write_tree()?,
        (None, false, _) => return Ok(None),
    };
    let applied: Vec<&Envelope> =
        jobs.iter().zip(results.iter()).filter(|(_, r)| r.is_ok()).map(|(j, _)| &j.envelope).collect();
    let author = common_author(&applied);
    let message = commit::message(&applied);
    let new = commit::write_commit_in(stage, parent, tree, &author, &message)?;
    Ok(Some((new, tree, message)))
}

/// One job on the stage: its caller authorized on this very state, its tags checked, its blobs written, then the
/// request applied. On failure the stage is as before and the blobs it wrote are gone again.
fn apply_job(
    repo: &Repository,
    repo_dir: &Path,
    stage: &mut Stage<'_>,
    claimed: &[String],
    job: &mut Job,
) -> ApiResult<Outcome> {
    if let Some(caller) = &job.caller {
        caller.check(&crate::auth::required(stage, &job.envelope.request)?)?;
    }
    crate::tags::check(repo, &job.envelope.request.git_tags(), claimed)?;
    // Into the batch's memory: only what the commit names reaches the disk.
    write_blobs(stage, &job.blobs).map_err(|e| storage_error(repo_dir, &e, "the upload could not be stored"))?;
    railyard_manifest::apply(stage, &mut job.envelope).map_err(ApiError::from)
}

/// Writes `blobs` into the batch's memory (a second copy of one, or of one on disk, is not written again).
fn write_blobs(stage: &Stage<'_>, blobs: &[Vec<u8>]) -> Result<(), git2::Error> {
    for content in blobs {
        stage.put_object(ObjectType::Blob, content)?;
    }
    Ok(())
}

/// Whether `id` is on disk, without rescanning the pack folder on a miss (a new object misses; a pack written since
/// this handle last looked would only make the object be packed twice, which is harmless).
fn on_disk(disk: &git2::Odb<'_>, id: Oid) -> bool {
    disk.exists_ext(id, git2::OdbLookupFlags::NO_REFRESH)
}

/// The writer's object store: `memory` takes every object a batch writes; `disk` is the same repo without it, to
/// tell which of a commit's objects are new.
struct Objects<'odb> {
    memory: git2::Mempack<'odb>,
    disk: Repository,
    /// Where the branch's replaced ref files go to be removed by another thread (None: the move frees them).
    retired: Option<&'odb crate::retired::Retired>,
    /// Time the current batch spent flushing the repo to disk (its objects, then its refs).
    flushing: std::cell::Cell<Duration>,
    /// Time the current batch spent writing its pack (not synced).
    packing: std::cell::Cell<Duration>,
    /// Time the current batch spent moving the branch (its ref file, not synced).
    moving: std::cell::Cell<Duration>,
}

impl Objects<'_> {
    /// [`sync_to_disk`], timed into `flushing`.
    fn flush(&self, repo_dir: &Path) -> Result<(), git2::Error> {
        let started = Instant::now();
        let synced = sync_to_disk(repo_dir);
        self.flushing.set(self.flushing.get() + started.elapsed());
        synced
    }

    /// Writes the commits of `chain` and the objects of `added` (what the stage's trees name where the base's named
    /// something else, [`Stage::take_added`]) that are not on disk yet as one pack with its index in
    /// `objects/pack`, the way `git fast-import` and `receive-pack` do. Not yet synced: the batch's sync follows.
    fn write_pack(&self, repo: &Repository, chain: &[Oid], added: &[Oid]) -> Result<(), git2::Error> {
        let disk = self.disk.odb()?;
        let mut seen = std::collections::HashSet::with_capacity(chain.len() + added.len());
        let ids: Vec<Oid> = chain
            .iter()
            .copied()
            .chain(added.iter().copied().filter(|&id| !on_disk(&disk, id)))
            .filter(|&id| seen.insert(id))
            .collect();
        railyard_export::objects::pack_into(repo, &ids, &self.disk)
    }
}

/// The answers of a batch whose commit failed before the branch moved: requests refused on their own keep their
/// answer; the others are told, truthfully, that nothing was written.
fn not_written(results: Results, repo_dir: &Path, e: &git2::Error) -> Results {
    tracing::error!(error = %e, requests = results.len(), "batch failed; nothing written");
    results
        .into_iter()
        .map(|r| match r {
            Ok(_) => Err(storage_error(repo_dir, e, "the commit failed; nothing was written")),
            Err(refused) => Err(refused),
        })
        .collect()
}

/// True where [`sync_to_disk`] flushes the filesystem (Linux); elsewhere git fsyncs each object
/// (`core.fsyncObjectFiles`) and refs are left to the OS.
pub const SYNCS_FILESYSTEM: bool = cfg!(target_os = "linux");

/// Flushes everything written to the repo's filesystem: one `syncfs` per batch makes its objects (written without
/// fsync) and then its refs durable, whatever their number. The same flush the pack roll-ups use.
pub use railyard_export::packs::sync_dir as sync_to_disk;

/// Runs a ref update, waiting out a lock: one left by a killed process is removed once stale; a live one is
/// released in well under a millisecond.
fn retry_locked<T>(repo_dir: &Path, mut update: impl FnMut() -> Result<T, git2::Error>) -> Result<T, git2::Error> {
    let started = Instant::now();
    loop {
        match update() {
            Err(e) if e.code() == ErrorCode::Locked && started.elapsed() < LOCK_PATIENCE => {
                railyard_refs::clear_stale_locks(repo_dir, STALE_LOCK);
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// After push, a batch's tags are pushed before it is answered. A tag the remote refuses (its name taken by another
/// commit, e.g. by another replica) fails the request that asked for it with `--fail-on-error-with-git-push-tags`
/// (it is recorded as failed either way, so no later batch trips over it); a remote that went away after the branch
/// push leaves the tag pending, pushed with the next batch, and says so.
fn push_claimed_tags(
    repo: &Repository,
    r: &crate::replica::Remote,
    new: Oid,
    claims: &[(usize, Vec<String>)],
    results: &mut Results,
) {
    let conflict = axum::http::StatusCode::CONFLICT;
    for _ in 0..=claims.iter().map(|(_, t)| t.len()).sum::<usize>() {
        match railyard_export::push_tags(repo, &r.cfg, new) {
            Ok(_) => return,
            Err(railyard_export::ExportError::TagRejected { tag, reason }) => {
                tracing::error!(tag = %tag, commit = %new, reason = %reason, "the remote refused a tag; recorded under refs/railyard/failed-tags");
                let pending = railyard_refs::pending_tag_ref(&tag);
                let at = railyard_refs::target(repo, &pending).ok().flatten().unwrap_or(new);
                let _ = repo.reference(&railyard_refs::failed_tag_ref(&tag), at, true, &reason);
                let _ = repo.find_reference(&pending).and_then(|mut p| p.delete());
                if let Some((i, _)) = claims.iter().find(|(_, tags)| tags.contains(&tag)) {
                    results[*i] = Err(ApiError::new(conflict, "tag_rejected", format!(
                        "the changes are committed and pushed as {new}, but the remote refused tag {tag}: its name is taken by another commit"
                    )));
                }
            }
            Err(e) => {
                tracing::warn!(commit = %new, error = %e, "pushed, but the batch's tags could not be pushed yet");
                for (i, tags) in claims {
                    if results[*i].is_ok() {
                        results[*i] = Err(ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "remote_unavailable", format!(
                            "the changes are committed and pushed as {new}, but tag {} could not be pushed yet; it stays pending and is pushed with the next write",
                            tags.join(", ")
                        )));
                    }
                }
                return;
            }
        }
    }
}

/// The wait before rebuilding a batch on a branch another replica moved: short, growing, with jitter so that
/// replicas that collided do not collide again in step.
fn push_backoff(attempt: u32) -> Duration {
    // Short: a replica that lost the race has fetched the winner's head and rebuilt on it, and must not fall behind
    // replicas that push again at once (1–2 ms at first, at most 32–64 ms).
    let base = 1u64 << attempt.min(5);
    Duration::from_millis(base + rand::random::<u64>() % base)
}

/// The answers of a batch the remote could not take: the remote could not be reached, so nothing was written
/// (requests refused on their own keep their answer).
fn remote_down(results: Results, e: &railyard_export::ExportError) -> Results {
    tracing::error!(error = %e, requests = results.len(), "the remote cannot be reached; batch not written");
    // Refusals too: they were decided on the last fetched state, which could not be confirmed.
    results.into_iter().map(|_| Err(unreachable())).collect()
}

fn unreachable() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "remote_unavailable",
        "the remote manifest repo cannot be reached; nothing was written, retry shortly",
    )
}

/// The answers of a batch whose every push found the branch moved by other replicas.
fn contended(results: Results) -> Results {
    let busy = || {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "remote_contended",
            "other replicas kept moving the remote branch; nothing was written, retry shortly",
        )
    };
    // Refusals too: the last build's state was already moved past.
    results.into_iter().map(|_| Err(busy())).collect()
}

/// Without a commit there is nothing to tag: trains answer `tag: null`.
fn untag(mut results: Results) -> Results {
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
