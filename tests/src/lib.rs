//! Harness for the end-to-end tests: starts the real `railyard-api` binary on 127.0.0.1 with a fresh local
//! repo and a bare remote in a temp dir, and reads what landed in the remote with git2.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};

pub mod browser;
pub mod load;
pub mod repogen;
pub mod walk;
pub mod webhook_receiver;

pub mod git_http;

/// Installs a test client (a venv, `node_modules`) once, whatever the number of test processes that want it at the
/// same time (nextest runs each test in a process of its own): under an exclusive lock on
/// `tests/clients/.install.lock`, `ready` is asked and `install` runs only if it says no. A second test waits for the
/// first one's install instead of installing into the same folder beside it, or reading a half-installed one.
pub fn install_once(ready: impl Fn() -> bool, install: impl FnOnce()) {
    let lock = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients").join(".install.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap_or_else(|e| panic!("{}: {e}", lock.display()));
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).expect("lock tests/clients/.install.lock");
    if !ready() {
        install();
    }
}

/// `npm ci` in the test client folder `dir` (its lockfile), once ([`install_once`]), unless `dir/node_modules/<package>`
/// is there.
pub fn npm_ci_once(dir: &Path, package: &str) {
    let ready = || dir.join("node_modules").join(package).exists();
    install_once(ready, || {
        let ok = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .expect("npm");
        assert!(ok.success(), "npm ci in {} failed", dir.display());
    });
}

/// Path of a binary built by `cargo build --bins` (the test executables live in `target/<profile>/deps`).
pub fn bin(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("RAILYARD_BIN_{}", name.replace('-', "_").to_uppercase())) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(path.exists(), "{} not built: run `cargo build --bins` first (make test does)", path.display());
    path
}

