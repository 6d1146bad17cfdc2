//! The exporter as its own process (`railyard-export` beside `railyard-api --export external`), `--once`, the
//! tag-refusal policy and readiness, probes and metrics, and reconciling with a remote changed outside Railyard.

use std::time::{Duration, Instant};

use git2::{Oid, Repository, Signature};
use railyard_tests::{free_port, ExportProcess, GitDaemon, Server};
use serde_json::{json, Value};

fn external(dir: tempfile::TempDir) -> Server {
    let remote = dir.path().join("remote.git");
    Repository::init_bare(&remote).expect("remote");
    Server::start_in_with_git_url(dir, &remote, &["--export", "external"])
}

fn envs(s: &Server) {
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    s.create_env("staging", json!({"environment": "dev"}), None).assert_status(201);
}

fn lock(s: &Server, env: &str, id: &str) -> String {
    let r = s.put_json(&format!("/api/environments/{env}/locks/{id}"), &json!({"message": "m"}));
    r.assert_status(200);
    r.commit().expect("a lock makes a commit")
}

fn tagged_train(s: &Server, tag: &str) -> String {
    let r = s.put_json(&format!("/api/environments/staging/releasetrain?gitTag={tag}"), &json!({}));
    r.assert_status(200);
    assert_eq!(r.json["tag"], tag, "{}", r.text);
    r.commit().expect("a tagged train makes a commit")
}

fn remote_tag(s: &Server, tag: &str) -> Option<Oid> {
    let repo = Repository::open_bare(&s.remote_dir).ok()?;
    let id = repo.find_reference(&format!("refs/tags/{tag}")).ok()?.peel_to_commit().ok()?.id();
    Some(id)
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Moves the remote's tag `tag` to the remote's root commit (someone took the name by hand).
fn take_tag_on_remote(s: &Server, tag: &str) -> Oid {
    let repo = Repository::open_bare(&s.remote_dir).expect("remote");
    let mut walk = repo.revwalk().expect("walk");
    walk.push_head().or_else(|_| walk.push_ref("refs/heads/main")).expect("head");
    let root = walk.last().expect("a commit").expect("oid");
    repo.reference(&format!("refs/tags/{tag}"), root, true, "by hand").expect("tag");
    root
}

#[test]
fn a_separate_exporter_pushes_what_the_api_commits_and_the_api_never_pushes() {
    let s = external(tempfile::tempdir().expect("dir"));
    envs(&s);
    lock(&s, "dev", "a");
    let tagged = tagged_train(&s, "t1");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.remote_head(), None, "with --export external the API itself pushes nothing");
    let r = s.get("/readyz");
    r.assert_status(200);
    assert_eq!(r.json["export"]["mode"], "external");
    assert_eq!(r.json["export"]["pending_commits"], 4, "{}", r.text);
    assert_eq!(r.json["export"]["pending_tags"], 1, "{}", r.text);

    let exporter = ExportProcess::start(&s.repo_dir, &s.remote_dir, &[]);
    s.wait_exported();
    wait_until(Duration::from_secs(10), "tag t1 on the remote", || remote_tag(&s, "t1").is_some());
    assert_eq!(remote_tag(&s, "t1").map(|o| o.to_string()), Some(tagged));
    // later writes follow without any signal from the API (the exporter watches the repo)
    let c = lock(&s, "dev", "b");
    assert_eq!(s.wait_exported().to_string(), c);
    assert!(s.remote_paths().iter().any(|p| p.starts_with("environments/dev/locks/b/")), "{:?}", s.remote_paths());
    let r = s.get("/readyz");
    assert_eq!(r.json["export"]["pending_commits"], 0, "{}", r.text);
    assert!(r.json["export"]["status_age_seconds"].is_i64(), "the exporter's status file is read: {}", r.text);
    assert!(exporter.logs().iter().any(|l| l.contains("exported branch")), "{:?}", exporter.logs());
}

