//! A remote that is down: writes still succeed (they are durable in the local repo), `/readyz` reports the
//! export error, and everything arrives once the remote is reachable.

use std::process::Command;
use std::time::{Duration, Instant};

use railyard_tests::{free_port, wait_readyz, GitDaemon, Server};
use serde_json::{json, Value};

/// Makes a handful of writes of every kind; returns the number of commits they made.
fn some_writes(s: &Server) -> usize {
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    let r = s.release("web", None, &[("dev", "web-dev"), ("staging", "web-staging")]);
    r.assert_status(201);
    assert!(r.commit().is_some());
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    s.put_json("/api/environments/dev/locks/freeze", &json!({"message": "m"})).assert_status(200);
    5
}

fn local_commit_count(s: &Server) -> usize {
    let repo = git2::Repository::open_bare(&s.repo_dir).expect("local repo");
    let mut walk = repo.revwalk().expect("revwalk");
    walk.push(s.local_head().expect("local head")).expect("push");
    walk.count()
}

/// Waits until the remote that came back holds `local`: the exporter's backoff (at most 60 s) brings it over.
fn wait_caught_up(s: &Server, local: git2::Oid) {
    let deadline = Instant::now() + Duration::from_secs(75);
    while s.remote_head() != Some(local) {
        assert!(
            Instant::now() < deadline,
            "remote did not catch up after it came back: remote {:?}, local {local}; readyz {}",
            s.remote_head(),
            s.get("/readyz").text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A server whose remote is the path `name` in its folder, where a regular file lies (not a repository).
fn start_with_a_file_as_remote(name: &str) -> (Server, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, "this is not a git repository\n").expect("write file");
    (Server::start_in_with_git_url(dir, &path, &[]), path)
}

#[test]
fn writes_succeed_while_the_remote_is_a_regular_file_and_readyz_reports_the_error() {
    let (s, not_a_repo) = start_with_a_file_as_remote("remote-is-a-file");

    let n = some_writes(&s);
    assert_eq!(local_commit_count(&s), n);

    let ready = wait_readyz(&s, Duration::from_secs(15), "export error and lag", |e| {
        e["last_error"].as_str().is_some_and(|m| !m.is_empty()) && e["pending_commits"] == n
    });
    assert_eq!(ready["export"]["exported_commit"], Value::Null);
    assert!(ready["export"]["oldest_pending_age_seconds"].is_u64(), "{ready}");
    // The file is untouched and nothing was pushed anywhere.
    assert_eq!(std::fs::read_to_string(&not_a_repo).expect("file"), "this is not a git repository\n");
    assert_eq!(s.remote_head(), None);
    // The API still serves what was written.
    let r = s.get("/api/environments/staging/locks");
    r.assert_status(200);
    let o = s.get("/api/overview");
    o.assert_status(200);
    assert_eq!(o.json["environments"][0]["locks"][0]["lockId"], "freeze");
    s.assert_healthy();
}

#[test]
fn writes_made_while_the_remote_is_down_arrive_once_it_is_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bare = dir.path().join("remote.git");
    let init = Command::new("git").args(["init", "--bare", "--quiet"]).arg(&bare).status().expect("git init --bare");
    assert!(init.success());
    let port = free_port();
    let base = dir.path().to_path_buf();
    let url = format!("git://127.0.0.1:{port}/remote.git");
    let s = Server::start_in_with_git_url(dir, &url, &[]);

    // Nothing listens on the port yet: every write still answers 2xx.
    let n = some_writes(&s);
    let local = s.local_head().expect("local head");
    wait_readyz(&s, Duration::from_secs(15), "export error", |e| {
        e["last_error"].as_str().is_some_and(|m| !m.is_empty()) && e["pending_commits"] == n
    });
    assert_eq!(s.remote_head(), None);

    // The remote comes up; the exporter's backoff (at most 60 s) brings everything over.
    let daemon = GitDaemon::start(&base, port);
    wait_caught_up(&s, local);
    assert_eq!(s.remote_commit_count(), n);
    assert_eq!(s.remote_file("environments/staging/applications/web/version").as_deref(), Some("1"));
    assert_eq!(
        s.remote_file("environments/staging/applications/web/manifests/manifests.yaml").as_deref(),
        Some("web-staging")
    );
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("1"));
    assert_eq!(s.remote_file("environments/dev/locks/freeze/message").as_deref(), Some("m"));
    s.assert_remote_layout();
    let ready = wait_readyz(&s, Duration::from_secs(10), "export caught up", |e| {
        e["last_error"].is_null() && e["pending_commits"] == 0
    });
    assert_eq!(ready["export"]["exported_commit"], local.to_string());

    // And the next write goes straight through (dev is locked: the release is queued there).
    let r = s.release("web", None, &[("dev", "web-dev-2")]);
    r.assert_status(201);
    assert_eq!(r.json["queued"], json!(["dev"]));
    assert_eq!(s.wait_exported().to_string(), r.commit().unwrap());
    assert_eq!(
        s.remote_file("applications/web/releases/2/environments/dev/manifests.yaml").as_deref(),
        Some("web-dev-2")
    );
    assert_eq!(s.remote_file("environments/dev/applications/web/queued_version").as_deref(), Some("2"));
    drop(s);
    drop(daemon);
}

