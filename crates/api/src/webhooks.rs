//! Signed webhooks, delivered at least once without ever holding up a write.
//!
//! The outbox is git itself: the events of a commit are the entries of its history record (derived from its
//! trailers, so a redelivery has the same ids), and each subscriber has two cursors in the local repo,
//! `refs/railyard/webhooks/<id>/written` (the newest commit whose events it has received) and
//! `refs/railyard/webhooks/<id>/exported` (the same for `exported` events, which follow
//! `refs/railyard/exported/<branch>`). A cursor moves by compare-and-swap only after the events of its commit were
//! answered 2xx (or given up on after [`GIVE_UP`]), so a kill -9 at any moment repeats, and never loses, an event of
//! an acknowledged write. Each subscriber has its own task: a slow or dead one delays nobody else, and the writer
//! only rings a bell.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use hmac::{Hmac, Mac};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::history::{History, Index, Requests};

/// Retries of one event stop this long after its first failure (it is then recorded as failed and skipped).
pub const GIVE_UP: Duration = Duration::from_secs(25 * 3600);
/// The first retry's delay; each retry doubles it up to [`BACKOFF_MAX`], each delay jittered to 50–100 %.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How often a subscriber looks for work without being woken (commits by another process, export progress).
const POLL: Duration = Duration::from_secs(1);
/// Deliveries `GET /api/webhooks/deliveries` keeps.
const LOG_SIZE: usize = 1000;
/// Shortest secret accepted.
pub const MIN_SECRET: usize = 16;

/// One `--webhooks` entry.
pub struct Subscriber {
    /// Derived from the URL: names its cursors.
    pub id: String,
    pub url: String,
    secret: Vec<u8>,
    /// Actions (as in the history), `exported`, or `*`.
    pub events: Vec<String>,
}

/// Never shows the secret.
impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.id)
            .field("url", &railyard_export::redact(&self.url))
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriber {
    url: String,
    secret: String,
    events: Vec<String>,
}

impl Subscriber {
    /// Whether events of `action` go to this subscriber.
    pub fn wants(&self, action: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == action)
    }

    fn wants_exported(&self) -> bool {
        self.events.iter().any(|e| e == "*" || e == "exported")
    }

    /// Whether an `exported` event goes out for an entry of `action`: with `exported` alone, for every entry; else
    /// for the entries whose action is listed.
    fn wants_exported_of(&self, action: &str) -> bool {
        self.wants_exported() && (self.wants(action) || self.events.iter().all(|e| e == "exported"))
    }

    /// `sha256=<hex HMAC-SHA256 of body>`.
    pub fn signature(&self, body: &[u8]) -> String {
        signature(&self.secret, body)
    }
}

/// `sha256=<hex HMAC-SHA256 of body with secret>` (GitHub's `X-Hub-Signature-256` scheme).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Parses a `--webhooks` file; the error names the entry and what is wrong with it (never the secret).
pub fn parse(text: &str) -> Result<Vec<Subscriber>, String> {
    let raw: Vec<RawSubscriber> =
        serde_yaml::from_str(text).map_err(|e| format!("not a YAML list of {{url, secret, events}}: {e}"))?;
    let mut out: Vec<Subscriber> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let which = format!("entry {}", i + 1);
        let url = url::Url::parse(&r.url).map_err(|e| format!("{which}: url is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "{which} ({}): url must be http:// or https:// with a host",
                railyard_export::redact(&r.url)
            ));
        }
        let at = railyard_export::redact(&r.url);
        if r.secret.len() < MIN_SECRET {
            return Err(format!("{which} ({at}): secret must be at least {MIN_SECRET} bytes"));
        }
        if r.events.is_empty() {
            return Err(format!("{which} ({at}): events must list at least one kind, or \"*\""));
        }
        if let Some(bad) = r
            .events
            .iter()
            .find(|e| e.as_str() != "*" && (e.is_empty() || !e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')))
        {
            return Err(format!(
                "{which} ({at}): event kind {bad:?} is not an action (e.g. {}), \"exported\" or \"*\"",
                railyard_manifest::history::ACTIONS.join(", ")
            ));
        }
        let id: String = Sha256::digest(r.url.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect();
        if out.iter().any(|s| s.id == id) {
            return Err(format!("{which} ({at}): the same url is listed twice"));
        }
        out.push(Subscriber { id, url: r.url, secret: r.secret.into_bytes(), events: r.events });
    }
    Ok(out)
}

/// Reads and checks `--webhooks FILE`.
pub fn load(file: &Path) -> anyhow::Result<Vec<Subscriber>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("--webhooks {}: cannot read: {e}", file.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("--webhooks {}: {e}", file.display()))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriberLabels {
    pub subscriber: String,
}

/// The webhook metrics.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Events not yet delivered, by subscriber.
    pub pending: Family<SubscriberLabels, Gauge>,
    /// Events answered 2xx.
    pub delivered: Family<SubscriberLabels, Counter>,
    /// Attempts that failed (each is retried).
    pub attempts_failed: Family<SubscriberLabels, Counter>,
    /// Events given up on after retrying for [`GIVE_UP`].
    pub failed: Family<SubscriberLabels, Counter>,
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register("railyard_webhook_pending", "Webhook events not yet delivered", self.pending.clone());
        registry.register("railyard_webhook_delivered", "Webhook events delivered", self.delivered.clone());
        registry.register(
            "railyard_webhook_attempts_failed",
            "Webhook delivery attempts that failed (retried)",
            self.attempts_failed.clone(),
        );
        registry.register("railyard_webhook_failed", "Webhook events given up on", self.failed.clone());
    }
}

