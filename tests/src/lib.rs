//! Harness for the end-to-end tests: starts the real `railyard-api` binary on 127.0.0.1 with a fresh local
//! repo and a bare remote in a temp dir, and reads what landed in the remote with git2.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};

/// Path of a binary built by `cargo build --bins` (the test executables live in `target/<profile>/deps`).
pub fn bin(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!(
        "RAILYARD_BIN_{}",
        name.replace('-', "_").to_uppercase()
    )) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --bins` first (make test does)",
        path.display()
    );
    path
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
        let repo_dir = dir.path().join("repo.git");
        let remote_dir = dir.path().join("remote.git");
        let mut cmd = Command::new(bin("railyard-api"));
        cmd.args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--repo-dir")
            .arg(&repo_dir)
            .arg("--git-url")
            .arg(&remote_dir)
            .args(extra)
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
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("railyard-api did not report its address");
        Self {
            child,
            url: format!("http://{addr}"),
            dir,
            repo_dir,
            remote_dir,
            logs,
        }
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
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    }

    /// `self.url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The commit the local branch points at.
    pub fn local_head(&self) -> Option<Oid> {
        Repository::open_bare(&self.repo_dir)
            .ok()?
            .refname_to_id("refs/heads/main")
            .ok()
    }

    /// The commit the remote branch points at.
    pub fn remote_head(&self) -> Option<Oid> {
        Repository::open_bare(&self.remote_dir)
            .ok()?
            .refname_to_id("refs/heads/main")
            .ok()
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

    /// A file's content on the remote branch.
    pub fn remote_file(&self, path: &str) -> Option<String> {
        read_file(&self.remote_dir, "refs/heads/main", path)
    }

    /// Every file path on the remote branch.
    pub fn remote_paths(&self) -> Vec<String> {
        let Ok(repo) = Repository::open_bare(&self.remote_dir) else {
            return vec![];
        };
        let Ok(tree) = repo
            .find_reference("refs/heads/main")
            .and_then(|r| r.peel_to_tree())
        else {
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

/// A file's content at `refname` in the bare repo at `repo`.
pub fn read_file(repo: &Path, refname: &str, path: &str) -> Option<String> {
    let repo = Repository::open_bare(repo).ok()?;
    let tree = repo.find_reference(refname).ok()?.peel_to_tree().ok()?;
    let entry = tree.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}
