//! The release lifecycle against the real binary and a real remote: retention (`--release-versions-limit`), undeploy
//! releases and deleting an application, removing an application from an environment, rollback (deploy and lock),
//! and the CLI commands for each. Every step is one commit or nothing.

use std::process::Command;

use git2::{Oid, Repository};
use railyard_tests::{bin, free_port, GitDaemon, Server};
use serde_json::{json, Value};

fn envs(s: &Server) {
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
}

fn upload(s: &Server, app: &str, manifests: &[(&str, &str)]) -> Value {
    let r = s.release(app, None, manifests);
    r.assert_status(201);
    r.json
}

fn train(s: &Server, env: &str) -> Value {
    let r = s.put_json(&format!("/api/environments/{env}/releasetrain"), &json!({}));
    r.assert_status(200);
    r.json
}

/// The file at `path` in the tree of `commit` on the remote.
fn file_at(s: &Server, commit: &str, path: &str) -> Option<String> {
    s.remote_file_at(commit, path)
}

fn parent(s: &Server, commit: &str) -> String {
    let parents = s.remote_commit_parents(commit);
    assert_eq!(parents.len(), 1, "{commit} has parents {parents:?}");
    parents[0].clone()
}

/// The `Railyard-Request` trailers of a remote commit, as JSON.
fn trailers(s: &Server, commit: &str) -> Vec<Value> {
    s.remote_commit_message(commit)
        .lines()
        .filter_map(|l| l.strip_prefix("Railyard-Request: "))
        .map(|j| serde_json::from_str(j).expect("trailer JSON"))
        .collect()
}

fn release_dirs(s: &Server, app: &str) -> Vec<u64> {
    let prefix = format!("applications/{app}/releases/");
    let mut out: Vec<u64> =
        s.remote_paths().iter().filter_map(|p| p.strip_prefix(&prefix)?.split('/').next()?.parse().ok()).collect();
    out.sort();
    out.dedup();
    out
}

/// Asserts the request made no commit: the local branch is where it was.
fn no_commit(s: &Server, before: Option<Oid>, what: &str) {
    assert_eq!(s.local_head(), before, "{what} made a commit");
}

#[test]
fn retention_deletes_old_releases_in_the_upload_commit_and_never_one_in_use() {
    let s = Server::start_with(&["--release-versions-limit", "3"]);
    envs(&s);
    for _ in 0..3 {
        upload(&s, "web", &[("dev", "d"), ("staging", "s")]);
    }
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    // staging runs 1: everything newer than it stays, however many.
    for _ in 0..5 {
        let r = upload(&s, "web", &[("dev", "d"), ("staging", "s")]);
        assert_eq!(r["deleted_versions"], json!([]), "{r}");
    }
    s.wait_exported();
    assert_eq!(release_dirs(&s, "web"), (1..=8).collect::<Vec<_>>());
    let moved = train(&s, "staging");
    assert_eq!(moved["environments"][0]["deployed"][0]["to"], 8, "{moved}");
    // Now staging runs 8 and dev 9: 8, the 2 before it and everything newer stay; 1..5 go in the upload's commit.
    let r = upload(&s, "web", &[("dev", "d"), ("staging", "s")]);
    assert_eq!(r["version"], 9);
    assert_eq!(r["deleted_versions"], json!([1, 2, 3, 4, 5]), "{r}");
    let commit = r["commit"].as_str().expect("commit").to_owned();
    s.wait_exported();
    assert_eq!(release_dirs(&s, "web"), vec![6, 7, 8, 9]);
    assert!(file_at(&s, &commit, "applications/web/releases/9/created_at").is_some());
    assert!(file_at(&s, &commit, "applications/web/releases/1/created_at").is_none());
    assert!(file_at(&s, &parent(&s, &commit), "applications/web/releases/1/created_at").is_some());
    let msg = s.remote_commit_message(&commit);
    assert!(msg.starts_with("release web 9 (dev, staging), deleting old releases 1, 2, 3, 4, 5\n"), "{msg}");
    let t = &trailers(&s, &commit)[0];
    assert_eq!(t["request"]["retention"], json!({"limit": 3, "deleted": [1, 2, 3, 4, 5]}), "{t}");
    // A deployed release is never deleted, however old: staging back to 6 keeps 6 while uploads go on.
    s.deploy("staging", "web", 6, "fail").assert_status(200);
    for _ in 0..4 {
        upload(&s, "web", &[("dev", "d"), ("staging", "s")]);
    }
    s.wait_exported();
    assert_eq!(release_dirs(&s, "web"), vec![6, 7, 8, 9, 10, 11, 12, 13]);
    assert_eq!(s.remote_file("environments/staging/applications/web/version").as_deref(), Some("6"));
    let listed = s.get("/api/applications/web/releases");
    let versions: Vec<u64> =
        listed.json["releases"].as_array().expect("releases").iter().filter_map(|r| r["version"].as_u64()).collect();
    assert_eq!(versions, vec![13, 12, 11, 10, 9, 8, 7, 6]);
}