struct Sub {
    s: Subscriber,
    labels: SubscriberLabels,
    wake: Notify,
    pending: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

/// An event ready to send.
struct Event {
    id: String,
    kind: String,
    commit: String,
    body: Vec<u8>,
}

/// The next piece of work of one subscriber: send `events`, then move `cursor` from `old` to `new`.
struct Step {
    cursor: String,
    old: Option<Oid>,
    new: Oid,
    events: Vec<Event>,
    pending: u64,
}

/// The running webhooks.
pub struct Webhooks {
    subs: Vec<Arc<Sub>>,
    log: Mutex<VecDeque<Value>>,
    metrics: Metrics,
}

impl Webhooks {
    /// Starts one delivery task per subscriber.
    /// Starts one delivery task per subscriber; `durable` is the newest commit the writer has made durable, the
    /// last one whose events may be sent.
    pub fn start(
        subs: Vec<Subscriber>,
        history: Arc<History>,
        branch: &str,
        durable: Arc<Mutex<Option<Oid>>>,
        metrics: Metrics,
    ) -> Arc<Self> {
        let hooks = Arc::new(Self {
            subs: subs
                .into_iter()
                .map(|s| {
                    Arc::new(Sub {
                        labels: SubscriberLabels { subscriber: s.id.clone() },
                        s,
                        wake: Notify::new(),
                        pending: AtomicU64::new(0),
                        delivered: AtomicU64::new(0),
                        failed: AtomicU64::new(0),
                    })
                })
                .collect(),
            log: Mutex::new(VecDeque::new()),
            metrics,
        });
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
        for sub in &hooks.subs {
            tracing::info!(subscriber = %sub.s.id, url = %railyard_export::redact(&sub.s.url), events = ?sub.s.events, "webhook subscriber");
            let (durable, branch) = (durable.clone(), branch.to_owned());
            tokio::spawn(run(hooks.clone(), sub.clone(), history.clone(), branch, durable, client.clone()));
        }
        hooks
    }

    /// Wakes every subscriber (after a commit).
    pub fn wake(&self) {
        for s in &self.subs {
            s.wake.notify_one();
        }
    }