#[test]
fn once_pushes_everything_and_exits_zero() {
    let s = external(tempfile::tempdir().expect("dir"));
    envs(&s);
    tagged_train(&s, "t1");
    let (status, out) = ExportProcess::once(&s.repo_dir, &s.remote_dir, &[]);
    assert!(status.success(), "{out}");
    assert_eq!(s.remote_head(), s.local_head());
    assert!(remote_tag(&s, "t1").is_some());
    assert!(out.contains("export done"), "{out}");
}

#[test]
fn once_fails_with_the_reason_when_the_remote_is_unreachable() {
    let s = external(tempfile::tempdir().expect("dir"));
    envs(&s);
    let url = format!("git://127.0.0.1:{}/remote.git", free_port());
    let (status, out) = ExportProcess::once(&s.repo_dir, &url, &[]);
    assert!(!status.success(), "{out}");
    assert!(out.contains("railyard-export:"), "the reason is printed: {out}");
    assert_eq!(s.remote_head(), None);
}

#[test]
fn a_refused_tag_stops_export_makes_both_unready_and_once_exits_non_zero() {
    let s = external(tempfile::tempdir().expect("dir"));
    envs(&s);
    let (status, out) = ExportProcess::once(&s.repo_dir, &s.remote_dir, &[]);
    assert!(status.success(), "{out}");
    let taken_at = take_tag_on_remote(&s, "release-1");
    tagged_train(&s, "release-1");

    let (status, out) = ExportProcess::once(&s.repo_dir, &s.remote_dir, &[]);
    assert!(!status.success(), "{out}");
    assert!(out.contains("release-1") && out.contains("already exists on the remote"), "{out}");
    assert_eq!(remote_tag(&s, "release-1"), Some(taken_at), "the remote's tag is never moved");

    let exporter = ExportProcess::start(&s.repo_dir, &s.remote_dir, &["--listen", "127.0.0.1:0"]);
    let url = exporter.listen_url();
    let client = s.client();
    wait_until(Duration::from_secs(15), "the exporter to stop", || {
        client.get(format!("{url}/readyz")).send().map(|r| r.status().as_u16() == 503).unwrap_or(false)
    });
    let body: Value = client.get(format!("{url}/readyz")).send().expect("readyz").json().expect("json");
    assert_eq!(body["ready"], false);
    assert!(body["export"]["stopped"].as_str().is_some_and(|m| m.contains("release-1")), "{body}");
    let metrics = client.get(format!("{url}/metrics")).send().expect("metrics").text().expect("text");
    assert!(metrics.contains("railyard_export_stopped 1"), "{metrics}");
    assert_eq!(client.get(format!("{url}/healthz")).send().expect("healthz").status().as_u16(), 200);
    // the API beside it reads the exporter's status: not ready either, and says why
    let r = s.get("/readyz");
    r.assert_status(503);
    assert_eq!(r.json["ready"], false);
    assert!(r.json["export"]["stopped"].as_str().is_some_and(|m| m.contains("release-1")), "{}", r.text);
    // writes are still accepted and durable locally
    lock(&s, "dev", "still-writable");
}

#[test]
fn with_fail_on_error_false_a_refused_tag_is_recorded_and_export_goes_on() {
    let s = external(tempfile::tempdir().expect("dir"));
    envs(&s);
    ExportProcess::once(&s.repo_dir, &s.remote_dir, &[]);
    take_tag_on_remote(&s, "release-1");
    let commit = tagged_train(&s, "release-1");
    let c2 = lock(&s, "dev", "after");
    let (status, out) =
        ExportProcess::once(&s.repo_dir, &s.remote_dir, &["--fail-on-error-with-git-push-tags", "false"]);
    assert!(status.success(), "{out}");
    assert_eq!(s.remote_head().map(|o| o.to_string()), Some(c2));
    let local = Repository::open_bare(&s.repo_dir).expect("local");
    assert_eq!(local.refname_to_id("refs/railyard/failed-tags/release-1").expect("recorded").to_string(), commit);
    assert!(local.find_reference("refs/railyard/pending-tags/release-1").is_err());
}

