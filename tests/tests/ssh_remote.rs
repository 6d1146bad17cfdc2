//! An ssh:// remote served by a real OpenSSH `sshd` (foreground, on 127.0.0.1, with its own host key and
//! config in the test's temp dir): the exporter pushes with `--git-ssh-key` after checking the server's host key
//! against `--git-ssh-known-hosts`; a host key not in that file, or a client key the server does not accept, is
//! an export error that is retried (ready stays true) and nothing reaches the remote.
//!
//! Needs `sshd` and `ssh-keygen` (Debian: `apt-get install -y openssh-server`, which brings openssh-client).
//! Without them the tests fail and say so: they never pass without having pushed over ssh.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use railyard_tests::{free_port, wait_readyz, Server};
use serde_json::{json, Value};

/// False (with a warning) when there is no sshd and `RAILYARD_REQUIRE_SSHD` is unset, so `make test` passes on a
/// machine without OpenSSH's server; CI sets it (and installs sshd), so there a missing sshd fails the tests.
fn sshd_present() -> bool {
    let found = [PathBuf::from("/usr/sbin/sshd"), PathBuf::from("/usr/local/sbin/sshd")].iter().any(|p| p.is_file())
        || std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("sshd").is_file()));
    if !found && std::env::var_os("RAILYARD_REQUIRE_SSHD").is_none() {
        eprintln!("warning: no sshd on this machine; ssh remote test not run (.ci/run installs openssh-server and sets RAILYARD_REQUIRE_SSHD)");
    }
    found || std::env::var_os("RAILYARD_REQUIRE_SSHD").is_some()
}

/// `sshd` as an absolute path (sshd refuses to start otherwise, as it re-executes itself).
fn sshd_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("sshd")).collect::<Vec<_>>())
        .unwrap_or_default();
    let candidates = [PathBuf::from("/usr/sbin/sshd"), PathBuf::from("/usr/local/sbin/sshd")];
    candidates.into_iter().chain(on_path).find(|p| p.is_absolute() && p.is_file()).unwrap_or_else(|| {
        panic!(
            "sshd not found (looked in /usr/sbin, /usr/local/sbin and PATH): the ssh remote tests need a real \
             OpenSSH server; install it (Debian: `apt-get install -y openssh-server`)"
        )
    })
}

/// The user the tests run as, whom sshd lets in with the authorized client key.
fn current_user() -> String {
    if let Some(user) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return user;
    }
    let out = Command::new("id").arg("-un").output().expect("run `id -un`");
    assert!(out.status.success(), "`id -un` failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("user name").trim().to_owned()
}

