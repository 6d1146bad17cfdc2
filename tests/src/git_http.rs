//! A smart-HTTP git remote for the end-to-end tests: a tiny HTTP/1.1 server on 127.0.0.1 that checks
//! `Authorization: Basic ...` and hands every authenticated request to `git http-backend` (CGI), serving the
//! bare repos under a root directory (the harness's `dir/remote.git`).
//!
//! It speaks plain HTTP ([`GitHttpServer::start`]) or whatever a caller wraps each accepted connection in
//! ([`GitHttpServer::start_wrapped`], e.g. TLS), so the https tests reuse it without this crate depending on a
//! TLS library.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let text = text.strip_suffix("==").or_else(|| text.strip_suffix('=')).unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        acc = (acc << 6) | B64.iter().position(|&x| x == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits are padding and must be zero; 6 leftover bits mean a truncated quantum.
    (bits < 6 && acc == 0).then_some(out)
}

/// One accepted connection as the server reads and writes it: a plain TCP stream, or one wrapped (TLS).
pub trait Connection: Read + Write + Send {
    /// Ends the answer: flushes, closes the session (a TLS `close_notify`) and shuts the write side down.
    fn close(&mut self);
}

impl Connection for TcpStream {
    fn close(&mut self) {
        let _ = self.flush();
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// Turns an accepted TCP stream into the connection the server speaks HTTP over.
pub type Wrap = dyn Fn(TcpStream) -> io::Result<Box<dyn Connection>> + Send + Sync;

/// What the server saw, for the tests to assert on.
#[derive(Default)]
pub struct Seen {
    /// Accepted TCP connections (the drop's wake-up excepted).
    pub connections: AtomicUsize,
    /// Requests read (a connection the client hung up on before sending one, e.g. in TLS, is not one).
    pub requests: AtomicUsize,
    /// Answered 401 (no or wrong credentials).
    pub unauthorized: AtomicUsize,
    /// Passed the credential check (and went to `git http-backend`).
    pub authorized: AtomicUsize,
    /// Authenticated `POST .../git-receive-pack` that http-backend answered 200.
    pub pushes: AtomicUsize,
    /// Request bodies sent with `Transfer-Encoding: chunked`.
    pub chunked: AtomicUsize,
    /// `METHOD TARGET -> STATUS` of every request, in arrival order (for failure messages).
    pub log: Mutex<Vec<String>>,
    /// Connections that failed before or while being answered (a refused TLS handshake, a reset), with why.
    pub errors: Mutex<Vec<String>>,
}

/// A smart-HTTP git server on 127.0.0.1 requiring Basic auth; serves the repos under `root`. Stops on drop.
pub struct GitHttpServer {
    pub port: u16,
    scheme: &'static str,
    seen: Arc<Seen>,
    /// The user and password it accepts.
    accepts: Arc<Mutex<(String, String)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GitHttpServer {
    /// A plain `http://` server.
    pub fn start(root: &Path, user: &str, password: &str) -> Self {
        Self::start_wrapped(root, user, password, "http", Arc::new(|s| Ok(Box::new(s) as Box<dyn Connection>)))
    }

    /// A server whose connections are wrapped by `wrap` (e.g. in TLS), announced with `scheme` in [`Self::url`].
    pub fn start_wrapped(root: &Path, user: &str, password: &str, scheme: &'static str, wrap: Arc<Wrap>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the git http server");
        let port = listener.local_addr().expect("local addr").port();
        let seen = Arc::new(Seen::default());
        let accepts = Arc::new(Mutex::new((user.to_owned(), password.to_owned())));
        let stop = Arc::new(AtomicBool::new(false));
        let (root, seen2, accepts2, stop2) = (root.to_path_buf(), seen.clone(), accepts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                seen2.connections.fetch_add(1, SeqCst);
                let (root, seen, accepts, wrap) = (root.clone(), seen2.clone(), accepts2.clone(), wrap.clone());
                std::thread::spawn(move || {
                    let served = conn
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .and_then(|()| wrap(conn))
                        .and_then(|conn| handle(conn, &root, &seen, &accepts));
                    if let Err(e) = served {
                        eprintln!("git http server: {e}");
                        seen.errors.lock().unwrap().push(e.to_string());
                    }
                });
            }
        });
        Self { port, scheme, seen, accepts, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/remote.git", self.scheme, self.port)
    }

    /// From now on accept this password (a rotation on the server side).
    pub fn set_password(&self, password: &str) {
        self.accepts.lock().unwrap().1 = password.to_owned();
    }

    pub fn count(&self, what: fn(&Seen) -> &AtomicUsize) -> usize {
        what(&self.seen).load(SeqCst)
    }

    /// Every request answered so far, one `METHOD TARGET STATUS` line each.
    pub fn log(&self) -> String {
        self.seen.log.lock().unwrap().join("\n")
    }

    /// Why connections failed so far, in arrival order.
    pub fn errors(&self) -> Vec<String> {
        self.seen.errors.lock().unwrap().clone()
    }

    /// Waits until an authenticated push was answered: http-backend moves the remote branch before the answer
    /// is written and counted, so the remote's head can be seen a moment before the count.
    pub fn wait_for_push(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.count(|s| &s.pushes) == 0 {
            assert!(Instant::now() < deadline, "no authenticated receive-pack POST:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts the remote asked for credentials (401) before it took authenticated requests, and that a push
    /// went through with them.
    pub fn assert_authenticated_push(&self) {
        self.wait_for_push();
        let log = self.log();
        assert!(self.count(|s| &s.unauthorized) >= 1, "the server never asked for credentials:\n{log}");
        assert!(self.count(|s| &s.authorized) >= 2, "too few authenticated requests:\n{log}");
        assert!(self.count(|s| &s.pushes) >= 1, "no authenticated receive-pack POST:\n{log}");
        let first_401 = log.lines().position(|l| l.ends_with(" 401"));
        let first_ok = log.lines().position(|l| !l.ends_with(" 401"));
        assert!(first_401 < first_ok, "the first request was not challenged:\n{log}");
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request per connection (`Connection: close`).
fn handle(conn: Box<dyn Connection>, root: &Path, seen: &Seen, accepts: &Mutex<(String, String)>) -> io::Result<()> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(()); // the wake-up connection of Drop, or a probe
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    seen.requests.fetch_add(1, SeqCst);
    let header = |name: &str| headers.get(name).map(String::as_str).unwrap_or_default();

    let user = basic_auth_user(header("authorization"), accepts);
    let expects_continue = header("expect").eq_ignore_ascii_case("100-continue");
    if user.is_some() && expects_continue {
        r.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        r.get_mut().flush()?;
    }
    // Read the whole body before answering (closing with unread input would reset the connection), unless
    // the client waits for `100 Continue` before sending it.
    let body = if user.is_none() && expects_continue {
        Vec::new()
    } else if header("transfer-encoding").to_ascii_lowercase().contains("chunked") {
        seen.chunked.fetch_add(1, SeqCst);
        read_chunked(&mut r)?
    } else {
        let len: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        body
    };
    let out = r.get_mut();

    let Some(user) = user else {
        seen.unauthorized.fetch_add(1, SeqCst);
        seen.log.lock().unwrap().push(format!("{method} {target} 401"));
        let text = "authentication required\n";
        write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )?;
        out.close();
        return Ok(());
    };
    seen.authorized.fetch_add(1, SeqCst);

    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !header("content-encoding").is_empty() {
        cmd.env("HTTP_CONTENT_ENCODING", header("content-encoding"));
    }
    if !header("git-protocol").is_empty() {
        cmd.env("HTTP_GIT_PROTOCOL", header("git-protocol"));
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    // Feed the body while reading the answer, so neither pipe fills up and blocks the other.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let mut cgi = Vec::new();
    child.stdout.take().expect("stdout").read_to_end(&mut cgi)?;
    let _ = feeder.join();
    child.wait()?;

    // CGI answer: header lines (`Status: 403 Forbidden` among them), a blank line, the body.
    let mut status = "200 OK".to_owned();
    let mut head = String::new();
    let mut pos = 0;
    loop {
        let Some(end) = cgi[pos..].iter().position(|&b| b == b'\n').map(|i| pos + i) else {
            status = "502 Bad Gateway".to_owned();
            head.clear();
            pos = cgi.len();
            break;
        };
        let l = String::from_utf8_lossy(&cgi[pos..end]).trim_end_matches('\r').to_owned();
        pos = end + 1;
        if l.is_empty() {
            break;
        }
        match l.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            Some((k, _)) if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("connection") => {}
            Some((k, v)) => head.push_str(&format!("{}: {}\r\n", k.trim(), v.trim())),
            None => {}
        }
    }
    let body = &cgi[pos..];
    if method == "POST" && path.ends_with("/git-receive-pack") && status.starts_with("200") {
        seen.pushes.fetch_add(1, SeqCst);
    }
    seen.log.lock().unwrap().push(format!("{method} {target} {}", status.split(' ').next().unwrap_or_default()));
    write!(out, "HTTP/1.1 {status}\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    out.write_all(body)?;
    out.close();
    Ok(())
}

/// The user of a valid `Authorization: Basic` header carrying the accepted user and password.
fn basic_auth_user(authorization: &str, accepts: &Mutex<(String, String)>) -> Option<String> {
    let (scheme, token) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(token)?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    let accepts = accepts.lock().unwrap();
    (user == accepts.0 && password == accepts.1).then(|| user.to_owned())
}

/// A `Transfer-Encoding: chunked` body (chunk extensions and trailers ignored).
fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body cut short"));
        }
        let size = line.trim().split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}