#[test]
fn export_boolean_flags_take_the_bare_form_and_equals() {
    let s = external(tempfile::tempdir().expect("dir"));
    envs(&s);
    ExportProcess::once(&s.repo_dir, &s.remote_dir, &[]);
    take_tag_on_remote(&s, "release-1");
    tagged_train(&s, "release-1");
    // bare: true, the refused tag stops the round
    let (status, out) = ExportProcess::once(&s.repo_dir, &s.remote_dir, &["--fail-on-error-with-git-push-tags"]);
    assert!(!status.success(), "bare --fail-on-error-with-git-push-tags is true: {out}");
    assert!(out.contains("release-1"), "{out}");
    // =false: recorded and skipped
    let (status, out) = ExportProcess::once(&s.repo_dir, &s.remote_dir, &["--fail-on-error-with-git-push-tags=false"]);
    assert!(status.success(), "{out}");
    let local = Repository::open_bare(&s.repo_dir).expect("local");
    assert!(local.find_reference("refs/railyard/failed-tags/release-1").is_ok());
}

#[test]
fn embedded_export_stopped_by_a_refused_tag_makes_the_api_unready() {
    let s = Server::start();
    envs(&s);
    s.wait_exported();
    take_tag_on_remote(&s, "release-1");
    tagged_train(&s, "release-1");
    wait_until(Duration::from_secs(15), "/readyz 503", || s.get("/readyz").status == 503);
    let r = s.get("/readyz");
    assert!(r.json["export"]["stopped"].as_str().is_some_and(|m| m.contains("release-1")), "{}", r.text);
    assert!(s.logs().iter().any(|l| l.contains("export stopped")), "a log line says why");
    let m = s.get("/metrics");
    m.assert_status(200);
    assert!(m.text.contains("railyard_export_stopped 1"), "{}", m.text);
}

#[test]
fn metrics_show_export_lag_and_counters() {
    let s = Server::start();
    envs(&s);
    s.wait_exported();
    let m = s.get("/metrics");
    m.assert_status(200);
    for name in [
        "railyard_export_lag_commits 0",
        "railyard_export_lag_tags 0",
        "railyard_export_lag_oldest_seconds",
        "railyard_export_pushes_total",
        "railyard_export_push_failures_total",
        "railyard_writer_queue_depth",
        "railyard_writer_commits_total 2",
        "railyard_writer_batch_size_count 2",
        "railyard_writer_commit_seconds_bucket",
        "railyard_writer_sync_seconds_count 2",
        "railyard_http_requests_total{method=\"POST\",route=\"/api/environments\",status=\"201\"} 2",
        "railyard_http_request_seconds_bucket",
    ] {
        assert!(m.text.contains(name), "{name} missing from:\n{}", m.text);
    }
    // The syncs are part of each commit's time, and take some (two syncfs calls per batch on Linux).
    let sum = |name: &str| -> f64 {
        let line = m.text.lines().find(|l| l.starts_with(&format!("{name}_sum "))).expect("sum");
        line.split(' ').nth(1).and_then(|v| v.parse().ok()).expect("a number")
    };
    let (sync, commit) = (sum("railyard_writer_sync_seconds"), sum("railyard_writer_commit_seconds"));
    assert!(sync <= commit, "sync {sync} s > commit {commit} s");
    if cfg!(target_os = "linux") {
        assert!(sync > 0.0, "no time flushing: {}", m.text);
    }
    // external mode: lag is read from the repo
    let s = external(tempfile::tempdir().expect("dir"));
    envs(&s);
    let m = s.get("/metrics");
    assert!(m.text.contains("railyard_export_lag_commits 2"), "{}", m.text);
}

