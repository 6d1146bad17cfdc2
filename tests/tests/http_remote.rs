//! A smart-HTTP remote behind HTTP Basic auth: the exporter authenticates with the credentials file, with
//! `--git-username` + `RAILYARD_GIT_PASSWORD`, or with the user info in the URL; a wrong password is an export
//! error that is retried (writes stay durable locally) and never lost; no secret ever shows in the logs.
//!
//! The remote is a tiny HTTP/1.1 server in this file that checks `Authorization: Basic ...` and hands every
//! authenticated request to `git http-backend` (CGI), serving the harness's `dir/remote.git`.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use railyard_tests::Server;
use serde_json::{json, Value};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
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

fn base64_decode(text: &str) -> Option<Vec<u8>> {
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

/// What the server saw, for the tests to assert on.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    /// Answered 401 (no or wrong credentials).
    unauthorized: AtomicUsize,
    /// Passed the credential check (and went to `git http-backend`).
    authorized: AtomicUsize,
    /// Authenticated `POST .../git-receive-pack` that http-backend answered 200.
    pushes: AtomicUsize,
    /// Request bodies sent with `Transfer-Encoding: chunked`.
    chunked: AtomicUsize,
    /// `METHOD TARGET -> STATUS` of every request, in arrival order (for failure messages).
    log: Mutex<Vec<String>>,
}

/// A smart-HTTP git server on 127.0.0.1 requiring Basic auth; serves the repos under `root`. Stops on drop.
struct GitHttpServer {
    port: u16,
    seen: Arc<Seen>,
    /// The user and password it accepts.
    accepts: Arc<Mutex<(String, String)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GitHttpServer {
    fn start(root: &Path, user: &str, password: &str) -> Self {
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
                let (root, seen, accepts) = (root.clone(), seen2.clone(), accepts2.clone());
                std::thread::spawn(move || {
                    if let Err(e) = handle(conn, &root, &seen, &accepts) {
                        eprintln!("git http server: {e}");
                    }
                });
            }
        });
        Self { port, seen, accepts, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/remote.git", self.port)
    }

    /// From now on accept this password (a rotation on the server side).
    fn set_password(&self, password: &str) {
        self.accepts.lock().unwrap().1 = password.to_owned();
    }

    fn count(&self, what: fn(&Seen) -> &AtomicUsize) -> usize {
        what(&self.seen).load(SeqCst)
    }

    fn log(&self) -> String {
        self.seen.log.lock().unwrap().join("\n")
    }

    /// Waits until an authenticated push was answered: http-backend moves the remote branch before the answer
    /// is written and counted, so the remote's head can be seen a moment before the count.
    fn wait_for_push(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.count(|s| &s.pushes) == 0 {
            assert!(Instant::now() < deadline, "no authenticated receive-pack POST:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts the remote asked for credentials (401) before it took authenticated requests, and that a push
    /// went through with them.
    fn assert_authenticated_push(&self) {
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
fn handle(stream: TcpStream, root: &Path, seen: &Seen, accepts: &Mutex<(String, String)>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut out = stream.try_clone()?;
    let mut r = BufReader::new(stream);
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
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
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
        out.flush()?;
        let _ = out.shutdown(Shutdown::Write);
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
    out.flush()?;
    let _ = out.shutdown(Shutdown::Write);
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

/// A temp dir with an empty bare `remote.git` (the API only creates local-path remotes) served over HTTP.
fn remote_behind_basic_auth(user: &str, password: &str) -> (tempfile::TempDir, GitHttpServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    git2::Repository::init_bare(dir.path().join("remote.git")).expect("bare remote");
    let http = GitHttpServer::start(dir.path(), user, password);
    (dir, http)
}

/// A credentials file (git's credential store format) in `dir`.
fn credentials_file(dir: &Path, line: &str) -> PathBuf {
    let path = dir.join("git-credentials");
    std::fs::write(&path, format!("# the manifest remote\n{line}\n")).expect("write credentials");
    path
}

/// Creates `dev` and releases `web` there; returns the release's commit.
fn create_env_and_release(s: &Server) -> String {
    s.create_env("dev", json!({"latest": true}), None);
    let r = s.release("web", None, &[("dev", "kind: Deployment\n")]);
    r.assert_status(201);
    r.commit().expect("release commit")
}

fn assert_release_on_remote(s: &Server, commit: &str) {
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(
        s.remote_file("environments/dev/applications/web/manifests/manifests.yaml").as_deref(),
        Some("kind: Deployment\n")
    );
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("1"));
    assert_eq!(s.remote_commit_count(), 2);
    s.assert_remote_layout();
}

/// Asserts `secret` shows in none of the logs, `/readyz` and `/metrics`.
fn assert_secret_hidden(s: &Server, secret: &str) {
    for line in s.logs() {
        assert!(!line.contains(secret), "secret in the logs: {line}");
    }
    let ready = s.get("/readyz").text;
    assert!(!ready.contains(secret), "secret in /readyz: {ready}");
    let metrics = s.get("/metrics").text;
    assert!(!metrics.contains(secret), "secret in /metrics");
    // Nor in any plain file of the local repo (config, the exporter's status file, ...).
    let mut dirs = vec![s.repo_dir.clone()];
    while let Some(d) = dirs.pop() {
        // Entries may come and go meanwhile (ref locks, the status file's temp file): skip what vanished.
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "secret in {}", path.display());
            }
        }
    }
}

/// Polls `/readyz` (asserting 200 and `ready: true` each time) until `pred` holds on `export`.
fn wait_readyz(s: &Server, limit: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let r = s.get("/readyz");
        r.assert_status(200);
        assert_eq!(r.json["ready"], true, "{}", r.text);
        if pred(&r.json["export"]) {
            return r.json;
        }
        assert!(Instant::now() < deadline, "{what}: /readyz is {}", r.text);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn base64_codec_matches_the_rfc_4648_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        ("alice:s3cret", "YWxpY2U6czNjcmV0"),
    ] {
        assert_eq!(base64_encode(plain.as_bytes()), encoded);
        assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
    }
    assert_eq!(base64_decode("Zm9vY"), None);
    assert_eq!(base64_decode("Zm9v!"), None);
}