#[test]
fn retention_is_replayed_onto_an_adopted_remote_deleting_the_same_releases() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().to_path_buf();
    let remote = base.join("remote.git");
    Repository::init_bare(&remote).expect("remote");
    let port = free_port();
    let daemon = GitDaemon::start(&base, port);
    let s = Server::start_in_with_git_url(
        dir,
        format!("git://127.0.0.1:{port}/remote.git"),
        &["--release-versions-limit", "2"],
    );
    s.create_env("dev", json!({"latest": true}), None);
    for _ in 0..3 {
        upload(&s, "web", &[("dev", "d")]);
    }
    s.wait_exported();
    assert_eq!(release_dirs(&s, "web"), vec![2, 3]);

    drop(daemon);
    let r = upload(&s, "web", &[("dev", "d")]);
    assert_eq!(r["deleted_versions"], json!([2]));
    // Meanwhile someone pushes to the remote by hand.
    let repo = Repository::open_bare(&remote).expect("remote");
    let head = repo.find_commit(repo.refname_to_id("refs/heads/main").expect("head")).expect("commit");
    let mut tb = repo.treebuilder(Some(&head.tree().expect("tree"))).expect("builder");
    tb.insert("README.md", repo.blob(b"by hand\n").expect("blob"), 0o100644).expect("insert");
    let tree = repo.find_tree(tb.write().expect("write")).expect("tree");
    let sig = git2::Signature::now("someone", "someone@example.com").expect("sig");
    let by_hand = repo.commit(None, &sig, &sig, "by hand", &tree, &[&head]).expect("commit");
    repo.reference("refs/heads/main", by_hand, true, "by hand").expect("move");

    let _daemon = GitDaemon::start(&base, port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !s.remote_paths().iter().any(|p| p == "applications/web/releases/4/created_at") {
        assert!(std::time::Instant::now() < deadline, "the replayed upload never reached the remote");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let top = s.wait_exported().to_string();
    assert_eq!(parent(&s, &top), by_hand.to_string());
    assert_eq!(s.remote_file("README.md").as_deref(), Some("by hand\n"));
    assert_eq!(release_dirs(&s, "web"), vec![3, 4]);
    let t = &trailers(&s, &top)[0];
    assert_eq!(t["request"]["retention"], json!({"limit": 2, "deleted": [2]}), "{t}");
}

#[test]
fn undeploy_moves_with_trains_and_delete_app_removes_it_everywhere() {
    let s = Server::start();
    envs(&s);
    upload(&s, "web", &[("dev", "web-dev"), ("staging", "web-staging")]);
    upload(&s, "api", &[("dev", "api-dev"), ("staging", "api-staging")]);
    train(&s, "staging");

    let head = s.local_head();
    s.delete("/api/applications/web").assert_error(409, "not_undeployed", None);
    s.post_json("/api/applications/ghost/undeploy", &json!({})).assert_error(404, "not_found", None);
    s.delete("/api/applications/ghost").assert_error(404, "not_found", None);
    s.post_json("/api/applications/Bad_Name/undeploy", &json!({})).assert_error(400, "invalid_name", None);
    no_commit(&s, head, "refused lifecycle requests");

    let r = s.post_json("/api/applications/web/undeploy", &json!({}));
    r.assert_status(201);
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.json["undeploy"], true);
    assert_eq!(r.json["environments"], json!(["dev", "staging"]));
    assert_eq!(r.json["deployed"], json!(["dev"]));
    let undeploy_commit = r.commit().expect("commit");
    // Asking again answers the same release and changes nothing.
    let again = s.post_json("/api/applications/web/undeploy", &json!({}));
    again.assert_status(200);
    assert_eq!((again.json["version"].as_u64(), again.json["created"].as_bool()), (Some(2), Some(false)));

    s.wait_exported();
    assert_eq!(s.remote_file("applications/web/releases/2/undeploy").as_deref(), Some(""));
    assert_eq!(s.remote_file("applications/web/releases/2/environments/staging/manifests.yaml").as_deref(), Some(""));
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("2"));
    assert_eq!(s.remote_file("environments/dev/applications/web/manifests/manifests.yaml").as_deref(), Some(""));
    assert_eq!(s.remote_commit_message(&undeploy_commit).lines().next(), Some("undeploy release web 2"));
    assert_eq!(
        trailers(&s, &undeploy_commit)[0]["request"],
        json!({"kind": "create-undeploy", "application": "web", "version": 2})
    );
    let releases = s.get("/api/applications/web/releases");
    assert_eq!(releases.json["releases"][0]["undeploy"], true, "{}", releases.text);

    // staging still runs release 1: deleting is refused, naming staging.
    let head = s.local_head();
    let refused = s.delete("/api/applications/web");
    refused.assert_error(409, "application_in_use", None);
    assert_eq!(refused.json["environments"], json!(["staging"]), "{}", refused.text);
    assert!(refused.json["error"].as_str().unwrap_or_default().contains("staging (runs release 1"), "{}", refused.text);
    no_commit(&s, head, "a refused delete");

    // The undeploy release moves with a train like any release; an app lock still holds the delete back.
    let moved = train(&s, "staging");
    assert_eq!(moved["environments"][0]["deployed"], json!([{"application": "web", "from": 1, "to": 2}]), "{moved}");
    s.put_json("/api/environments/staging/applications/web/locks/hold", &json!({"message": "wait"})).assert_status(200);
    let head = s.local_head();
    let locked = s.delete("/api/applications/web");
    locked.assert_error(409, "application_in_use", None);
    assert_eq!(locked.json["environments"], json!(["staging"]));
    assert!(locked.json["error"].as_str().unwrap_or_default().contains("application lock \"hold\""), "{}", locked.text);
    no_commit(&s, head, "a delete held by a lock");
    s.delete("/api/environments/staging/applications/web/locks/hold").assert_status(200);

    let gone = s.delete("/api/applications/web");
    gone.assert_status(200);
    assert_eq!(gone.json["environments"], json!(["dev", "staging"]));
    assert_eq!(gone.json["deleted_versions"], json!([1, 2]));
    let commit = gone.commit().expect("commit");
    s.wait_exported();
    let paths = s.remote_paths();
    assert!(!paths.iter().any(|p| p.starts_with("applications/web/") || p.contains("/applications/web/")), "{paths:?}");
    assert!(paths.iter().any(|p| p == "environments/staging/applications/api/version"), "other apps stay");
    assert_eq!(s.remote_commit_message(&commit).lines().next(), Some("delete application web"));
    s.delete("/api/applications/web").assert_error(404, "not_found", None);
    // A train does not bring a deleted application back.
    let t = train(&s, "staging");
    assert!(!t.to_string().contains("\"web\""), "{t}");
}