/// Commits `files` on top of the remote's branch, as someone with push access would.
fn commit_on_remote(remote: &std::path::Path, files: &[(&str, Option<&str>)], message: &str) -> Oid {
    let repo = Repository::open_bare(remote).expect("remote");
    let head = repo.find_commit(repo.refname_to_id("refs/heads/main").expect("head")).expect("commit");
    let mut tree = head.tree().expect("tree");
    for (path, content) in files {
        tree = edit(&repo, &tree, path, *content);
    }
    let sig = Signature::now("someone", "someone@example.com").expect("sig");
    let oid = repo.commit(None, &sig, &sig, message, &tree, &[&head]).expect("commit");
    repo.reference("refs/heads/main", oid, true, "by hand").expect("move");
    oid
}

/// `tree` with `path` set to `content` (None: removed, file or directory).
fn edit<'r>(repo: &'r Repository, tree: &git2::Tree<'r>, path: &str, content: Option<&str>) -> git2::Tree<'r> {
    let (first, rest) = path.split_once('/').map_or((path, None), |(a, b)| (a, Some(b)));
    let mut b = repo.treebuilder(Some(tree)).expect("builder");
    match (rest, content) {
        (None, None) => {
            let _ = b.remove(first);
        }
        (None, Some(c)) => {
            b.insert(first, repo.blob(c.as_bytes()).expect("blob"), 0o100644).expect("insert");
        }
        (Some(rest), _) => {
            let sub = match tree.get_name(first) {
                Some(e) => repo.find_tree(e.id()).expect("subtree"),
                None => repo.find_tree(repo.treebuilder(None).expect("b").write().expect("empty")).expect("tree"),
            };
            let sub = edit(repo, &sub, rest, content);
            b.insert(first, sub.id(), 0o040000).expect("insert");
        }
    }
    repo.find_tree(b.write().expect("write")).expect("tree")
}

#[test]
fn a_remote_branch_moved_outside_railyard_is_adopted_and_unpushed_writes_replayed_on_top() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().to_path_buf();
    let remote = base.join("remote.git");
    Repository::init_bare(&remote).expect("remote");
    let port = free_port();
    let daemon = GitDaemon::start(&base, port);
    let s = Server::start_in_with_git_url(dir, format!("git://127.0.0.1:{port}/remote.git"), &[]);
    envs(&s);
    s.create_env("prod", json!({"environment": "staging"}), None).assert_status(201);
    s.wait_exported();

    // The remote goes away; writes go on and are acknowledged.
    drop(daemon);
    lock(&s, "dev", "kept");
    lock(&s, "prod", "doomed");
    // Meanwhile someone pushes to the remote directly: a README, and prod removed.
    let by_hand =
        commit_on_remote(&remote, &[("README.md", Some("hand made\n")), ("environments/prod", None)], "by hand");

    let _daemon = GitDaemon::start(&base, port);
    wait_until(Duration::from_secs(90), "the replayed writes on the remote", || {
        s.remote_paths().iter().any(|p| p.starts_with("environments/dev/locks/kept/"))
    });
    let head = s.wait_exported();
    // Linear: the hand-made commit, then one commit per replayed local commit.
    let repo = Repository::open_bare(&remote).expect("remote");
    let top = repo.find_commit(head).expect("head");
    assert_eq!(top.parent_count(), 1);
    let middle = top.parent(0).expect("parent");
    assert_eq!(middle.parent_id(0).expect("grandparent"), by_hand);
    assert_eq!(s.remote_file("README.md").as_deref(), Some("hand made\n"));
    assert!(!s.remote_paths().iter().any(|p| p.starts_with("environments/prod/")), "prod stays removed");
    // The request that no longer applies is recorded with its reason in the replayed commit, not dropped.
    let msg = top.message().expect("message");
    assert!(msg.contains("Railyard-Failed-Request: ") && msg.contains("doomed") && msg.contains("prod"), "{msg}");
    assert!(middle.message().expect("message").contains("Railyard-Replayed-From: "));
    assert!(s.logs().iter().any(|l| l.contains("adopted it")), "a log line says what happened");
    let r = s.get("/readyz");
    assert_eq!(r.json["ready"], true, "{}", r.text);
    // and new writes build on the adopted branch
    let c = lock(&s, "dev", "after");
    assert_eq!(s.wait_exported().to_string(), c);
}