/// Makes an ed25519 key pair at `path` and `path.pub` (no passphrase when `passphrase` is empty).
fn keygen(path: &Path, passphrase: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", "railyard-test", "-N", passphrase, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run ssh-keygen ({e}): install OpenSSH (Debian: openssh-client)"));
    assert!(out.status.success(), "ssh-keygen failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The `TYPE BASE64` of a `.pub` file (its comment dropped).
fn public_key(pub_file: &Path) -> String {
    let text = std::fs::read_to_string(pub_file).expect("read the public key");
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert!(fields.len() >= 2, "not a public key: {text:?}");
    format!("{} {}", fields[0], fields[1])
}

/// A running `sshd -D -e` on 127.0.0.1 that lets the current user in with the keys of one authorized_keys file;
/// killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    /// Its host key's public half (`dir/ssh_host_ed25519_key.pub`).
    host_pub: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Sshd {
    fn start(dir: &Path, authorized_keys: &Path) -> Self {
        let sshd = sshd_binary();
        let host_key = dir.join("ssh_host_ed25519_key");
        keygen(&host_key, "");
        if current_user() == "root" {
            // sshd's privilege separation directory (normally made by the distribution's service unit).
            let privsep = Path::new("/run/sshd");
            if !privsep.is_dir() {
                std::fs::create_dir_all(privsep).unwrap_or_else(|e| panic!("create {}: {e}", privsep.display()));
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(privsep, std::fs::Permissions::from_mode(0o755)).expect("chmod /run/sshd");
            }
        }
        let mut last_log = String::new();
        // A free port can be taken before sshd binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                     StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
                    host_key.display(),
                    authorized_keys.display(),
                    dir.join("sshd.pid").display(),
                ),
            )
            .expect("write sshd_config");
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", sshd.display()));
            let log = Arc::new(Mutex::new(Vec::new()));
            let keep = log.clone();
            let stderr = child.stderr.take().expect("sshd stderr");
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    keep.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
            let listening = format!("Server listening on 127.0.0.1 port {port}");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = log.lock().unwrap().join("\n");
                if text.contains(&listening) {
                    return Self { child, port, host_pub: host_key.with_extension("pub"), log };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    std::thread::sleep(Duration::from_millis(50)); // let the reader take its last lines
                    last_log = format!("sshd exited ({status}):\n{}", log.lock().unwrap().join("\n"));
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("sshd did not listen on port {port} within 10 s:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !last_log.contains("Address already in use") {
                break;
            }
        }
        panic!("sshd could not be started on 127.0.0.1, so the ssh remote cannot be tested: {last_log}");
    }

    /// `ssh://USER@127.0.0.1:PORT/ABSOLUTE/PATH`.
    fn url(&self, repo: &Path) -> String {
        assert!(repo.is_absolute(), "{}", repo.display());
        format!("ssh://{}@127.0.0.1:{}{}", current_user(), self.port, repo.display())
    }

    /// A known_hosts file at `path` holding `[127.0.0.1]:PORT` with the key of `pub_file`.
    fn known_hosts(&self, path: &Path, pub_file: &Path) -> PathBuf {
        std::fs::write(path, format!("# the manifest remote\n[127.0.0.1]:{} {}\n", self.port, public_key(pub_file)))
            .expect("write known_hosts");
        path.to_path_buf()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// How many logins sshd accepted so far.
    fn accepted(&self) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains("Accepted publickey for")).count()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp dir with an empty bare `remote.git`, a client key pair `client_key` (with `passphrase`) that sshd
/// accepts, and the running sshd.
fn remote_over_ssh(passphrase: &str) -> (tempfile::TempDir, Sshd, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    git2::Repository::init_bare(dir.path().join("remote.git")).expect("bare remote");
    let client_key = dir.path().join("client_key");
    keygen(&client_key, passphrase);
    let sshd = Sshd::start(dir.path(), &client_key.with_extension("pub"));
    (dir, sshd, client_key)
}

/// Creates `dev` and releases `web` there; returns the release's commit.
fn create_env_and_release(s: &Server) -> String {
    s.create_env("dev", json!({"latest": true}), None);
    let r = s.release("web", None, &[("dev", "kind: Deployment\n")]);
    r.assert_status(201);
    r.commit().expect("release commit")
}

