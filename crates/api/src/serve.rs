//! The HTTP listener: hyper under the router, with the limits a server facing untrusted clients needs and that
//! `axum::serve` does not set. A client gets `--header-read-timeout-seconds` to send a request's headers, an idle
//! keep-alive connection is closed after `--idle-timeout-seconds`, and at most `--max-connections` connections are
//! held (fewer when the process's file limit is lower, so the exporter and the repo keep descriptors of their own).
//! At the limit, an idle connection makes room for the new one (one that never sent a whole request first, then the
//! one idle the longest): a request in progress is never cut, a client that was answered keeps its keep-alive
//! connection while slow or idle sockets remain, and a probe still gets in past a crowd of them. Running out of
//! descriptors below that limit (the file limit lowered on the running process) lowers the cap to what fits.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

/// The limits of the listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Request bodies up to this size are read in full before the router sees the request (see [`read_body`]).
    pub read_ahead_bytes: usize,
}

/// Bodies this small are read before the handler runs, whether it reads them or not.
pub const READ_AHEAD_BYTES: usize = 64 * 1024;

/// File descriptors kept free of connections: the repo and its packs, the exporter's remote, logs.
const RESERVED_FDS: u64 = 128;

/// How long, and how much, a connection closed by the server reads what its client is still sending: closing with
/// unread data makes the kernel reset the connection, and a client that writes its whole body before reading the
/// answer (Python's urllib and requests, many CI scripts) would see a broken pipe instead of the 413.
/// Draining stops at the first pause this long (an idle client is closed at once), or after [`DRAIN_TIME`] or
/// [`DRAIN_BYTES`] in all.
const DRAIN_TIME: Duration = Duration::from_secs(10);
const DRAIN_PAUSE: Duration = Duration::from_millis(300);
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

impl Limits {
    /// `max_connections`, lowered to what the process's file limit (raised to its hard limit first) leaves beside
    /// [`RESERVED_FDS`].
    pub fn within_file_limit(mut self) -> Self {
        if let Some(limit) = open_file_limit() {
            let room = room_beside_reserve(limit);
            if room < self.max_connections {
                tracing::warn!(
                    max_connections = self.max_connections,
                    open_file_limit = limit,
                    using = room,
                    "--max-connections lowered to fit the open-file limit"
                );
                self.max_connections = room;
            }
        }
        self
    }
}

/// The connections that fit in a file limit beside [`RESERVED_FDS`].
fn room_beside_reserve(limit: u64) -> usize {
    limit.saturating_sub(RESERVED_FDS).max(16) as usize
}

/// The process's open-file limit as it is now.
#[cfg(target_os = "linux")]
fn current_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(target_os = "linux"))]
fn current_file_limit() -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    // Raised to the hard limit first, as Go's runtime does: the soft one (often 1,024) is meant for programs that
    // use select(2), and the packs libgit2 holds open share it with the connections.
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "could not raise the open-file limit to its hard limit");
        }
    }
    current_file_limit()
}

#[cfg(not(target_os = "linux"))]
fn open_file_limit() -> Option<u64> {
    None
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Milliseconds since `epoch` of its last read or write.
    last_active: AtomicU64,
    /// Requests being answered on it.
    in_flight: AtomicUsize,
    /// Closes it at once (it was evicted to make room).
    evict: Notify,
    /// Set once a request on it has been answered: a client that got an answer is evicted only after every
    /// connection that never sent a whole request (a slow or idle client holding a socket).
    answered: AtomicBool,
    /// Set when it is chosen for eviction, so it is neither chosen again nor counted while its task winds down.
    evicted: AtomicBool,
}

struct Tracker {
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// What making room for one more connection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// Fewer than the cap are open, not counting those being evicted.
    Free,
    /// The connection idle the longest was told to close.
    Evicted,
    /// Every open connection is answering a request.
    Busy,
}