/// Runs `git fsck --strict --no-dangling` on the bare repo `repo`: whether it succeeded, and what it printed (stdout
/// and stderr). Callers assert on both: dangling objects are not reported, anything else printed is a finding.
pub fn git_fsck(repo: &Path) -> (bool, String) {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .output()
        .expect("git fsck");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Asserts [`git_fsck`] of the bare repo `repo` succeeds and prints nothing (dangling objects are not reported).
pub fn assert_git_fsck_clean(repo: &Path) {
    let (ok, text) = git_fsck(repo);
    assert!(ok && text.trim().is_empty(), "git fsck --strict {}: {text}", repo.display());
}

/// A small xorshift generator for the kill loops, seeded from the environment variable `var` or else from the clock.
/// The seed is printed, so that a failure can be replayed with `var=<seed>`.
pub struct Rng(u64);

impl Rng {
    pub fn from_env(var: &str) -> Self {
        let seed = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
        });
        eprintln!("seed: {var}={seed}");
        Self(seed)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A running `railyard-api` with its own temp repos.
pub struct Server {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub repo_dir: PathBuf,
    pub remote_dir: PathBuf,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server with the embedded defaults (local remote in the temp dir).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts the server with extra flags.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra)
    }

    /// Starts the server in `dir` (reusing repos already there, e.g. after a restart).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let remote_dir = dir.path().join("remote.git");
        Self::start_in_with_git_url(dir, remote_dir.as_os_str(), extra)
    }

    /// Starts the server in `dir` pushing to `git_url` instead of the bare repo `dir/remote.git` (which the
    /// `remote_*` helpers still read: point `git_url` at it through a `git://` daemon, or elsewhere to break it).
    pub fn start_in_with_git_url(dir: tempfile::TempDir, git_url: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Self {
        Self::start_in_with_git_url_env(dir, git_url, extra, &[])
    }

    /// Like [`Server::start_in_with_git_url`], with extra environment variables for the process.
    pub fn start_in_with_git_url_env(
        dir: tempfile::TempDir,
        git_url: impl AsRef<std::ffi::OsStr>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let repo_dir = dir.path().join("repo.git");
        let remote_dir = dir.path().join("remote.git");
        let mut cmd = Command::new(bin("railyard-api"));
        cmd.args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--repo-dir")
            .arg(&repo_dir)
            .arg("--git-url")
            .arg(git_url.as_ref())
            .args(extra)
            .envs(env.iter().copied())
            .env("RAILYARD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start railyard-api");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(addr) = v["fields"]["listen"].as_str() {
                        let _ = tx.send(addr.to_owned());
                    }
                }
                keep.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("railyard-api did not report its address");
        Self { child, url: format!("http://{addr}"), dir, repo_dir, remote_dir, logs }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the server process ended, or `None` while it runs: for a test's failure message.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What a failing test should show of the server: whether it still runs, and its last 40 log lines.
    pub fn report(&mut self) -> String {
        let state = match self.exit_status() {
            Some(status) => format!("railyard-api exited: {status}"),
            None => "railyard-api still running".to_owned(),
        };
        let logs = self.logs();
        let tail = logs[logs.len().saturating_sub(40)..].join("\n");
        format!("{state}; its last log lines:\n{tail}")
    }

    /// The log lines printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the server (SIGKILL) and hands back its temp dir for a restart.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
    }

    /// `self.url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The commit the local branch points at.
    pub fn local_head(&self) -> Option<Oid> {
        Repository::open_bare(&self.repo_dir).ok()?.refname_to_id("refs/heads/main").ok()
    }

    /// The commit the remote branch points at.
    pub fn remote_head(&self) -> Option<Oid> {
        Repository::open_bare(&self.remote_dir).ok()?.refname_to_id("refs/heads/main").ok()
    }

    /// Waits until the remote branch equals the local branch (everything exported); panics after 30 s.
    pub fn wait_exported(&self) -> Oid {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let local = self.local_head();
            if let Some(head) = local.filter(|l| Some(*l) == self.remote_head()) {
                return head;
            }
            assert!(
                Instant::now() < deadline,
                "remote did not catch up: local {local:?}, remote {:?}",
                self.remote_head()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the exporter has reconciled with the remote at least once (tags made there are learnt).
    pub fn wait_reconciled(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.get("/readyz");
            if !r.json["export"]["reconciled_at"].is_null() {
                return;
            }
            assert!(Instant::now() < deadline, "exporter did not reconcile: {}", r.text);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A file's content on the remote branch.
    pub fn remote_file(&self, path: &str) -> Option<String> {
        read_file(&self.remote_dir, "refs/heads/main", path)
    }

    /// Every file path on the remote branch.
    pub fn remote_paths(&self) -> Vec<String> {
        let Ok(repo) = Repository::open_bare(&self.remote_dir) else {
            return vec![];
        };
        let Ok(tree) = repo.find_reference("refs/heads/main").and_then(|r| r.peel_to_tree()) else {
            return vec![];
        };
        let mut out = Vec::new();
        let _ = tree.walk(git2::TreeWalkMode::PreOrder, |root, e| {
            if e.kind() == Some(git2::ObjectType::Blob) {
                out.push(format!("{root}{}", e.name().unwrap_or_default()));
            }
            git2::TreeWalkResult::Ok
        });
        out
    }

    /// The number of commits on the remote branch.
    pub fn remote_commit_count(&self) -> usize {
        let Ok(repo) = Repository::open_bare(&self.remote_dir) else {
            return 0;
        };
        let Ok(head) = repo.refname_to_id("refs/heads/main") else {
            return 0;
        };
        let mut walk = repo.revwalk().expect("revwalk");
        walk.push(head).expect("push");
        walk.count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server on a repo generated per `spec` whose remote already has everything (a bare clone, marked exported), so
/// the exporter is idle; also how long the generation took.
pub fn start_generated(spec: &repogen::RepoSpec, extra: &[&str]) -> (Server, Duration) {
    let dir = tempfile::tempdir().expect("dir");
    let started = std::time::Instant::now();
    let head = repogen::generate(&dir.path().join("repo.git"), spec);
    let generated = started.elapsed();
    let ok = Command::new("git")
        .args(["clone", "--bare", "--quiet"])
        .arg(dir.path().join("repo.git"))
        .arg(dir.path().join("remote.git"))
        .status()
        .expect("git clone");
    assert!(ok.success());
    let repo = Repository::open_bare(dir.path().join("repo.git")).expect("repo");
    repo.reference("refs/railyard/exported/main", head, true, "generated").expect("exported");
    (Server::start_in(dir, extra), generated)
}

/// A file's content at `refname` in the bare repo at `repo`.
pub fn read_file(repo: &Path, refname: &str, path: &str) -> Option<String> {
    let repo = Repository::open_bare(repo).ok()?;
    let tree = repo.find_reference(refname).ok()?.peel_to_tree().ok()?;
    let entry = tree.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

/// An HTTP answer: status, `Content-Type`, the body as text and (if it parses) as JSON (else `Value::Null`).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub json: serde_json::Value,
}

impl Reply {
    fn from_parts(status: u16, content_type: String, text: String) -> Self {
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Self { status, content_type, text, json }
    }

    pub fn from_response(r: reqwest::blocking::Response) -> Self {
        let status = r.status().as_u16();
        let content_type =
            r.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = r.text().expect("response body");
        Self::from_parts(status, content_type, text)
    }

    /// The `commit` of a write's answer (None: `null`); panics when the member is missing or not a sha.
    pub fn commit(&self) -> Option<String> {
        match &self.json["commit"] {
            serde_json::Value::Null => {
                assert!(self.json.get("commit").is_some(), "answer has no commit member: {}", self.text);
                None
            }
            serde_json::Value::String(c) => {
                assert!(c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()), "commit is not a sha: {c}");
                Some(c.clone())
            }
            other => panic!("commit is neither a sha nor null: {other}"),
        }
    }

    /// Asserts the status, and that the body is a JSON error `{"error": "...", "code": code}` with `field`
    /// (when given) equal to the body's `field`.
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        assert!(
            self.content_type.starts_with("application/json"),
            "error is not JSON ({:?}): {}",
            self.content_type,
            self.text
        );
        let msg = self.json["error"].as_str().unwrap_or_default();
        assert!(!msg.is_empty(), "error without a message: {}", self.text);
        assert_eq!(self.json["code"], code, "unexpected code; body: {}", self.text);
        if let Some(field) = field {
            assert_eq!(self.json["field"], field, "unexpected field; body: {}", self.text);
        }
        self
    }

    /// Asserts the status (with the body in the message).
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self
    }
}

/// A multipart/form-data body built byte for byte (part names are sent as given, unlike reqwest's form, which
/// percent-encodes some characters of part names). Returns the `Content-Type` and the body.
pub fn multipart_body(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "railyard-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Disposition: form-data; name=\"");
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(b"\"\r\n\r\n");
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The multipart parts of a well-formed release upload of `app` (team `core`) with one manifest per
/// `(env, content)`.
pub fn release_parts<'a>(
    app: &'a str,
    version: Option<&'a str>,
    manifests: &'a [(&'a str, &'a str)],
) -> Vec<(String, Vec<u8>)> {
    let mut parts: Vec<(String, Vec<u8>)> = vec![
        ("application".into(), app.as_bytes().to_vec()),
        ("team".into(), b"core".to_vec()),
        ("source_commit_id".into(), b"0123abc".to_vec()),
        ("source_author".into(), b"Dev <dev@example.com>".to_vec()),
        ("source_message".into(), b"fix the thing".to_vec()),
        ("display_version".into(), b"1.2.3".to_vec()),
    ];
    if let Some(v) = version {
        parts.push(("version".into(), v.as_bytes().to_vec()));
    }
    for (env, content) in manifests {
        parts.push((format!("manifests[{env}]"), content.as_bytes().to_vec()));
    }
    parts
}