fn assert_release_on_remote(s: &Server, sshd: &Sshd, commit: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.remote_head().map(|h| h.to_string()).as_deref() != Some(commit) {
        let export = s.get("/readyz").json["export"].clone();
        assert!(Instant::now() < deadline, "nothing pushed over ssh; /readyz export: {export}\nsshd:\n{}", sshd.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(
        s.remote_file("environments/dev/applications/web/manifests/manifests.yaml").as_deref(),
        Some("kind: Deployment\n")
    );
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("1"));
    assert_eq!(s.remote_commit_count(), 2);
    s.assert_remote_layout();
    assert!(sshd.accepted() >= 1, "sshd logged no accepted login:\n{}", sshd.log());
}

/// Waits for repeated export failures (ready staying true), asserts nothing reached the remote and returns
/// `last_error`.
fn assert_refused(s: &Server, sshd: &Sshd) -> String {
    let ready = wait_readyz(s, Duration::from_secs(10), "repeated ssh failures", |e| {
        e["consecutive_failures"].as_u64().is_some_and(|n| n >= 2) && e["last_error"].is_string()
    });
    assert_eq!(ready["export"]["pending_commits"], 2, "{ready}");
    assert_eq!(ready["export"]["exported_commit"], Value::Null, "{ready}");
    assert_eq!(ready["export"]["stopped"], Value::Null, "{ready}");
    assert_eq!(s.remote_head(), None, "something reached the remote");
    assert_eq!(sshd.accepted(), 0, "sshd let the exporter in:\n{}", sshd.log());
    s.assert_healthy();
    ready["export"]["last_error"].as_str().unwrap().to_owned()
}

#[test]
fn pushes_over_ssh_with_the_key_and_known_hosts() {
    if !sshd_present() {
        return;
    }
    let (dir, sshd, client_key) = remote_over_ssh("");
    let known_hosts = sshd.known_hosts(&dir.path().join("known_hosts"), &sshd.host_pub);
    let url = sshd.url(&dir.path().join("remote.git"));
    let s = Server::start_in_with_git_url(
        dir,
        &url,
        &["--git-ssh-key", client_key.to_str().unwrap(), "--git-ssh-known-hosts", known_hosts.to_str().unwrap()],
    );

    let commit = create_env_and_release(&s);
    assert_release_on_remote(&s, &sshd, &commit);
    wait_readyz(&s, Duration::from_secs(10), "export caught up", |e| {
        e["last_error"].is_null() && e["pending_commits"] == 0 && e["exported_commit"] == commit.as_str()
    });
}

#[test]
fn pushes_with_a_passphrase_protected_key() {
    if !sshd_present() {
        return;
    }
    let (dir, sshd, client_key) = remote_over_ssh("corr3ct-horse");
    let known_hosts = sshd.known_hosts(&dir.path().join("known_hosts"), &sshd.host_pub);
    let url = sshd.url(&dir.path().join("remote.git"));
    let s = Server::start_in_with_git_url_env(
        dir,
        &url,
        &["--git-ssh-key", client_key.to_str().unwrap(), "--git-ssh-known-hosts", known_hosts.to_str().unwrap()],
        &[("RAILYARD_GIT_SSH_KEY_PASSPHRASE", "corr3ct-horse")],
    );

    let commit = create_env_and_release(&s);
    assert_release_on_remote(&s, &sshd, &commit);
    for line in s.logs() {
        assert!(!line.contains("corr3ct-horse"), "passphrase in the logs: {line}");
    }
    let ready = s.get("/readyz").text;
    assert!(!ready.contains("corr3ct-horse"), "passphrase in /readyz: {ready}");
}

#[test]
fn a_host_key_not_in_known_hosts_is_refused() {
    if !sshd_present() {
        return;
    }
    let (dir, sshd, client_key) = remote_over_ssh("");
    // known_hosts names 127.0.0.1 with another key: a server impersonating the remote.
    let other = dir.path().join("other_host_key");
    keygen(&other, "");
    let known_hosts = sshd.known_hosts(&dir.path().join("known_hosts"), &other.with_extension("pub"));
    let url = sshd.url(&dir.path().join("remote.git"));
    let s = Server::start_in_with_git_url(
        dir,
        &url,
        &["--git-ssh-key", client_key.to_str().unwrap(), "--git-ssh-known-hosts", known_hosts.to_str().unwrap()],
    );

    let commit = create_env_and_release(&s);
    assert_eq!(s.local_head().map(|h| h.to_string()), Some(commit));
    let error = assert_refused(&s, &sshd);
    // libgit2 (1.9) replaces the certificate callback's error with its own words; the exporter adds which list
    // refused the key.
    assert!(error.contains("hostkey") && error.contains("not in --git-ssh-known-hosts"), "last_error: {error}");
}

#[test]
fn a_client_key_the_server_does_not_accept_is_an_authentication_error() {
    if !sshd_present() {
        return;
    }
    let (dir, sshd, _authorized) = remote_over_ssh("");
    let stranger = dir.path().join("stranger_key");
    keygen(&stranger, "");
    let known_hosts = sshd.known_hosts(&dir.path().join("known_hosts"), &sshd.host_pub);
    let url = sshd.url(&dir.path().join("remote.git"));
    let s = Server::start_in_with_git_url(
        dir,
        &url,
        &["--git-ssh-key", stranger.to_str().unwrap(), "--git-ssh-known-hosts", known_hosts.to_str().unwrap()],
    );

    let commit = create_env_and_release(&s);
    assert_eq!(s.local_head().map(|h| h.to_string()), Some(commit));
    let error = assert_refused(&s, &sshd);
    assert!(error.to_ascii_lowercase().contains("authentication"), "last_error: {error}");
}