    /// What `GET /api/webhooks/deliveries` shows: each subscriber (never its secret) and the newest deliveries.
    pub fn snapshot(&self, limit: usize, history: &History) -> Value {
        let cursors = history
            .with_index(|_, repo| {
                self.subs
                    .iter()
                    .map(|s| {
                        let read = |stream: &str| {
                            railyard_refs::target(repo, &railyard_refs::webhook_cursor_ref(&s.s.id, stream))
                                .ok()
                                .flatten()
                                .filter(|o| repo.find_commit(*o).is_ok())
                                .map(|o| o.to_string())
                        };
                        (read("written"), read("exported"))
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let subscribers: Vec<Value> = self
            .subs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (w, e) = cursors.get(i).cloned().unwrap_or_default();
                json!({
                    "id": s.s.id,
                    "url": railyard_export::redact(&s.s.url),
                    "events": s.s.events,
                    "pending": s.pending.load(Ordering::Relaxed),
                    "delivered": s.delivered.load(Ordering::Relaxed),
                    "failed": s.failed.load(Ordering::Relaxed),
                    "cursor": {"written": w, "exported": e},
                })
            })
            .collect();
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let deliveries: Vec<Value> = log.iter().rev().take(limit).cloned().collect();
        json!({"subscribers": subscribers, "deliveries": deliveries})
    }

    fn record(&self, entry: Value) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= LOG_SIZE {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// Sends one event until it is answered 2xx, retrying with backoff; gives up after [`GIVE_UP`].
    async fn deliver(&self, client: &reqwest::Client, sub: &Sub, ev: &Event) {
        let mut first_failure: Option<Instant> = None;
        for attempt in 1u32.. {
            let started = Instant::now();
            let sent = client
                .post(&sub.s.url)
                .header("content-type", "application/json")
                .header("user-agent", concat!("railyard/", env!("CARGO_PKG_VERSION")))
                .header("X-Railyard-Signature-256", sub.s.signature(&ev.body))
                .header("X-Railyard-Event", &ev.kind)
                .header("X-Railyard-Delivery", &ev.id)
                .body(ev.body.clone())
                .send()
                .await;
            let (code, error) = match sent {
                Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
                Ok(r) => (Some(r.status().as_u16()), Some(format!("answered {}", r.status()))),
                Err(e) => (None, Some(e.without_url().to_string())),
            };
            let gave_up = error.is_some() && first_failure.is_some_and(|t| t.elapsed() >= GIVE_UP);
            let status = match (&error, gave_up) {
                (None, _) => "delivered",
                (Some(_), false) => "retrying",
                (Some(_), true) => "failed",
            };
            self.record(json!({
                "subscriber": sub.s.id,
                "url": railyard_export::redact(&sub.s.url),
                "event": ev.id,
                "type": ev.kind,
                "commit": ev.commit,
                "attempt": attempt,
                "status": status,
                "http_status": code,
                "error": error,
                "at": crate::routes::now(),
                "duration_ms": started.elapsed().as_millis() as u64,
            }));
            match error {
                None => {
                    sub.delivered.fetch_add(1, Ordering::Relaxed);
                    self.metrics.delivered.get_or_create(&sub.labels).inc();
                    return;
                }
                Some(e) => {
                    self.metrics.attempts_failed.get_or_create(&sub.labels).inc();
                    if gave_up {
                        tracing::error!(subscriber = %sub.s.id, event = %ev.id, error = %e, "webhook event given up after retrying");
                        sub.failed.fetch_add(1, Ordering::Relaxed);
                        self.metrics.failed.get_or_create(&sub.labels).inc();
                        return;
                    }
                    first_failure.get_or_insert_with(Instant::now);
                    let delay = backoff(attempt, rand::random::<f64>());
                    tracing::warn!(subscriber = %sub.s.id, event = %ev.id, attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "webhook delivery failed");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// The delay before retry `attempt` (1-based): doubling from [`BACKOFF_BASE`] to [`BACKOFF_MAX`], scaled by
/// 50–100 % (`jitter` in 0..1) so that subscribers failing together do not retry together.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let full = BACKOFF_BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(BACKOFF_MAX);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

async fn run(
    hooks: Arc<Webhooks>,
    sub: Arc<Sub>,
    history: Arc<History>,
    branch: String,
    durable: Arc<Mutex<Option<Oid>>>,
    client: reqwest::Client,
) {
    loop {
        let (h, s, b) = (history.clone(), sub.clone(), branch.clone());
        let up_to = *durable.lock().unwrap_or_else(|e| e.into_inner());
        let step = tokio::task::spawn_blocking(move || next_step(&h, &s.s, &b, up_to)).await;
        match step {
            Ok(Ok(Some(step))) => {
                set_pending(&hooks, &sub, step.pending);
                for ev in &step.events {
                    hooks.deliver(&client, &sub, ev).await;
                }
                let h = history.clone();
                let moved = tokio::task::spawn_blocking(move || move_cursor(&h, &step)).await;
                match moved {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(subscriber = %sub.s.id, error = %e, "webhook cursor not moved; its events will be sent again");
                        tokio::time::sleep(POLL).await;
                    }
                    Err(e) => tracing::error!(error = %e, "webhook cursor task failed"),
                }
            }
            Ok(Ok(None)) => {
                set_pending(&hooks, &sub, 0);
                tokio::select! {
                    _ = sub.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(subscriber = %sub.s.id, error = %e, "webhook: cannot read the history");
                tokio::time::sleep(POLL * 2).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "webhook task failed");
                tokio::time::sleep(POLL * 2).await;
            }
        }
    }
}

fn set_pending(hooks: &Webhooks, sub: &Sub, n: u64) {
    sub.pending.store(n, Ordering::Relaxed);
    hooks.metrics.pending.get_or_create(&sub.labels).set(n as i64);
}

/// Moves a cursor by compare-and-swap, waiting out a lock a killed process left.
fn move_cursor(history: &History, step: &Step) -> Result<(), crate::history::HistoryError> {
    history.with_index(|_, repo| -> Result<(), git2::Error> {
        for _ in 0..50 {
            match railyard_refs::swap(repo, &step.cursor, step.old, step.new, "railyard: webhook events delivered") {
                Ok(_) => return Ok(()),
                Err(e) if e.code() == git2::ErrorCode::Locked => {
                    if let Some(dir) = repo.path().to_str() {
                        railyard_refs::clear_stale_locks(Path::new(dir), Duration::from_secs(2));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
        Err(git2::Error::from_str("cursor ref stayed locked"))
    })??;
    Ok(())
}

/// A cursor's target, created at the branch head for a new subscriber (at the empty tree, "before the first
/// commit", on an empty branch), so a new subscriber starts now and a restart resumes where it left off.
fn ensure_cursor(repo: &Repository, name: &str, tip: Option<Oid>) -> Result<Oid, git2::Error> {
    if let Some(t) = railyard_refs::target(repo, name)? {
        return Ok(t);
    }
    let start = match tip {
        Some(t) => t,
        None => repo.treebuilder(None)?.write()?,
    };
    railyard_refs::swap(repo, name, None, start, "railyard: webhook subscriber starts here")?;
    Ok(railyard_refs::target(repo, name)?.unwrap_or(start))
}

/// The index position a cursor stands at: -1 before the first commit. A cursor the branch no longer has (the
/// exporter rewrote unpushed commits onto an adopted remote branch) resumes after the newest of its ancestors the
/// branch still has; replayed commits keep the ids of the commits they stand for, so they are not announced twice
/// under new ids.
fn resolve(index: &Index, repo: &Repository, cursor: Oid) -> Result<isize, git2::Error> {
    if let Some(p) = index.position(cursor) {
        return Ok(p as isize);
    }
    let Ok(mut c) = repo.find_commit(cursor) else { return Ok(-1) };
    for _ in 0..1_000_000 {
        let Some(parent) = c.parent_ids().next() else { return Ok(-1) };
        if let Some(p) = index.position(parent) {
            return Ok(p as isize);
        }
        c = repo.find_commit(parent)?;
    }
    Ok(index.len() as isize - 1)
}

/// What a subscriber receives: the history's entry, with the event's `type` (the action, or `exported`) and whether
/// the commit is on the remote.
#[derive(serde::Serialize)]
struct Payload<'a> {
    #[serde(flatten)]
    entry: railyard_wire::HistoryEntry,
    #[serde(rename = "type")]
    kind: &'a str,
    exported: bool,
}

fn event(index: &Index, requests: &mut Requests<'_>, position: usize, n: u32, exported: bool) -> Option<Event> {
    let mut shown = index.entry(requests, position, n)?;
    let kind = if exported { "exported".to_owned() } else { shown.action.clone() };
    if exported {
        shown.id = format!("{}:exported", index.entry_id(position, n));
    }
    let id = shown.id.clone();
    let commit = shown.commit.clone();
    let payload = Payload { entry: shown, kind: &kind, exported };
    Some(Event { id, commit, body: serde_json::to_vec(&payload).unwrap_or_default(), kind })
}

/// The events of the record at `position` this subscriber takes.
fn events_at(index: &Index, repo: &Repository, sub: &Subscriber, position: usize, exported: bool) -> Vec<Event> {
    let mut requests = Requests::new(repo);
    index
        .actions(position)
        .filter(|(_, action)| if exported { sub.wants_exported_of(action) } else { sub.wants(action) })
        .filter_map(|(n, _)| event(index, &mut requests, position, n, exported))
        .collect()
}

fn count(index: &Index, sub: &Subscriber, from: isize, to: isize, exported: bool) -> u64 {
    ((from + 1).max(0)..=to)
        .map(|p| {
            index
                .actions(p as usize)
                .filter(|(_, action)| if exported { sub.wants_exported_of(action) } else { sub.wants(action) })
                .count() as u64
        })
        .sum()
}

/// Commits a step walks over at most when none of them has an event for the subscriber.
const SCAN: isize = 10_000;

/// The next events for `sub`, among the commits up to `durable` (None: none yet).
fn next_step(
    history: &History,
    sub: &Subscriber,
    branch: &str,
    durable: Option<Oid>,
) -> Result<Option<Step>, crate::history::HistoryError> {
    history
        .with_index(|index, repo| -> Result<Option<Step>, git2::Error> {
            // Only what the writer made durable: a commit on the branch but not yet synced is not announced.
            let head = match durable {
                Some(d) => resolve(index, repo, d)?.min(index.len() as isize - 1),
                None => -1,
            };
            let written = railyard_refs::webhook_cursor_ref(&sub.id, "written");
            let w = ensure_cursor(repo, &written, index.tip())?;
            let wpos = resolve(index, repo, w)?;
            let mut pending = count(index, sub, wpos, head, false);
            let mut exported_stream = None;
            if sub.wants_exported() {
                let name = railyard_refs::webhook_cursor_ref(&sub.id, "exported");
                let e = ensure_cursor(repo, &name, index.tip())?;
                let epos = resolve(index, repo, e)?;
                let xpos = match railyard_refs::target(repo, &railyard_refs::exported_ref(branch))? {
                    Some(x) => resolve(index, repo, x)?,
                    None => -1,
                };
                // An exported event follows the commit's own events.
                let limit = xpos.min(wpos);
                pending += count(index, sub, epos, limit, true);
                exported_stream = Some((name, e, epos, limit));
            }
            let streams = [Some((written, w, wpos, head, false))]
                .into_iter()
                .chain(exported_stream.map(|(n, e, p, l)| Some((n, e, p, l, true))))
                .flatten();
            for (cursor, old, pos, limit, exported) in streams {
                if pos >= limit {
                    continue;
                }
                let end = limit.min(pos + SCAN);
                let mut k = pos + 1;
                while k <= end {
                    let events = events_at(index, repo, sub, k as usize, exported);
                    if !events.is_empty() {
                        return Ok(Some(Step {
                            cursor,
                            old: Some(old),
                            new: index.commit_at(k as usize),
                            events,
                            pending,
                        }));
                    }
                    k += 1;
                }
                // Nothing for this subscriber up to `end`: move the cursor over it at once.
                return Ok(Some(Step {
                    cursor,
                    old: Some(old),
                    new: index.commit_at(end as usize),
                    events: Vec::new(),
                    pending,
                }));
            }
            Ok(None)
        })?
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_checked_and_the_secret_never_shows() {
        let ok =
            parse("- url: https://hooks.example.com/r\n  secret: 0123456789abcdef\n  events: [deploy, exported]\n")
                .unwrap();
        assert_eq!(ok.len(), 1);
        assert!(ok[0].wants("deploy") && !ok[0].wants("lock"));
        assert!(ok[0].wants_exported_of("deploy") && !ok[0].wants_exported_of("lock"));
        assert!(!format!("{:?}", ok[0]).contains("0123456789abcdef"));
        let only = parse("- url: http://h/x\n  secret: 0123456789abcdef\n  events: [exported]\n").unwrap();
        assert!(only[0].wants_exported_of("lock") && !only[0].wants("lock"));
        for (bad, says) in [
            ("- url: ftp://h/x\n  secret: 0123456789abcdef\n  events: ['*']\n", "http:// or https://"),
            ("- url: http://h/x\n  secret: short-secret\n  events: ['*']\n", "at least 16 bytes"),
            ("- url: http://h/x\n  secret: 0123456789abcdef\n  events: []\n", "at least one kind"),
            ("- url: http://h/x\n  secret: 0123456789abcdef\n  events: [Deploy]\n", "not an action"),
            ("- url: http://h/x\n  secret: 0123456789abcdef\n  events: ['*']\n  extra: 1\n", "unknown field"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("0123456789abcdef") && !e.contains("short-secret"), "{e}");
        }
    }

    #[test]
    fn signatures_are_github_style_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_retries_for_a_day() {
        assert_eq!(backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(30, 1.0), BACKOFF_MAX);
        assert!(GIVE_UP >= Duration::from_secs(24 * 3600));
    }
}