impl Server {
    pub fn get(&self, path: &str) -> Reply {
        Reply::from_response(self.client().get(self.at(path)).send().expect("GET"))
    }

    pub fn delete(&self, path: &str) -> Reply {
        Reply::from_response(self.client().delete(self.at(path)).send().expect("DELETE"))
    }

    pub fn put_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        Reply::from_response(self.client().put(self.at(path)).json(body).send().expect("PUT"))
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        Reply::from_response(self.client().post(self.at(path)).json(body).send().expect("POST"))
    }

    /// Sends `body` as is with the given `Content-Type`.
    pub fn send_raw_body(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        Reply::from_response(
            self.client()
                .request(method, self.at(path))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .expect("request"),
        )
    }

    /// `POST /api/release` with exactly these multipart parts.
    pub fn upload(&self, parts: &[(String, Vec<u8>)]) -> Reply {
        let parts: Vec<(&str, &[u8])> = parts.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let (content_type, body) = multipart_body(&parts);
        self.send_raw_body("POST", "/api/release", &content_type, body)
    }

    /// Uploads a well-formed release (see [`release_parts`]).
    pub fn release(&self, app: &str, version: Option<&str>, manifests: &[(&str, &str)]) -> Reply {
        self.upload(&release_parts(app, version, manifests))
    }

    /// Creates an environment and asserts 201. `upstream` is e.g. `{"latest": true}` or `{"environment": "dev"}`.
    pub fn create_env(&self, name: &str, upstream: serde_json::Value, group: Option<&str>) -> Reply {
        let mut body = serde_json::json!({ "name": name, "upstream": upstream });
        if let Some(g) = group {
            body["environmentGroup"] = g.into();
        }
        let r = self.post_json("/api/environments", &body);
        r.assert_status(201);
        r
    }

    /// `PUT /api/environments/{env}/applications/{app}/deploy`.
    pub fn deploy(&self, env: &str, app: &str, version: u64, lock_behavior: &str) -> Reply {
        self.put_json(
            &format!("/api/environments/{env}/applications/{app}/deploy"),
            &serde_json::json!({ "version": version, "lockBehavior": lock_behavior }),
        )
    }

    /// Sends one request over a fresh TCP connection with the request target exactly as given (no URL
    /// normalisation: `..` segments and other bytes reach the server as they are).
    pub fn raw_http(&self, method: &str, target: &str, content_type: Option<&str>, body: &[u8]) -> Reply {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(ct) = content_type {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("write head");
        s.write_all(body).expect("write body");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read answer");
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, text) = raw.split_once("\r\n\r\n").expect("HTTP answer");
        let mut lines = head.lines();
        let status: u16 =
            lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).expect("status line");
        let mut content_type = String::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                assert_ne!(k, "transfer-encoding", "raw_http does not decode chunked answers");
                if k == "content-type" {
                    content_type = v.trim().to_owned();
                }
            }
        }
        Reply::from_parts(status, content_type, text.to_owned())
    }

    /// Asserts `/healthz` answers 200 `{"status":"ok"}` (the server did not die).
    pub fn assert_healthy(&self) {
        let r = self.get("/healthz");
        r.assert_status(200);
        assert_eq!(r.json["status"], "ok");
    }

    /// Asserts that every file on the remote branch is inside the layout (`environments/`, `applications/`, `argocd/`,
    /// `.railyard/`) and that no path has an empty, `.` or `..` segment.
    pub fn assert_remote_layout(&self) {
        for p in self.remote_paths() {
            assert!(
                ["environments/", "applications/", ".railyard/", "argocd/"].iter().any(|prefix| p.starts_with(prefix)),
                "file outside the layout on the remote: {p:?}"
            );
            assert!(
                p.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\0')),
                "odd path on the remote: {p:?}"
            );
        }
    }

    /// The message of `commit` in the remote repo.
    pub fn remote_commit_message(&self, commit: &str) -> String {
        let repo = Repository::open_bare(&self.remote_dir).expect("remote repo");
        let c = repo.find_commit(Oid::from_str(commit).expect("sha")).expect("commit on the remote");
        c.message().unwrap_or_default().to_owned()
    }

    /// The parents of `commit` in the remote repo.
    pub fn remote_commit_parents(&self, commit: &str) -> Vec<String> {
        let repo = Repository::open_bare(&self.remote_dir).expect("remote repo");
        let c = repo.find_commit(Oid::from_str(commit).expect("sha")).expect("commit on the remote");
        c.parent_ids().map(|p| p.to_string()).collect()
    }

    /// A file's content in `commit` of the remote repo.
    pub fn remote_file_at(&self, commit: &str, path: &str) -> Option<String> {
        let repo = Repository::open_bare(&self.remote_dir).ok()?;
        let tree = repo.find_commit(Oid::from_str(commit).ok()?).ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }

    /// True if `commit` is the remote head or one of its ancestors.
    pub fn remote_contains(&self, commit: &str) -> bool {
        let repo = Repository::open_bare(&self.remote_dir).expect("remote repo");
        let Some(head) = self.remote_head() else {
            return false;
        };
        let c = Oid::from_str(commit).expect("sha");
        head == c || repo.graph_descendant_of(head, c).unwrap_or(false)
    }
}