#[test]
fn lock_named_gitmodules_does_not_stop_the_export_to_a_checking_remote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bare = dir.path().join("remote.git");
    assert!(Command::new("git").args(["init", "--bare", "--quiet"]).arg(&bare).status().expect("git").success());
    assert!(Command::new("git")
        .arg("--git-dir")
        .arg(&bare)
        .args(["config", "receive.fsckObjects", "true"])
        .status()
        .expect("git config")
        .success());
    let port = free_port();
    let base = dir.path().to_path_buf();
    let _daemon = GitDaemon::start(&base, port);
    let s = Server::start_in_with_git_url(dir, format!("git://127.0.0.1:{port}/remote.git"), &[]);
    s.create_env("dev", json!({"latest": true}), None);
    s.wait_exported();

    let r = s.put_json("/api/environments/dev/locks/.gitmodules", &json!({"message": "m"}));
    // Either refused as a name (400) or stored in a way the remote accepts.
    assert!(r.status == 200 || r.status == 400, "{}", r.text);
    let after = s.put_json("/api/environments/dev/locks/other", &json!({"message": "m"}));
    after.assert_status(200);
    let local = s.local_head();
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.remote_head() != local {
        assert!(
            Instant::now() < deadline,
            "the remote refuses every push since the `.gitmodules` lock; readyz: {}",
            s.get("/readyz").text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.remote_file("environments/dev/locks/other/message").as_deref(), Some("m"));
}

/// Deploys made while a remote on this machine is down reach it in one push, and the remote is whole. Two
/// environments with the same manifests swap versions within a second, so each app's directory of one commit is
/// the other environment's directory of the commit before, and their `deployed_at_utc` is a file only those
/// commits add: a push that walked its commits newest first skipped it (`git fsck` of the remote: missing blob).
#[test]
fn deploys_that_swap_directories_while_the_remote_is_down_reach_it_whole() {
    let (s, remote) = start_with_a_file_as_remote("remote.git");
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    for v in 1..=2 {
        s.release("web", Some(&v.to_string()), &[("dev", "same"), ("staging", "same")]).assert_status(201);
    }
    // Until both environments' directories were written within one second (each try takes milliseconds).
    let local = |path: &str| railyard_tests::read_file(&s.repo_dir, "refs/heads/main", path);
    let mut swapped = false;
    for _ in 0..5 {
        for (dev, staging) in [(1, 2), (2, 1)] {
            s.deploy("dev", "web", dev, "fail").assert_status(200);
            s.deploy("staging", "web", staging, "fail").assert_status(200);
        }
        let at = |env: &str| local(&format!("environments/{env}/applications/web/deployed_at_utc"));
        if at("dev").is_some() && at("dev") == at("staging") {
            swapped = true;
            break;
        }
    }
    assert!(swapped, "five tries and never two deploys in one second");
    assert_eq!(s.remote_head(), None);

    std::fs::remove_file(&remote).expect("remove file");
    let init = Command::new("git")
        .args(["init", "--bare", "--quiet", "-b", "main"])
        .arg(&remote)
        .status()
        .expect("git init --bare");
    assert!(init.success());
    wait_caught_up(&s, s.local_head().expect("local head"));
    railyard_tests::assert_git_fsck_clean(&remote);
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("2"));
    assert_eq!(s.remote_file("environments/staging/applications/web/version").as_deref(), Some("1"));
}
