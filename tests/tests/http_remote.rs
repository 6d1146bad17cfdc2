//! A smart-HTTP remote behind HTTP Basic auth: the exporter authenticates with the credentials file, with
//! `--git-username` + `RAILYARD_GIT_PASSWORD`, or with the user info in the URL; a wrong password is an export
//! error that is retried (writes stay durable locally) and never lost; no secret ever shows in the logs.
//!
//! The remote is the harness's tiny HTTP/1.1 server (`railyard_tests::git_http`) that checks
//! `Authorization: Basic ...` and hands every authenticated request to `git http-backend` (CGI), serving the
//! harness's `dir/remote.git`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use railyard_tests::git_http::{base64_decode, base64_encode, GitHttpServer};
use railyard_tests::{wait_readyz, Server};
use serde_json::{json, Value};

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