impl Tracker {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Connections open and not being evicted, and those being evicted (their descriptors are not free yet).
    fn counts(&self) -> (usize, usize) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let evicting = conns.values().filter(|c| c.evicted.load(Ordering::Acquire)).count();
        (conns.len() - evicting, evicting)
    }

    /// Makes room for one more connection under `cap`, evicting idle ones if needed: first those that never had a
    /// request answered, then those idle the longest.
    fn make_room(&self, cap: usize) -> Room {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let live: Vec<&Arc<Conn>> = conns.values().filter(|c| !c.evicted.load(Ordering::Acquire)).collect();
        if live.len() < cap {
            return Room::Free;
        }
        let excess = live.len() + 1 - cap;
        // Each connection's order key is read once, before sorting: its tasks update it meanwhile, and a sort whose
        // keys change under it panics (`user-provided comparison function does not correctly implement a total
        // order`), which took the accept loop, and so the server, down.
        let mut idle: Vec<((bool, u64), &Arc<Conn>)> = live
            .into_iter()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .map(|c| ((c.answered.load(Ordering::Acquire), c.last_active.load(Ordering::Acquire)), c))
            .collect();
        idle.sort_unstable_by_key(|(key, _)| *key);
        for (_, c) in idle.iter().take(excess) {
            c.evicted.store(true, Ordering::Release);
            c.evict.notify_one();
        }
        if idle.len() >= excess {
            Room::Evicted
        } else {
            Room::Busy
        }
    }
}

/// How many connections the accept loop lets in: `--max-connections` fitted to the file limit. When accepting
/// fails for want of descriptors (the limit was lowered on the running process, or the repo's packs took more), the
/// cap is fitted to the limit again and kept [`EMFILE_MARGIN`] below the connections then open, and enough idle
/// connections are closed to get under it, so the writer and the exporter can open files; a minute after the last
/// such failure it is fitted to the limit again.
struct Cap {
    max: usize,
    now: usize,
    lowered_at: Option<Instant>,
}

/// The fewest connections the cap is lowered to: enough for a probe and a few clients.
const MIN_CAP: usize = 8;
/// Descriptors given back to the repo, below the connections open, when accepting runs out of them.
const EMFILE_MARGIN: usize = 32;
/// How long after the last failure for want of descriptors the cap is fitted to the file limit again.
const CAP_RESTORE: Duration = Duration::from_secs(60);

impl Cap {
    fn new(max: usize) -> Self {
        Cap { max, now: max, lowered_at: None }
    }

    /// `--max-connections`, or what the file limit leaves beside [`RESERVED_FDS`] if that is less.
    fn fitted(&self) -> usize {
        match current_file_limit() {
            Some(limit) => self.max.min(room_beside_reserve(limit)),
            None => self.max,
        }
    }

    fn current(&mut self) -> usize {
        if self.lowered_at.is_some_and(|at| at.elapsed() >= CAP_RESTORE) {
            self.now = self.fitted();
            self.lowered_at = None;
            tracing::info!(
                max_connections = self.now,
                "no descriptor shortage for a minute; the connection cap is fitted to the file limit again"
            );
        }
        self.now
    }

    /// Out of descriptors with `live` connections open.
    fn lower(&mut self, live: usize) {
        let lowered = self.fitted().min(live.saturating_sub(EMFILE_MARGIN)).min(self.now).max(MIN_CAP);
        if lowered < self.now {
            tracing::warn!(
                open = live,
                open_file_limit = current_file_limit(),
                using = lowered,
                "out of file descriptors; holding fewer connections, the idlest make room for new ones"
            );
        }
        self.now = lowered;
        self.lowered_at = Some(Instant::now());
    }
}

fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error())
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in progress finish (up to 30 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let tracker = Arc::new(Tracker { epoch: Instant::now(), conns: Mutex::new(HashMap::new()) });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut next_id = 0u64;
    let mut refused = 0u64;
    let mut cap = Cap::new(limits.max_connections);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if out_of_descriptors(&e) => {
                    // The connection stays in the listen queue; free a descriptor for it instead of waiting for a
                    // slow or idle client's timeout to do so.
                    let (live, evicting) = tracker.counts();
                    let room = if evicting > 0 {
                        Room::Evicted
                    } else {
                        cap.lower(live);
                        tracker.make_room(cap.now)
                    };
                    let pause = if room == Room::Busy { 100 } else { 2 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if tracker.make_room(cap.current()) == Room::Busy {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(peer = %peer, refused, max_connections = cap.now, "every connection is busy; refusing a new one");
            }
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let conn = Arc::new(Conn {
            last_active: AtomicU64::new(tracker.now_ms()),
            in_flight: AtomicUsize::new(0),
            evict: Notify::new(),
            answered: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
        });
        tracker.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(next_id, conn.clone());
        let (tracker, app, stop) = (tracker.clone(), app.clone(), stop_rx.clone());
        tokio::spawn(async move {
            serve_connection(stream, app, conn, &tracker, limits, stop).await;
            tracker.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&next_id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tracker.conns.lock().unwrap_or_else(|e| e.into_inner()).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    conn: Arc<Conn>,
    tracker: &Arc<Tracker>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched { inner: stream, conn: conn.clone(), tracker: tracker.clone(), drain: None });
    let svc_conn = conn.clone();
    let svc_tracker = tracker.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (conn, tracker) = (svc_conn.clone(), svc_tracker.clone());
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        let app = app.clone();
        async move {
            let resp = match read_body(req, limits).await {
                Ok(req) => app.oneshot(req).await,
                Err(refused) => Ok(refused),
            };
            conn.last_active.store(tracker.now_ms(), Ordering::Release);
            conn.answered.store(true, Ordering::Release);
            conn.in_flight.fetch_sub(1, Ordering::AcqRel);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let served = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(served);
    let idle_ms = limits.idle_timeout.as_millis() as u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(limits.idle_timeout));
    let mut stopping = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = conn.evict.notified() => {
                tracing::debug!("connection evicted to make room for a new one");
                return;
            }
            _ = tick.tick() => {
                let idle = tracker.now_ms().saturating_sub(conn.last_active.load(Ordering::Acquire));
                if conn.in_flight.load(Ordering::Acquire) == 0 && idle >= idle_ms {
                    tracing::debug!(idle_ms = idle, "closing an idle connection");
                    return;
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The request with its body read in full when it declares a length of at most `limits.read_ahead_bytes`.
///
/// A handler that answers without reading the body (an empty `{}` on a POST that takes its arguments from the
/// query, a refusal before the body matters) would otherwise leave hyper with unread bytes when the answer is
/// written; if they have not arrived by then, hyper closes the connection instead of keeping it alive, and a client
/// that already sent its next request on it (python-requests, urllib3) sees "Remote end closed connection without
/// response". A body that does not arrive within the header-read timeout is answered 408.
async fn read_body(
    req: hyper::Request<Incoming>,
    limits: Limits,
) -> Result<axum::extract::Request, axum::response::Response> {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let small = declared.is_some_and(|n| n > 0 && n <= limits.read_ahead_bytes);
    if !small {
        return Ok(req.map(axum::body::Body::new));
    }
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(axum::body::Body::new(body), limits.read_ahead_bytes);
    match tokio::time::timeout(limits.header_read_timeout, read).await {
        Ok(Ok(bytes)) => Ok(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))),
        Ok(Err(e)) => Err(crate::error::ApiError::new(
            hyper::StatusCode::BAD_REQUEST,
            "body_unreadable",
            format!("the request body could not be read: {e}"),
        )
        .into_response()),
        Err(_) => Err(crate::error::ApiError::new(
            hyper::StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive within {} s of its headers", limits.header_read_timeout.as_secs()),
        )
        .into_response()),
    }
}

/// The TCP stream of one connection: records activity for the idle timeout, and drains what the client still
/// sends before the server closes it.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
    tracker: Arc<Tracker>,
    drain: Option<Drain>,
}

/// The state of draining a connection before it is closed.
struct Drain {
    until: Instant,
    pause: Pin<Box<tokio::time::Sleep>>,
    bytes: usize,
}

impl Watched {
    fn touch(&self) {
        self.conn.last_active.store(self.tracker.now_ms(), Ordering::Release);
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let drain = this.drain.get_or_insert_with(|| Drain {
            until: Instant::now() + DRAIN_TIME,
            pause: Box::pin(tokio::time::sleep(DRAIN_PAUSE)),
            bytes: 0,
        });
        let mut scratch = [0u8; 16 * 1024];
        while drain.bytes < DRAIN_BYTES && Instant::now() < drain.until && drain.pause.as_mut().poll(cx).is_pending() {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                Poll::Ready(Ok(())) => {
                    drain.bytes += buf.filled().len();
                    drain.pause.as_mut().reset(tokio::time::Instant::now() + DRAIN_PAUSE);
                }
                Poll::Ready(Err(_)) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        drain.bytes = DRAIN_BYTES;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(conns: &[(bool, u64, usize)]) -> Tracker {
        let map = conns
            .iter()
            .enumerate()
            .map(|(id, &(answered, last_active, in_flight))| {
                let conn = Conn {
                    last_active: AtomicU64::new(last_active),
                    in_flight: AtomicUsize::new(in_flight),
                    evict: Notify::new(),
                    answered: AtomicBool::new(answered),
                    evicted: AtomicBool::new(false),
                };
                (id as u64, Arc::new(conn))
            })
            .collect();
        Tracker { epoch: Instant::now(), conns: Mutex::new(map) }
    }

    fn evicted(t: &Tracker) -> Vec<u64> {
        let conns = t.conns.lock().unwrap();
        let mut ids: Vec<u64> =
            conns.iter().filter(|(_, c)| c.evicted.load(Ordering::Acquire)).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn sockets_that_never_sent_a_request_make_room_before_answered_clients() {
        // 0: answered, idle the longest; 1, 2: never sent a whole request; 3: answering a request now.
        let t = tracker(&[(true, 1, 0), (false, 50, 0), (false, 40, 0), (false, 0, 1)]);
        assert_eq!(t.make_room(5), Room::Free);
        assert_eq!(t.make_room(4), Room::Evicted);
        assert_eq!(evicted(&t), vec![2], "the idlest socket that never sent a request goes first");
        assert_eq!(t.counts(), (3, 1));
        // Room for one more under a cap of 3: the other unanswered socket goes before the answered client.
        assert_eq!(t.make_room(3), Room::Evicted);
        assert_eq!(evicted(&t), vec![1, 2]);
        assert_eq!(t.make_room(2), Room::Evicted);
        assert_eq!(evicted(&t), vec![0, 1, 2]);
        // Only the request in progress is left, and it is never cut.
        assert_eq!(t.make_room(1), Room::Busy);
        assert_eq!(evicted(&t), vec![0, 1, 2]);
    }

    /// Connections' tasks update their activity while the accept loop picks whom to evict: the choice must not
    /// panic (sorting on keys read during the sort did, "does not correctly implement a total order", and took
    /// the server down under a low file limit in the limits suite).
    #[test]
    fn making_room_while_connections_stay_active_does_not_panic() {
        let conns: Vec<(bool, u64, usize)> = (0..200).map(|i| (i % 3 == 0, i as u64, 0)).collect();
        let t = Arc::new(tracker(&conns));
        let stop = Arc::new(AtomicBool::new(false));
        let busy = {
            // As connection tasks do: through their own handles, without the tracker's lock.
            let all: Vec<Arc<Conn>> = t.conns.lock().unwrap().values().cloned().collect();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for c in &all {
                        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        c.last_active.store(n >> 40, Ordering::Release);
                    }
                }
            })
        };
        for _ in 0..2000 {
            for c in t.conns.lock().unwrap().values() {
                c.evicted.store(false, Ordering::Release);
            }
            assert_eq!(t.make_room(150), Room::Evicted);
        }
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
    }

    #[test]
    fn the_cap_keeps_a_margin_below_the_connections_open_and_never_drops_under_its_floor() {
        let mut cap = Cap::new(1024);
        cap.lower(200);
        assert!(cap.now <= 200 - EMFILE_MARGIN, "{}", cap.now);
        let once = cap.now;
        cap.lower(once + EMFILE_MARGIN + 100);
        assert_eq!(cap.now, once, "a later shortage never raises it");
        cap.lower(3);
        assert_eq!(cap.now, MIN_CAP);
    }
}