/// A running `railyard-export` beside a `railyard-api --export external` (or alone).
pub struct ExportProcess {
    child: Child,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ExportProcess {
    /// Starts `railyard-export` on `repo_dir`, pushing to `git_url`, with extra flags.
    pub fn start(repo_dir: &Path, git_url: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Self {
        let mut child = export_command(repo_dir, git_url.as_ref(), extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start railyard-export");
        let stdout = child.stdout.take().expect("stdout");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                keep.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Self { child, logs }
    }

    /// `railyard-export --once`: its exit status and everything it printed.
    pub fn once(
        repo_dir: &Path,
        git_url: impl AsRef<std::ffi::OsStr>,
        extra: &[&str],
    ) -> (std::process::ExitStatus, String) {
        let out =
            export_command(repo_dir, git_url.as_ref(), extra).arg("--once").output().expect("run railyard-export");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status, text)
    }

    /// The JSON log lines printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The address `--listen 127.0.0.1:0` bound to, from the log; panics after 30 s.
    pub fn listen_url(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for line in self.logs() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(addr) = v["fields"]["listen"].as_str() {
                        return format!("http://{addr}");
                    }
                }
            }
            assert!(Instant::now() < deadline, "railyard-export did not report its address");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ExportProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn export_command(repo_dir: &Path, git_url: &std::ffi::OsStr, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin("railyard-export"));
    cmd.args(["--log-format", "json", "--poll-interval-ms", "20"])
        .arg("--repo-dir")
        .arg(repo_dir)
        .arg("--git-url")
        .arg(git_url)
        .args(extra)
        .env("RAILYARD_LOG", "info");
    cmd
}

/// A `git daemon` serving the bare repos under `base` on 127.0.0.1:`port` with pushes enabled; killed on drop.
pub struct GitDaemon(Child);

impl GitDaemon {
    pub fn start(base: &Path, port: u16) -> Self {
        use std::os::unix::process::CommandExt;
        // `git daemon` runs `git-daemon` as a child: a process group of their own lets Drop stop both.
        let child = Command::new("git")
            .process_group(0)
            .arg("daemon")
            .arg("--export-all")
            .arg("--enable=receive-pack")
            .arg(format!("--base-path={}", base.display()))
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg("--reuseaddr")
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        let d = Self(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Peak resident memory (VmHWM) of process `pid`, in KiB (Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The `p`-th percentile (0–100) of `samples` (sorted here).
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// Polls `/readyz` (asserting 200 and `ready: true` each time: export trouble never makes the API unready) until
/// `pred` holds on its `export` member; panics after `limit`.
pub fn wait_readyz(
    s: &Server,
    limit: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
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

/// Every object of the bare repo at `repo`, loose and packed (`git count-objects -v`: `count` + `in-pack`).
pub fn object_count(repo: &Path) -> u64 {
    let v = count_objects(repo);
    v["count"] + v["in-pack"]
}

/// The disk use of the repo's objects in KiB, loose and packed (`size` + `size-pack`).
pub fn object_kib(repo: &Path) -> u64 {
    let v = count_objects(repo);
    v["size"] + v["size-pack"]
}

fn count_objects(repo: &Path) -> std::collections::HashMap<String, u64> {
    let out = Command::new("git").arg("--git-dir").arg(repo).args(["count-objects", "-v"]).output().expect("git");
    assert!(out.status.success(), "git count-objects: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
        .collect()
}

/// Every ref of the bare repo at `repo` (branches, tags, Railyard's own refs) with what it points at.
pub fn refs_snapshot(repo: &Path) -> std::collections::BTreeMap<String, String> {
    let Ok(repo) = Repository::open_bare(repo) else {
        return Default::default();
    };
    let refs = repo.references().expect("refs");
    refs.flatten()
        .filter_map(|r| {
            let target =
                r.target().map(|t| t.to_string()).or_else(|| r.symbolic_target().ok().flatten().map(str::to_owned))?;
            Some((r.name().ok()?.to_owned(), target))
        })
        .collect()
}

/// SHA-256 of `token` in hex, computed by the system's `sha256sum` (no code shared with the server).
pub fn sha256_hex(token: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    child.stdin.take().expect("stdin").write_all(token.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    String::from_utf8(out.stdout).expect("hex").split_whitespace().next().expect("digest").to_owned()
}

/// Writes a `--auth-tokens` file into `dir`: one entry per `(token, name, roles)`, `roles` a YAML flow list such as
/// `[{action: lock, environments: [dev]}]` (`[]`: no roles). Returns its path.
pub fn write_tokens(dir: &Path, people: &[(&str, &str, &str)]) -> PathBuf {
    let mut yaml = String::new();
    for (token, name, roles) in people {
        yaml.push_str(&format!(
            "- token_sha256: {}\n  name: {name}\n  email: {}@example.com\n  roles: {roles}\n",
            sha256_hex(token),
            name.to_lowercase()
        ));
    }
    let file = dir.join("tokens.yaml");
    std::fs::write(&file, yaml).expect("tokens file");
    file
}

/// A request as a token holder sends it (`token` None: no `Authorization` header).
pub fn call(s: &Server, method: &str, path: &str, token: Option<&str>, body: Option<&serde_json::Value>) -> Reply {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = s.client().request(m, s.at(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    Reply::from_response(req.send().expect("request"))
}

/// `POST path` with a multipart body of exactly these parts, as `token`.
pub fn upload_as(s: &Server, path: &str, token: Option<&str>, parts: &[(String, Vec<u8>)]) -> Reply {
    let parts: Vec<(&str, &[u8])> = parts.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let (content_type, body) = multipart_body(&parts);
    let mut req = s.client().post(s.at(path)).header(reqwest::header::CONTENT_TYPE, content_type).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Reply::from_response(req.send().expect("POST"))
}

/// A request line and the body that came with it.
pub type Received = (String, Vec<u8>);

/// An HTTP receiver on 127.0.0.1 that answers every request 202 and records its request line and body.
pub struct Receiver {
    pub url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Listens on a free port; `url` is `http://127.0.0.1:<port>/build`.
    pub fn start() -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/build", listener.local_addr().expect("addr"));
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let keep = keep.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    keep.lock().unwrap_or_else(|p| p.into_inner()).push((line.trim_end().to_owned(), body));
                    let answer = r#"{"build":"queued"}"#;
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                });
            }
        });
        Self { url, got }
    }

    /// The request lines and bodies received so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