#[test]
fn pushes_to_an_http_remote_with_credentials_from_the_credentials_file() {
    let (dir, http) = remote_behind_basic_auth("alice", "s3cret");
    let creds = credentials_file(dir.path(), &format!("http://alice:s3cret@127.0.0.1:{}", http.port));
    let s = Server::start_in_with_git_url(dir, http.url(), &["--git-credentials", creds.to_str().unwrap()]);

    let commit = create_env_and_release(&s);
    assert_release_on_remote(&s, &commit);
    http.assert_authenticated_push();
    wait_readyz(&s, Duration::from_secs(10), "export caught up", |e| {
        e["last_error"].is_null() && e["pending_commits"] == 0 && e["exported_commit"] == commit.as_str()
    });
    assert_secret_hidden(&s, "s3cret");
}

#[test]
fn password_from_the_environment_and_user_flag() {
    let (dir, http) = remote_behind_basic_auth("alice", "env-t0ken");
    // The harness passes its own environment on to railyard-api. Under nextest every test is its own process;
    // under plain `cargo test` the variable is briefly visible to the other tests of this file too, which is
    // harmless: they name their credentials in a file or in the URL, and both take precedence over it.
    std::env::set_var("RAILYARD_GIT_PASSWORD", "env-t0ken");
    let s = Server::start_in_with_git_url(dir, http.url(), &["--git-username", "alice"]);
    std::env::remove_var("RAILYARD_GIT_PASSWORD");

    let commit = create_env_and_release(&s);
    assert_release_on_remote(&s, &commit);
    http.assert_authenticated_push();
    assert_secret_hidden(&s, "env-t0ken");
}