#[test]
fn removing_an_app_from_an_environment_keeps_trains_from_bringing_it_back() {
    let s = Server::start();
    envs(&s);
    upload(&s, "web", &[("dev", "web-1"), ("staging", "web-1")]);
    upload(&s, "api", &[("dev", "api-1"), ("staging", "api-1")]);
    train(&s, "staging");

    let head = s.local_head();
    s.delete("/api/environments/nope/applications/web").assert_error(404, "not_found", None);
    s.delete("/api/environments/staging/applications/ghost").assert_error(404, "not_found", None);
    s.put_json("/api/environments/staging/applications/web/locks/hold", &json!({"message": "m"})).assert_status(200);
    let locked_head = s.local_head();
    let locked = s.delete("/api/environments/staging/applications/web");
    locked.assert_error(409, "locked", None);
    assert_eq!(locked.json["locks"][0]["lock_id"], "hold", "{}", locked.text);
    no_commit(&s, locked_head, "a removal held by an app lock");
    assert_ne!(s.local_head(), head);
    s.delete("/api/environments/staging/applications/web/locks/hold").assert_status(200);

    let r = s.delete("/api/environments/staging/applications/web");
    r.assert_status(200);
    assert_eq!((r.json["removed_version"].as_u64(), r.json["changed"].as_bool()), (Some(1), Some(true)));
    let commit = r.commit().expect("commit");
    s.wait_exported();
    assert_eq!(s.remote_commit_message(&commit).lines().next(), Some("remove web from staging"));
    let paths = s.remote_paths();
    assert!(!paths.iter().any(|p| p.starts_with("environments/staging/applications/web/")), "{paths:?}");
    assert!(s.remote_file("environments/staging/removed_applications/web").is_some());
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("1"), "dev keeps it");
    let again = s.delete("/api/environments/staging/applications/web");
    again.assert_status(200);
    assert_eq!(again.json["changed"], false);

    // New releases and trains leave staging without web, and say why.
    upload(&s, "web", &[("dev", "web-2"), ("staging", "web-2")]);
    upload(&s, "api", &[("dev", "api-2"), ("staging", "api-2")]);
    let t = train(&s, "staging");
    let env = &t["environments"][0];
    assert_eq!(env["deployed"], json!([{"application": "api", "from": 1, "to": 2}]), "{t}");
    assert_eq!(env["skipped"], json!([{"application": "web", "reason": "removed_from_environment"}]), "{t}");
    s.wait_exported();
    assert!(s.remote_file("environments/staging/applications/web/version").is_none());

    // An explicit deploy brings it back, and trains move it again.
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    s.wait_exported();
    assert!(s.remote_file("environments/staging/removed_applications/web").is_none());
    let t = train(&s, "staging");
    assert_eq!(t["environments"][0]["deployed"], json!([{"application": "web", "from": 1, "to": 2}]), "{t}");
}