#[test]
fn credentials_in_the_url_push_and_are_redacted() {
    let (dir, http) = remote_behind_basic_auth("alice", "url-s3cret");
    let url = format!("http://alice:url-s3cret@127.0.0.1:{}/remote.git", http.port);
    let s = Server::start_in_with_git_url(dir, &url, &[]);

    let commit = create_env_and_release(&s);
    assert_release_on_remote(&s, &commit);
    http.wait_for_push();
    assert!(
        s.logs().iter().any(|l| l.contains(&format!("http://alice:***@127.0.0.1:{}/remote.git", http.port))),
        "the redacted remote is not logged: {:?}",
        s.logs()
    );
    assert_secret_hidden(&s, "url-s3cret");
}

#[test]
fn wrong_password_is_retried_not_lost() {
    let (dir, http) = remote_behind_basic_auth("alice", "s3cret");
    let creds = credentials_file(dir.path(), &format!("http://alice:wr0ng-pass@127.0.0.1:{}", http.port));
    let s = Server::start_in_with_git_url(dir, http.url(), &["--git-credentials", creds.to_str().unwrap()]);

    // Writes answer as usual: they are durable in the local repo.
    let commit = create_env_and_release(&s);
    assert_eq!(s.local_head().map(|h| h.to_string()), Some(commit.clone()));

    // The exporter fails on authentication, keeps retrying (with backoff), and stays ready.
    let ready = wait_readyz(&s, Duration::from_secs(15), "repeated authentication failures", |e| {
        e["consecutive_failures"].as_u64().is_some_and(|n| n >= 3) && e["last_error"].is_string()
    });
    let error = ready["export"]["last_error"].as_str().unwrap().to_owned();
    assert!(error.to_ascii_lowercase().contains("authentication"), "last_error: {error}");
    assert_eq!(ready["export"]["pending_commits"], 2, "{ready}");
    assert_eq!(ready["export"]["exported_commit"], Value::Null, "{ready}");
    assert_eq!(ready["export"]["stopped"], Value::Null, "{ready}");
    assert_eq!(s.remote_head(), None, "something reached the remote without valid credentials");
    assert!(http.count(|s| &s.unauthorized) >= 3, "{}", http.log());
    assert_eq!(http.count(|s| &s.authorized), 0, "{}", http.log());
    s.assert_healthy();
    assert_secret_hidden(&s, "wr0ng-pass");

    // Nothing was dropped: once the remote accepts that password, the pending commits arrive on the next retry.
    http.set_password("wr0ng-pass");
    assert_release_on_remote(&s, &commit);
    http.wait_for_push();
    wait_readyz(&s, Duration::from_secs(10), "export recovered", |e| {
        e["last_error"].is_null() && e["consecutive_failures"] == 0 && e["pending_commits"] == 0
    });
    assert_secret_hidden(&s, "wr0ng-pass");
    assert_secret_hidden(&s, "s3cret");
}

#[test]
fn wrong_password_in_the_url_is_redacted_in_the_error() {
    let (dir, http) = remote_behind_basic_auth("alice", "s3cret");
    let url = format!("http://alice:wr0ng-url-pass@127.0.0.1:{}/remote.git", http.port);
    let s = Server::start_in_with_git_url(dir, &url, &[]);
    create_env_and_release(&s);

    let ready = wait_readyz(&s, Duration::from_secs(15), "repeated authentication failures", |e| {
        e["consecutive_failures"].as_u64().is_some_and(|n| n >= 2) && e["last_error"].is_string()
    });
    let error = ready["export"]["last_error"].as_str().unwrap();
    assert!(error.to_ascii_lowercase().contains("authentication"), "last_error: {error}");
    assert!(error.contains(&format!("http://alice:***@127.0.0.1:{}/remote.git", http.port)), "last_error: {error}");
    assert_eq!(s.remote_head(), None);
    assert_eq!(http.count(|s| &s.authorized), 0, "{}", http.log());
    assert_secret_hidden(&s, "wr0ng-url-pass");
}