#[test]
fn rollback_deploys_the_previous_release_and_locks_it_in_one_commit() {
    let s = Server::start();
    envs(&s);
    for n in 1..=3 {
        upload(&s, "web", &[("dev", &format!("web-{n}")), ("staging", "s")]);
    }
    let head = s.local_head();
    let path = "/api/environments/dev/applications/web/rollback";
    s.post_json(path, &json!({"version": 3, "message": "m"})).assert_error(400, "invalid_input", Some("version"));
    s.post_json(path, &json!({"version": 7, "message": "m"})).assert_error(400, "invalid_input", Some("version"));
    s.post_json(path, &json!({"version": "x", "message": "m"})).assert_error(400, "invalid_name", Some("version"));
    s.post_json(path, &json!({"version": 1})).assert_error(400, "invalid_input", Some("body"));
    s.post_json(path, &json!({"message": "m", "lockId": "no spaces"})).assert_error(
        400,
        "invalid_name",
        Some("lockId"),
    );
    s.post_json("/api/environments/nope/applications/web/rollback", &json!({"message": "m"})).assert_error(
        404,
        "not_found",
        None,
    );
    s.post_json("/api/environments/staging/applications/web/rollback", &json!({"message": "m"})).assert_error(
        409,
        "not_deployed",
        None,
    );
    no_commit(&s, head, "refused rollbacks");

    let r = s.post_json(path, &json!({"message": "bad release 3"}));
    r.assert_status(200);
    assert_eq!((r.json["version"].as_u64(), r.json["previous_version"].as_u64()), (Some(2), Some(3)), "{}", r.text);
    assert_eq!(r.json["lock"], json!({"lockId": "rollback-2", "message": "bad release 3"}));
    let commit = r.commit().expect("commit");
    s.wait_exported();
    assert_eq!(file_at(&s, &commit, "environments/dev/applications/web/version").as_deref(), Some("2"));
    assert_eq!(
        file_at(&s, &commit, "environments/dev/applications/web/manifests/manifests.yaml").as_deref(),
        Some("web-2")
    );
    assert_eq!(
        file_at(&s, &commit, "environments/dev/applications/web/locks/rollback-2/message").as_deref(),
        Some("bad release 3")
    );
    let before = parent(&s, &commit);
    assert_eq!(file_at(&s, &before, "environments/dev/applications/web/version").as_deref(), Some("3"));
    assert!(file_at(&s, &before, "environments/dev/applications/web/locks/rollback-2/message").is_none());
    let t = &trailers(&s, &commit)[0]["request"];
    assert_eq!(
        (t["kind"].as_str(), t["version"].as_u64(), t["lock_id"].as_str()),
        (Some("rollback"), Some(2), Some("rollback-2"))
    );

    // The lock keeps the next release and train from rolling it forward.
    let next = upload(&s, "web", &[("dev", "web-4"), ("staging", "s")]);
    assert_eq!(next["queued"], json!(["dev"]), "{next}");
    let t = train(&s, "dev");
    assert_eq!(t["environments"][0]["skipped"], json!([{"application": "web", "reason": "application_locked"}]));
    s.wait_exported();
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("2"));

    // An explicit version and lock id; environment and team locks hold a rollback back like a deploy.
    let r = s.post_json(path, &json!({"version": "1", "lockId": "incident-7", "message": "worse"}));
    r.assert_status(200);
    assert_eq!(r.json["lock"]["lockId"], "incident-7");
    s.deploy("staging", "web", 3, "fail").assert_status(200);
    s.put_json("/api/environments/staging/teams/core/locks/t", &json!({"message": "team freeze"})).assert_status(200);
    let head = s.local_head();
    let staging = "/api/environments/staging/applications/web/rollback";
    let team = s.post_json(staging, &json!({"message": "m"}));
    team.assert_error(409, "locked", None);
    assert_eq!(team.json["locks"][0]["scope"], "team", "{}", team.text);
    no_commit(&s, head, "a rollback held by a team lock");
    s.delete("/api/environments/staging/teams/core/locks/t").assert_status(200);
    s.put_json("/api/environments/staging/locks/freeze", &json!({"message": "env freeze"})).assert_status(200);
    s.post_json(staging, &json!({"message": "m"})).assert_error(409, "locked", None);
}

fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("railyard")).arg("--url").arg(&s.url).args(args).output().expect("run railyard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(s: &Server, args: &[&str]) -> String {
    let (code, out, err) = cli(s, args);
    assert_eq!(code, 0, "railyard {args:?}: {out}{err}");
    out
}

#[test]
fn the_cli_rolls_back_removes_undeploys_and_deletes() {
    let s = Server::start();
    envs(&s);
    upload(&s, "web", &[("dev", "1"), ("staging", "1")]);
    upload(&s, "web", &[("dev", "2"), ("staging", "2")]);
    upload(&s, "api", &[("dev", "1"), ("staging", "1")]);
    train(&s, "staging");

    let out = ok(&s, &["rollback", "--environment", "dev", "--application", "web", "--message", "oops"]);
    let line = |out: &str, key: &str| -> String {
        out.lines().find(|l| l.split_whitespace().next() == Some(key)).unwrap_or_default().to_owned()
    };
    assert!(line(&out, "version").ends_with(" 1") && line(&out, "previous_version").ends_with(" 2"), "{out}");
    assert!(line(&out, "lock").contains("rollback-1"), "{out}");
    assert_eq!(s.get("/api/environments/dev/applications/web/locks").json.to_string().matches("rollback-1").count(), 1);
    let json_out = ok(&s, &["--output", "json", "remove-env", "--environment", "staging", "--application", "api"]);
    let v: Value = serde_json::from_str(&json_out).expect("json");
    assert_eq!((v["application"].as_str(), v["removed_version"].as_u64()), (Some("api"), Some(1)), "{v}");
    let out = ok(&s, &["undeploy", "--application", "api"]);
    assert!(line(&out, "undeploy").ends_with(" true") && line(&out, "version").ends_with(" 2"), "{out}");
    let out = ok(&s, &["delete-app", "--application", "api"]);
    assert!(line(&out, "deleted_versions").ends_with(" 1, 2"), "{out}");
    assert!(line(&out, "environments").ends_with(" dev"), "{out}");
    let (code, _, err) = cli(&s, &["delete-app", "--application", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("no undeploy release"), "{err}");
    let (code, _, err) = cli(&s, &["rollback", "--environment", "dev", "--application", "web", "--version", "5"]);
    assert_eq!(code, 1);
    assert!(err.contains("not older"), "{err}");
    s.wait_exported();
    assert!(!s.remote_paths().iter().any(|p| p.starts_with("applications/api/")));
}
