//! Release trains end to end (SPEC §4.2, §5): the real `railyard-api` with its embedded exporter, real git
//! repositories, and assertions on what lands in the remote.

use std::process::Command;
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use railyard_tests::{bin, Server};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------------------------
// helpers (kept in this file: the shared harness only provides the server and the remote readers)
// ---------------------------------------------------------------------------------------------------------------

/// An HTTP answer: status, body text, body as JSON (`Value::Null` when it is not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    text: String,
    json: Value,
}

impl Answer {
    fn from(r: reqwest::blocking::Response) -> Self {
        let status = r.status().as_u16();
        let text = r.text().expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, text, json }
    }

    fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self
    }

    /// Asserts an error answer `{"error": "...", "code": code}`.
    fn expect_error(self, status: u16, code: &str) -> Self {
        let s = self.expect(status);
        assert!(s.json["error"].as_str().is_some_and(|m| !m.is_empty()), "error answer without a message: {}", s.text);
        assert_eq!(s.json["code"], code, "unexpected code; body: {}", s.text);
        s
    }

    /// The answered commit (None: `null`); panics if the member is missing or not a sha.
    fn commit(&self) -> Option<String> {
        match self.json.get("commit") {
            Some(Value::Null) => None,
            Some(Value::String(c)) if c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()) => Some(c.clone()),
            other => panic!("bad commit member {other:?} in {}", self.text),
        }
    }

    /// The part of a train's answer about one environment.
    fn env(&self, env: &str) -> &Value {
        self.json["environments"]
            .as_array()
            .unwrap_or_else(|| panic!("no environments in {}", self.text))
            .iter()
            .find(|e| e["environment"] == env)
            .unwrap_or_else(|| panic!("no environment {env} in {}", self.text))
    }

    /// `(application, from, to)` of every app the train moved in `env`, sorted.
    fn deployed(&self, env: &str) -> Vec<(String, Option<u64>, u64)> {
        let mut out: Vec<_> = self.env(env)["deployed"]
            .as_array()
            .unwrap_or_else(|| panic!("no deployed list in {}", self.text))
            .iter()
            .map(|d| {
                (
                    d["application"].as_str().expect("application").to_owned(),
                    d["from"].as_u64(),
                    d["to"].as_u64().unwrap_or_else(|| panic!("bad to in {d}")),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// `(application, reason)` of every app the train skipped in `env`, sorted.
    fn skipped(&self, env: &str) -> Vec<(String, String)> {
        let mut out: Vec<_> = self.env(env)["skipped"]
            .as_array()
            .unwrap_or_else(|| panic!("no skipped list in {}", self.text))
            .iter()
            .map(|s| {
                (
                    s["application"].as_str().expect("application").to_owned(),
                    s["reason"].as_str().expect("reason").to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

fn send(r: reqwest::blocking::RequestBuilder) -> Answer {
    Answer::from(r.send().expect("request"))
}

fn put_json(s: &Server, path: &str, body: &Value) -> Answer {
    send(s.client().put(s.at(path)).json(body))
}

fn delete(s: &Server, path: &str) -> Answer {
    send(s.client().delete(s.at(path)))
}

/// Creates an environment (upstream None: no upstream at all); asserts 201.
fn env(s: &Server, name: &str, upstream: Option<Value>, group: Option<&str>) {
    let mut body = json!({ "name": name });
    if let Some(u) = upstream {
        body["upstream"] = u;
    }
    if let Some(g) = group {
        body["environmentGroup"] = json!(g);
    }
    send(s.client().post(s.at("/api/environments")).json(&body)).expect(201);
}

fn latest() -> Option<Value> {
    Some(json!({"latest": true}))
}

fn from(upstream: &str) -> Option<Value> {
    Some(json!({ "environment": upstream }))
}

/// Uploads release `version` of `app` (team `team`) with one manifest per env (see [`manifest`]); asserts 201.
fn release(s: &Server, app: &str, team: &str, version: u64, envs: &[&str]) {
    // Built by hand: reqwest's multipart form would send `manifests[review/x]` as an RFC 5987 `name*=` parameter.
    let boundary = "release-trains-boundary-3n9Qx";
    let mut parts = vec![
        ("application".to_owned(), app.to_owned()),
        ("team".to_owned(), team.to_owned()),
        ("source_commit_id".to_owned(), "0123abc".to_owned()),
        ("version".to_owned(), version.to_string()),
    ];
    parts.extend(envs.iter().map(|e| (format!("manifests[{e}]"), manifest(app, version, e))));
    let mut body = String::new();
    for (name, value) in parts {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let a = send(
        s.client()
            .post(s.at("/api/release"))
            .header(reqwest::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(body),
    )
    .expect(201);
    assert_eq!(a.json["version"], version, "{}", a.text);
}

/// The manifest content [`release`] uploads.
fn manifest(app: &str, version: u64, env: &str) -> String {
    format!("# {app} release {version} for {env}\nkind: Deployment\n")
}

fn deploy(s: &Server, env: &str, app: &str, version: u64, lock_behavior: &str) -> Answer {
    put_json(
        s,
        &format!("/api/environments/{env}/applications/{app}/deploy"),
        &json!({ "version": version, "lockBehavior": lock_behavior }),
    )
}

fn lock(s: &Server, path: &str) {
    let a = put_json(s, path, &json!({ "message": "hold on" }));
    assert!(matches!(a.status, 200 | 201), "lock {path}: {} {}", a.status, a.text);
}

/// `PUT <target>/releasetrain` with the query as given (`target` e.g. `/api/environments/staging`).
fn train(s: &Server, target: &str, query: &[(&str, &str)]) -> Answer {
    send(s.client().put(s.at(&format!("{target}/releasetrain"))).query(query))
}

fn train_env(s: &Server, env: &str, query: &[(&str, &str)]) -> Answer {
    train(s, &format!("/api/environments/{env}"), query)
}

fn train_group(s: &Server, group: &str, query: &[(&str, &str)]) -> Answer {
    train(s, &format!("/api/environment-groups/{group}"), query)
}

fn prognosis(s: &Server, env: &str, query: &[(&str, &str)]) -> Answer {
    send(s.client().get(s.at(&format!("/api/environments/{env}/releasetrain/prognosis"))).query(query))
}

/// A train that must succeed with a commit: asserts 200, waits for the export and checks the remote head is
/// the answered commit.
fn train_ok(s: &Server, env: &str, query: &[(&str, &str)]) -> Answer {
    let a = train_env(s, env, query).expect(200);
    let commit = a.commit().unwrap_or_else(|| panic!("train made no commit: {}", a.text));
    assert_eq!(s.wait_exported().to_string(), commit, "the remote head is not the train's commit");
    a
}

fn version_path(env: &str, app: &str) -> String {
    format!("environments/{env}/applications/{app}/version")
}

fn manifest_path(env: &str, app: &str) -> String {
    format!("environments/{env}/applications/{app}/manifests/manifests.yaml")
}

/// Asserts what the remote has for `app` in `env`: `Some(v)` → version file `v` and the manifest of release `v`
/// for `env`; `None` → neither file.
fn assert_remote_app(s: &Server, env: &str, app: &str, version: Option<u64>) {
    match version {
        Some(v) => {
            assert_eq!(s.remote_file(&version_path(env, app)), Some(v.to_string()), "{app} in {env}");
            assert_eq!(s.remote_file(&manifest_path(env, app)), Some(manifest(app, v, env)), "{app} in {env}");
        }
        None => {
            assert_eq!(s.remote_file(&version_path(env, app)), None, "{app} in {env} should not be deployed");
            assert_eq!(s.remote_file(&manifest_path(env, app)), None, "{app} in {env} should have no manifests");
        }
    }
}

/// The commit a tag peels to in the bare repo at `dir`.
fn tag_commit(dir: &std::path::Path, tag: &str) -> Option<Oid> {
    let repo = Repository::open_bare(dir).ok()?;
    let r = repo.find_reference(&format!("refs/tags/{tag}")).ok()?;
    r.peel_to_commit().ok().map(|c| c.id())
}

/// Every tag name on the remote.
fn remote_tags(s: &Server) -> Vec<String> {
    let repo = Repository::open_bare(&s.remote_dir).expect("remote");
    let mut out: Vec<String> = repo
        .references_glob("refs/tags/*")
        .expect("tags")
        .flatten()
        .filter_map(|r| r.name().ok().map(|n| n.trim_start_matches("refs/tags/").to_owned()))
        .collect();
    out.sort();
    out
}

/// Waits (≤ 30 s) until the remote has `refs/tags/<tag>` and returns the commit it names.
fn wait_remote_tag(s: &Server, tag: &str) -> Oid {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(c) = tag_commit(&s.remote_dir, tag) {
            return c;
        }
        assert!(Instant::now() < deadline, "tag {tag} never reached the remote (tags there: {:?})", remote_tags(s));
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The commit `<tag>^{commit}` names in the remote, as git itself reads it.
fn git_rev_parse(s: &Server, tag: &str) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&s.remote_dir)
        .args(["rev-parse", &format!("refs/tags/{tag}^{{commit}}")])
        .output()
        .expect("run git");
    assert!(out.status.success(), "git rev-parse {tag}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

/// Waits until everything is exported and the exporter has gone idle. Used before every train that requests a
/// tag: the exporter drops a pending tag whose commit lands while it is busy (see
/// `acknowledged_git_tags_are_never_dropped`), and these tests are about something else.
fn settle(s: &Server) {
    s.wait_exported();
    std::thread::sleep(Duration::from_millis(300));
    s.wait_exported();
}

/// The state that must not move when a request writes nothing: local head, remote head, remote commit count.
fn snapshot(s: &Server) -> (Option<Oid>, Option<Oid>, usize) {
    (s.local_head(), s.remote_head(), s.remote_commit_count())
}

/// Asserts that nothing was written since `before` (gives a would-be commit time to be exported first).
fn assert_nothing_written(s: &Server, before: (Option<Oid>, Option<Oid>, usize), what: &str) {
    std::thread::sleep(Duration::from_millis(300));
    s.wait_exported();
    assert_eq!(snapshot(s), before, "{what} wrote something");
}

fn strs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// 1. dev → staging → prod
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn chain_dev_staging_prod_moves_releases_along() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    env(&s, "prod", from("staging"), None);
    let all = ["dev", "staging", "prod"];
    release(&s, "web", "core", 1, &all);
    release(&s, "api", "core", 1, &all);
    s.wait_exported();
    assert_remote_app(&s, "dev", "web", Some(1));
    assert_remote_app(&s, "dev", "api", Some(1));
    assert_remote_app(&s, "staging", "web", None);

    // prod's upstream has nothing yet: nothing moves
    let a = train_ok(&s, "prod", &[]);
    assert_eq!(a.env("prod")["source"], "staging");
    assert!(a.deployed("prod").is_empty(), "{}", a.text);
    assert_remote_app(&s, "prod", "web", None);

    let a = train_ok(&s, "staging", &[]);
    assert_eq!(a.json["environments"].as_array().map(Vec::len), Some(1), "{}", a.text);
    assert_eq!(a.env("staging")["source"], "dev");
    assert_eq!(a.deployed("staging"), vec![("api".into(), None, 1), ("web".into(), None, 1)]);
    assert!(a.skipped("staging").is_empty(), "{}", a.text);
    assert_eq!(a.json["tag"], Value::Null);
    assert_remote_app(&s, "staging", "web", Some(1));
    assert_remote_app(&s, "staging", "api", Some(1));
    assert_remote_app(&s, "prod", "web", None);

    // a new release lands in dev only
    release(&s, "web", "core", 2, &all);
    s.wait_exported();
    assert_remote_app(&s, "dev", "web", Some(2));
    assert_remote_app(&s, "staging", "web", Some(1));

    let a = train_ok(&s, "prod", &[]);
    assert_eq!(a.deployed("prod"), vec![("api".into(), None, 1), ("web".into(), None, 1)]);
    assert_remote_app(&s, "prod", "web", Some(1));
    assert_remote_app(&s, "prod", "api", Some(1));

    let a = train_ok(&s, "staging", &[]);
    assert_eq!(a.deployed("staging"), vec![("web".into(), Some(1), 2)]);
    assert_eq!(a.skipped("staging"), strs(&[("api", "already_deployed")]));
    assert_remote_app(&s, "staging", "web", Some(2));
    assert_remote_app(&s, "prod", "web", Some(1));

    let a = train_ok(&s, "prod", &[]);
    assert_eq!(a.deployed("prod"), vec![("web".into(), Some(1), 2)]);
    assert_remote_app(&s, "prod", "web", Some(2));
    assert_remote_app(&s, "prod", "api", Some(1));
    assert_remote_app(&s, "dev", "web", Some(2));

    // nothing left to move
    let a = train_ok(&s, "prod", &[]);
    assert!(a.deployed("prod").is_empty(), "{}", a.text);
    assert_eq!(a.skipped("prod"), strs(&[("api", "already_deployed"), ("web", "already_deployed")]));
    assert_remote_app(&s, "prod", "web", Some(2));
}

// ---------------------------------------------------------------------------------------------------------------
// 2. group train
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn group_train_moves_every_env_of_the_group_in_one_commit() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    env(&s, "de", from("dev"), Some("prod"));
    env(&s, "us", from("staging"), Some("prod"));
    let all = ["dev", "staging", "de", "us"];
    release(&s, "web", "core", 1, &all);
    train_ok(&s, "staging", &[]);
    release(&s, "web", "core", 2, &all);
    let head = s.wait_exported();
    let before = s.remote_commit_count();

    let a = train_group(&s, "prod", &[]).expect(200);
    let commit = a.commit().expect("a commit");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_commit_count(), before + 1, "a group train is one commit");
    let repo = Repository::open_bare(&s.remote_dir).expect("remote");
    let c = repo.find_commit(Oid::from_str(&commit).expect("sha")).expect("commit");
    assert_eq!(c.parent_ids().collect::<Vec<_>>(), vec![head]);

    assert_eq!(a.json["environments"].as_array().map(Vec::len), Some(2), "{}", a.text);
    assert_eq!(a.env("de")["source"], "dev");
    assert_eq!(a.env("us")["source"], "staging");
    assert_eq!(a.deployed("de"), vec![("web".into(), None, 2)]);
    assert_eq!(a.deployed("us"), vec![("web".into(), None, 1)]);
    assert_remote_app(&s, "de", "web", Some(2));
    assert_remote_app(&s, "us", "web", Some(1));
    assert_remote_app(&s, "staging", "web", Some(1));
}

// ---------------------------------------------------------------------------------------------------------------
// 3. team filter
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn team_filter_moves_only_that_teams_apps() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    release(&s, "web", "alpha", 1, &["dev", "staging"]);
    release(&s, "db", "alpha", 1, &["dev", "staging"]);
    release(&s, "api", "beta", 1, &["dev", "staging"]);

    let a = train_ok(&s, "staging", &[("team", "alpha")]);
    assert_eq!(a.deployed("staging"), vec![("db".into(), None, 1), ("web".into(), None, 1)]);
    assert_eq!(a.skipped("staging"), strs(&[("api", "team_filtered")]));
    assert_remote_app(&s, "staging", "web", Some(1));
    assert_remote_app(&s, "staging", "db", Some(1));
    assert_remote_app(&s, "staging", "api", None);

    let a = train_ok(&s, "staging", &[("team", "beta")]);
    assert_eq!(a.deployed("staging"), vec![("api".into(), None, 1)]);
    assert_eq!(a.skipped("staging"), strs(&[("db", "team_filtered"), ("web", "team_filtered")]));
    assert_remote_app(&s, "staging", "api", Some(1));

    // a team nobody has: everything filtered, nothing moves
    release(&s, "web", "alpha", 2, &["dev", "staging"]);
    let a = train_ok(&s, "staging", &[("team", "gamma")]);
    assert!(a.deployed("staging").is_empty(), "{}", a.text);
    assert_eq!(
        a.skipped("staging"),
        strs(&[("api", "team_filtered"), ("db", "team_filtered"), ("web", "team_filtered")])
    );
    assert_remote_app(&s, "staging", "web", Some(1));
}

// ---------------------------------------------------------------------------------------------------------------
// 4. skip reasons
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn every_skip_reason_the_server_produces() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    env(&s, "qa", from("dev"), None);
    env(&s, "lonely", None, None);
    release(&s, "free", "core", 1, &["dev", "staging", "qa"]);
    release(&s, "applock", "core", 1, &["dev", "staging"]);
    release(&s, "teamlock", "ops", 1, &["dev", "staging"]);
    release(&s, "nomani", "core", 1, &["dev"]);
    release(&s, "orphan", "core", 1, &["staging", "lonely"]);
    release(&s, "already", "core", 1, &["dev", "staging"]);
    deploy(&s, "staging", "orphan", 1, "ignore").expect(200);
    deploy(&s, "staging", "already", 1, "ignore").expect(200);
    deploy(&s, "lonely", "orphan", 1, "ignore").expect(200);
    lock(&s, "/api/environments/staging/applications/applock/locks/hold");
    lock(&s, "/api/environments/staging/teams/ops/locks/hold");
    lock(&s, "/api/environments/qa/locks/freeze");
    s.wait_exported();
    assert_remote_app(&s, "dev", "orphan", None);

    // team_filtered (orphan, not in the source, may be reported either way)
    let a = train_ok(&s, "staging", &[("team", "nobody")]);
    assert!(a.deployed("staging").is_empty(), "{}", a.text);
    let skipped = a.skipped("staging");
    let apps: Vec<&str> = skipped.iter().map(|(app, _)| app.as_str()).collect();
    assert_eq!(apps, ["already", "applock", "free", "nomani", "orphan", "teamlock"], "{}", a.text);
    for (app, reason) in &skipped {
        let ok = reason == "team_filtered" || (app == "orphan" && reason == "not_in_source");
        assert!(ok, "{app}: {reason} in {}", a.text);
    }
    assert_remote_app(&s, "staging", "free", None);

    // application_locked, team_locked, not_in_source, no_manifest_for_environment, already_deployed
    let a = train_ok(&s, "staging", &[]);
    assert_eq!(a.deployed("staging"), vec![("free".into(), None, 1)]);
    assert_eq!(
        a.skipped("staging"),
        strs(&[
            ("already", "already_deployed"),
            ("applock", "application_locked"),
            ("nomani", "no_manifest_for_environment"),
            ("orphan", "not_in_source"),
            ("teamlock", "team_locked"),
        ])
    );
    assert_remote_app(&s, "staging", "free", Some(1));
    assert_remote_app(&s, "staging", "applock", None);
    assert_remote_app(&s, "staging", "teamlock", None);
    assert_remote_app(&s, "staging", "nomani", None);
    assert_remote_app(&s, "staging", "orphan", Some(1));
    assert_remote_app(&s, "staging", "already", Some(1));
    assert!(s.remote_file("environments/staging/applications/applock/locks/hold/message").is_some());

    // environment_locked: the locked env moves nothing
    let a = train_ok(&s, "qa", &[]);
    assert!(a.deployed("qa").is_empty(), "{}", a.text);
    let skipped = a.skipped("qa");
    assert!(skipped.contains(&("free".into(), "environment_locked".into())), "{}", a.text);
    assert!(skipped.iter().all(|(_, r)| r == "environment_locked" || r == "no_manifest_for_environment"), "{}", a.text);
    assert_remote_app(&s, "qa", "free", None);

    // no_upstream: every app of the env is held back, source null
    let a = train_ok(&s, "lonely", &[]);
    assert_eq!(a.env("lonely")["source"], Value::Null, "{}", a.text);
    assert!(a.deployed("lonely").is_empty(), "{}", a.text);
    assert_eq!(a.skipped("lonely"), strs(&[("orphan", "no_upstream")]));
    assert_remote_app(&s, "lonely", "orphan", Some(1));
}

#[test]
fn a_train_moving_an_app_clears_its_queued_version() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    release(&s, "web", "core", 1, &["dev", "staging"]);
    train_ok(&s, "staging", &[]);
    lock(&s, "/api/environments/staging/applications/web/locks/hold");
    release(&s, "web", "core", 2, &["dev", "staging"]);
    let a = deploy(&s, "staging", "web", 2, "queue").expect(200);
    assert_eq!(a.json["queued"], true, "{}", a.text);
    s.wait_exported();
    let queued = "environments/staging/applications/web/queued_version";
    assert_eq!(s.remote_file(queued).as_deref(), Some("2"));
    assert_remote_app(&s, "staging", "web", Some(1));

    // still locked: held back, still queued
    let a = train_ok(&s, "staging", &[]);
    assert_eq!(a.skipped("staging"), strs(&[("web", "application_locked")]));
    assert_eq!(s.remote_file(queued).as_deref(), Some("2"));

    delete(&s, "/api/environments/staging/applications/web/locks/hold").expect(200);
    let a = train_ok(&s, "staging", &[]);
    assert_eq!(a.deployed("staging"), vec![("web".into(), Some(1), 2)]);
    assert_remote_app(&s, "staging", "web", Some(2));
    assert_eq!(s.remote_file(queued), None, "the queued version must be gone once the train moved the app");
}

// ---------------------------------------------------------------------------------------------------------------
// 5. sourceGitTag
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn train_from_a_source_git_tag_deploys_the_tagged_versions() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    env(&s, "prod", from("staging"), None);
    let all = ["dev", "staging", "prod"];
    release(&s, "web", "core", 1, &all);
    release(&s, "api", "core", 1, &all);
    settle(&s);
    let a = train_ok(&s, "staging", &[("gitTag", "t1")]);
    assert_eq!(a.json["tag"], "t1");

    // newer releases, and staging moves on
    release(&s, "web", "core", 2, &all);
    release(&s, "api", "core", 2, &all);
    train_ok(&s, "staging", &[]);
    assert_remote_app(&s, "staging", "web", Some(2));

    let a = train_ok(&s, "prod", &[("sourceGitTag", "t1")]);
    assert_eq!(a.env("prod")["source"], "staging");
    assert_eq!(a.deployed("prod"), vec![("api".into(), None, 1), ("web".into(), None, 1)]);
    assert_remote_app(&s, "prod", "web", Some(1));
    assert_remote_app(&s, "prod", "api", Some(1));

    // the same train again from the tag: already there
    let a = train_ok(&s, "prod", &[("sourceGitTag", "t1")]);
    assert!(a.deployed("prod").is_empty(), "{}", a.text);
    assert_eq!(a.skipped("prod"), strs(&[("api", "already_deployed"), ("web", "already_deployed")]));

    // from the current state prod catches up
    let a = train_ok(&s, "prod", &[]);
    assert_eq!(a.deployed("prod"), vec![("api".into(), Some(1), 2), ("web".into(), Some(1), 2)]);
    assert_remote_app(&s, "prod", "web", Some(2));
}

#[test]
fn train_of_a_latest_env_from_a_source_git_tag_uses_the_releases_known_then() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "edge", latest(), None);
    release(&s, "web", "core", 1, &["dev", "edge"]);
    settle(&s);
    train_ok(&s, "dev", &[("gitTag", "before-2")]);
    // edge is locked, so release 2 does not reach it at once
    lock(&s, "/api/environments/edge/locks/freeze");
    release(&s, "web", "core", 2, &["dev", "edge"]);
    delete(&s, "/api/environments/edge/locks/freeze").expect(200);
    s.wait_exported();
    assert_remote_app(&s, "edge", "web", Some(1));

    let a = train_ok(&s, "edge", &[("sourceGitTag", "before-2")]);
    assert_eq!(a.env("edge")["source"], "latest");
    assert!(a.deployed("edge").is_empty(), "release 2 did not exist at the tag: {}", a.text);
    assert_remote_app(&s, "edge", "web", Some(1));

    let a = train_ok(&s, "edge", &[]);
    assert_eq!(a.deployed("edge"), vec![("web".into(), Some(1), 2)]);
    assert_remote_app(&s, "edge", "web", Some(2));
}

// ---------------------------------------------------------------------------------------------------------------
// 6. gitTag on the remote
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn git_tag_lands_on_the_remote_on_the_trains_commit() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    release(&s, "web", "core", 1, &["dev", "staging"]);

    let tag = "release/2026-11-23";
    settle(&s);
    let a = train_ok(&s, "staging", &[("gitTag", tag)]);
    assert_eq!(a.json["tag"], tag);
    let commit = a.commit().expect("commit");
    let on_remote = wait_remote_tag(&s, tag);
    assert_eq!(on_remote.to_string(), commit, "the tag must name the train's commit");
    assert_eq!(git_rev_parse(&s, tag), commit);
    assert_remote_app(&s, "staging", "web", Some(1));

    // later commits do not move the tag
    release(&s, "web", "core", 2, &["dev", "staging"]);
    settle(&s);
    let b = train_ok(&s, "staging", &[("gitTag", "second")]);
    let second = b.commit().expect("commit");
    assert_ne!(second, commit);
    assert_eq!(wait_remote_tag(&s, "second").to_string(), second);
    assert_eq!(git_rev_parse(&s, tag), commit);

    // an existing tag name: 409, nothing written (real train and dry run alike)
    release(&s, "web", "core", 3, &["dev", "staging"]);
    s.wait_exported();
    let before = snapshot(&s);
    train_env(&s, "staging", &[("gitTag", tag)]).expect_error(409, "tag_exists");
    train_env(&s, "staging", &[("gitTag", tag), ("dryRun", "true")]).expect_error(409, "tag_exists");
    assert_nothing_written(&s, before, "a train with a taken tag");
    assert_eq!(git_rev_parse(&s, tag), commit);
    assert_remote_app(&s, "staging", "web", Some(2));

    // a tag requested a moment ago (maybe not yet pushed) is taken too
    settle(&s);
    let c = train_env(&s, "staging", &[("gitTag", "third")]).expect(200);
    let third = c.commit().expect("commit");
    train_env(&s, "staging", &[("gitTag", "third")]).expect_error(409, "tag_exists");
    assert_eq!(
        s.local_head().map(|h| h.to_string()).as_deref(),
        Some(third.as_str()),
        "a refused train moved the branch"
    );
    assert_eq!(wait_remote_tag(&s, "third").to_string(), third);
    assert_eq!(s.wait_exported().to_string(), third);
}

// ---------------------------------------------------------------------------------------------------------------
// 7. --minimize-exported-data
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn with_minimize_a_noop_train_makes_no_commit_and_no_tag() {
    let s = Server::start_with(&["--minimize-exported-data", "true"]);
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    release(&s, "web", "core", 1, &["dev", "staging"]);
    train_ok(&s, "staging", &[]);
    let before = snapshot(&s);

    let a = train_env(&s, "staging", &[("gitTag", "noop")]).expect(200);
    assert_eq!(a.commit(), None, "{}", a.text);
    assert_eq!(a.json["tag"], Value::Null, "{}", a.text);
    assert_eq!(a.json["empty"], true, "{}", a.text);
    assert_eq!(a.skipped("staging"), strs(&[("web", "already_deployed")]));
    assert_nothing_written(&s, before, "a no-op train with --minimize-exported-data");
    assert!(remote_tags(&s).is_empty(), "tags on the remote: {:?}", remote_tags(&s));
    assert_eq!(tag_commit(&s.repo_dir, "noop"), None);

    // the tag name was not used up: a train that moves something may take it
    release(&s, "web", "core", 2, &["dev", "staging"]);
    settle(&s);
    let a = train_ok(&s, "staging", &[("gitTag", "noop")]);
    assert_eq!(a.json["tag"], "noop");
    assert_eq!(wait_remote_tag(&s, "noop").to_string(), a.commit().expect("commit"));
    assert_remote_app(&s, "staging", "web", Some(2));
}

#[test]
fn without_minimize_a_noop_train_still_commits_and_tags() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    release(&s, "web", "core", 1, &["dev", "staging"]);
    let moved = train_ok(&s, "staging", &[]);
    assert_eq!(moved.json["empty"], false, "{}", moved.text);
    let head = s.wait_exported();
    let count = s.remote_commit_count();

    settle(&s);
    let dry = train_env(&s, "staging", &[("dryRun", "true")]).expect(200);
    assert_eq!(dry.json["empty"], true, "a dry run of a train that moves nothing says so: {}", dry.text);
    let a = train_env(&s, "staging", &[("gitTag", "mark")]).expect(200);
    assert!(a.deployed("staging").is_empty(), "{}", a.text);
    assert_eq!(a.json["empty"], true, "the answer says why the commit changes nothing: {}", a.text);
    assert_eq!(a.json["tag"], "mark");
    let commit = a.commit().expect("a no-op train still commits without --minimize-exported-data");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_commit_count(), count + 1);
    let repo = Repository::open_bare(&s.remote_dir).expect("remote");
    let c = repo.find_commit(Oid::from_str(&commit).expect("sha")).expect("commit");
    let prev = repo.find_commit(head).expect("previous head");
    assert_eq!(c.parent_ids().collect::<Vec<_>>(), vec![head]);
    assert_eq!(c.tree_id(), prev.tree_id(), "the marking commit changes no file");
    assert_eq!(wait_remote_tag(&s, "mark").to_string(), commit);

    // the CLI says so too, for the person who sees the new commit
    let (code, out, err) = cli(&s, &["release-train", "--target-environment", "staging"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing moved: the commit changes no file"), "{out}");
    let (code, out, err) = cli(&s, &["release-train", "--target-environment", "staging", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing would move"), "{out}");
}

// ---------------------------------------------------------------------------------------------------------------
// 8. 404 and 400
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn unknown_targets_are_404_and_bad_queries_400_and_nothing_is_written() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), Some("stage"));
    release(&s, "web", "core", 1, &["dev", "staging"]);
    s.wait_exported();
    let before = snapshot(&s);

    train_env(&s, "nope", &[]).expect_error(404, "not_found");
    train_env(&s, "nope", &[("gitTag", "t-404")]).expect_error(404, "not_found");
    train_env(&s, "nope", &[("dryRun", "true")]).expect_error(404, "not_found");
    prognosis(&s, "nope", &[]).expect_error(404, "not_found");
    train_group(&s, "nope", &[]).expect_error(404, "not_found");
    train_group(&s, "staging", &[]).expect_error(404, "not_found");
    train_env(&s, "staging", &[("sourceGitTag", "never-made")]).expect_error(404, "not_found");
    train_group(&s, "stage", &[("sourceGitTag", "never-made")]).expect_error(404, "not_found");
    prognosis(&s, "staging", &[("sourceGitTag", "never-made")]).expect_error(404, "not_found");

    let bad = |a: Answer, field: &str| {
        let a = a.expect(400);
        assert!(a.json["error"].as_str().is_some_and(|m| !m.is_empty()), "{}", a.text);
        assert_eq!(a.json["field"], field, "{}", a.text);
    };
    bad(train_env(&s, "staging", &[("teams", "core")]), "teams");
    bad(train_env(&s, "staging", &[("source_git_tag", "t1")]), "source_git_tag");
    bad(train_group(&s, "stage", &[("dry_run", "true")]), "dry_run");
    bad(train_env(&s, "staging", &[("gitTag", "a..b")]), "gitTag");
    bad(train_env(&s, "staging", &[("gitTag", "-x")]), "gitTag");
    bad(train_env(&s, "staging", &[("gitTag", "a b")]), "gitTag");
    bad(train_env(&s, "staging", &[("sourceGitTag", "a..b")]), "sourceGitTag");
    bad(train_env(&s, "staging", &[("team", "Not_A_Team")]), "team");
    bad(train_env(&s, "staging", &[("dryRun", "maybe")]), "dryRun");
    bad(prognosis(&s, "staging", &[("bogus", "1")]), "bogus");
    for a in [train_env(&s, "Bad_Env", &[]), train_group(&s, "Bad_Group", &[]), prognosis(&s, "Bad_Env", &[])] {
        let a = a.expect(400);
        assert!(a.json["error"].as_str().is_some_and(|m| !m.is_empty()), "{}", a.text);
    }
    assert_nothing_written(&s, before, "refused trains");
    assert_remote_app(&s, "staging", "web", None);

    // the tag of a refused train was not taken
    settle(&s);
    let a = train_ok(&s, "staging", &[("gitTag", "t-404")]);
    assert_eq!(wait_remote_tag(&s, "t-404").to_string(), a.commit().expect("commit"));
    send(s.client().get(s.at("/healthz"))).expect(200);
}

// ---------------------------------------------------------------------------------------------------------------
// 9. dryRun and prognosis
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn dry_run_and_prognosis_answer_like_the_real_train_and_write_nothing() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), Some("pre"));
    env(&s, "canary", from("dev"), Some("pre"));
    release(&s, "web", "core", 1, &["dev", "staging", "canary"]);
    release(&s, "api", "core", 1, &["dev", "staging", "canary"]);
    release(&s, "db", "data", 1, &["dev"]);
    lock(&s, "/api/environments/staging/applications/api/locks/hold");
    s.wait_exported();
    let before = snapshot(&s);

    let dry = train_env(&s, "staging", &[("dryRun", "true"), ("gitTag", "dry-tag")]).expect(200);
    assert_eq!(dry.commit(), None, "{}", dry.text);
    let prog = prognosis(&s, "staging", &[]).expect(200);
    assert_eq!(prog.commit(), None, "{}", prog.text);
    // a prognosis never writes, even if asked to
    let prog_forced = prognosis(&s, "staging", &[("dryRun", "false")]).expect(200);
    assert_eq!(prog_forced.commit(), None, "{}", prog_forced.text);
    let early_group = train_group(&s, "pre", &[("dryRun", "true")]).expect(200);
    assert_eq!(early_group.commit(), None, "{}", early_group.text);
    assert_eq!(early_group.deployed("canary"), vec![("api".into(), None, 1), ("web".into(), None, 1)]);
    assert_eq!(early_group.env("staging"), dry.env("staging"), "a group dry run differs from the env's");
    let dry_team = train_env(&s, "staging", &[("dryRun", "1"), ("team", "data")]).expect(200);
    assert_nothing_written(&s, before, "dry runs and prognoses");
    assert_remote_app(&s, "staging", "web", None);
    assert_eq!(tag_commit(&s.repo_dir, "dry-tag"), None);

    assert_eq!(dry.deployed("staging"), vec![("web".into(), None, 1)]);
    assert_eq!(dry.skipped("staging"), strs(&[("api", "application_locked"), ("db", "no_manifest_for_environment")]));
    for other in [&prog, &prog_forced] {
        assert_eq!(other.json["environments"], dry.json["environments"], "prognosis differs from the dry run");
    }
    assert!(dry_team.deployed("staging").is_empty(), "{}", dry_team.text);
    assert_eq!(
        dry_team.skipped("staging"),
        strs(&[("api", "team_filtered"), ("db", "no_manifest_for_environment"), ("web", "team_filtered")])
    );

    // the real trains answer the same
    let real_team = train_ok(&s, "staging", &[("team", "data")]);
    assert_eq!(real_team.json["environments"], dry_team.json["environments"]);
    settle(&s);
    let real = train_ok(&s, "staging", &[("gitTag", "dry-tag")]);
    assert_eq!(real.json["environments"], dry.json["environments"], "the train differs from its dry run");
    assert_eq!(wait_remote_tag(&s, "dry-tag").to_string(), real.commit().expect("commit"));
    assert_remote_app(&s, "staging", "web", Some(1));
    assert_remote_app(&s, "canary", "web", None);

    // the group: its dry run (taken now that staging moved) answers like the real group train
    let dry_group = train_group(&s, "pre", &[("dryRun", "true")]).expect(200);
    let real_group = train_group(&s, "pre", &[]).expect(200);
    real_group.commit().expect("commit");
    assert_eq!(real_group.json["environments"], dry_group.json["environments"]);
    s.wait_exported();
    assert_remote_app(&s, "canary", "web", Some(1));
    assert_remote_app(&s, "canary", "api", Some(1));
}

// ---------------------------------------------------------------------------------------------------------------
// 10. the CLI
// ---------------------------------------------------------------------------------------------------------------

fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("railyard"))
        .arg("--url")
        .arg(&s.url)
        .args(args)
        .env_remove("RAILYARD_URL")
        .env_remove("RAILYARD_TOKEN")
        .env_remove("KUBERPULT_DEX_ACCESS_TOKEN")
        .output()
        .expect("run railyard");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_release_train() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    env(&s, "prod", from("staging"), None);
    env(&s, "de", from("staging"), Some("live"));
    env(&s, "us", from("staging"), Some("live"));
    let all = ["dev", "staging", "prod", "de", "us"];
    release(&s, "web", "core", 1, &all);
    release(&s, "api", "ops", 1, &all);

    // table
    let (code, out, err) = cli(&s, &["release-train", "--target-environment", "staging"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let row = out.lines().find(|l| l.contains("web")).unwrap_or_else(|| panic!("no row for web:\n{out}"));
    assert!(row.contains("staging") && row.contains("deployed"), "{out}");
    assert!(out.lines().any(|l| l.contains("api") && l.contains("deployed")), "{out}");
    assert!(out.contains("commit:"), "{out}");
    s.wait_exported();
    assert_remote_app(&s, "staging", "web", Some(1));
    assert_remote_app(&s, "staging", "api", Some(1));

    // an unknown env: exit 1, the API's message on stderr
    let api_msg = train_env(&s, "nope", &[]).expect(404).json["error"].as_str().expect("message").to_owned();
    let before = snapshot(&s);
    let (code, out, err) = cli(&s, &["release-train", "--target-environment", "nope"]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(err.contains(&api_msg), "stderr {err:?} lacks the API's message {api_msg:?}");
    assert!(err.contains("404"), "{err}");
    assert!(out.is_empty(), "{out}");

    // no target: usage error
    let (code, out, err) = cli(&s, &["release-train"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    // both targets: usage error
    let (code, _, err) =
        cli(&s, &["release-train", "--target-environment", "prod", "--target-environment-group", "live"]);
    assert_eq!(code, 2, "{err}");
    assert_nothing_written(&s, before, "failed CLI calls");

    // JSON, with the team filter and a tag
    let (code, out, err) = cli(
        &s,
        &["--output", "json", "release-train", "--target-environment", "prod", "--team", "core", "--git-tag", "cli-1"],
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let body: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let envs = body["environments"].as_array().unwrap_or_else(|| panic!("no environments: {out}"));
    assert_eq!(envs.len(), 1);
    assert_eq!(envs[0]["environment"], "prod");
    assert_eq!(envs[0]["deployed"], json!([{"application": "web", "from": null, "to": 1}]));
    assert_eq!(envs[0]["skipped"], json!([{"application": "api", "reason": "team_filtered"}]));
    assert_eq!(body["tag"], "cli-1");
    let commit = body["commit"].as_str().expect("commit").to_owned();
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(wait_remote_tag(&s, "cli-1").to_string(), commit);
    assert_remote_app(&s, "prod", "web", Some(1));
    assert_remote_app(&s, "prod", "api", None);

    // a dry run through the CLI writes nothing
    let before = snapshot(&s);
    let (code, out, err) = cli(&s, &["release-train", "--target-environment-group", "live", "--dry-run"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("dry run"), "{out}");
    assert_nothing_written(&s, before, "a CLI dry run");

    // a group
    let (code, out, err) = cli(&s, &["release-train", "--target-environment-group", "live"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    for e in ["de", "us"] {
        assert!(out.lines().any(|l| l.starts_with(e) && l.contains("web") && l.contains("deployed")), "{out}");
    }
    s.wait_exported();
    for e in ["de", "us"] {
        assert_remote_app(&s, e, "web", Some(1));
        assert_remote_app(&s, e, "api", Some(1));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// more: folder env names, tags someone added on the remote
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn train_to_an_env_behind_a_folder() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "review/fix-a", from("dev"), Some("review"));
    release(&s, "web", "core", 1, &["dev", "review/fix-a"]);
    let a = train_env(&s, "review%2Ffix-a", &[]).expect(200);
    assert_eq!(a.deployed("review/fix-a"), vec![("web".into(), None, 1)]);
    assert_eq!(s.wait_exported().to_string(), a.commit().expect("commit"));
    assert_remote_app(&s, "review/fix-a", "web", Some(1));
    let p = prognosis(&s, "review%2Ffix-a", &[]).expect(200);
    assert_eq!(p.skipped("review/fix-a"), strs(&[("web", "already_deployed")]));
    let (code, out, err) = cli(&s, &["release-train", "--target-environment", "review/fix-a"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("already_deployed"), "{out}");
}

/// A server whose remote got a tag `by-hand` (on the commit where staging has web 1, while staging now has
/// web 2) from someone else while the server was down; restarted on the same repos.
fn restarted_with_a_hand_made_remote_tag() -> Server {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    env(&s, "prod", from("staging"), None);
    let all = ["dev", "staging", "prod"];
    release(&s, "web", "core", 1, &all);
    let old = train_ok(&s, "staging", &[]).commit().expect("commit");
    release(&s, "web", "core", 2, &all);
    train_ok(&s, "staging", &[]);
    let remote_dir = s.remote_dir.clone();
    let dir = s.kill();
    let remote = Repository::open_bare(&remote_dir).expect("remote");
    remote.reference("refs/tags/by-hand", Oid::from_str(&old).expect("sha"), false, "by hand").expect("tag");
    let s = Server::start_in(dir, &[]);
    s.wait_reconciled();
    s
}

#[test]
fn a_tag_someone_added_on_the_remote_is_usable_as_source_git_tag_after_a_restart() {
    let s = restarted_with_a_hand_made_remote_tag();
    let a = train_ok(&s, "prod", &[("sourceGitTag", "by-hand")]);
    assert_eq!(a.deployed("prod"), vec![("web".into(), None, 1)]);
    assert_remote_app(&s, "prod", "web", Some(1));
}

#[test]
fn a_tag_someone_added_on_the_remote_cannot_be_requested_again_after_a_restart() {
    let s = restarted_with_a_hand_made_remote_tag();
    let before = snapshot(&s);
    train_env(&s, "prod", &[("gitTag", "by-hand")]).expect_error(409, "tag_exists");
    assert_nothing_written(&s, before, "a train with a tag taken on the remote");
    // the exporter still works
    let a = train_ok(&s, "prod", &[]);
    assert_eq!(a.deployed("prod"), vec![("web".into(), None, 2)]);
}

#[test]
fn acknowledged_git_tags_are_never_dropped() {
    // The writer records refs/railyard/pending-tags/<tag> before it moves the branch; an export round that read
    // the branch head just before takes the tag for a crash leftover ("never acknowledged") and deletes it.
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    let mut answered = Vec::new();
    for n in 1..=30u64 {
        // a write (wakes the exporter), then at once a tagged train
        release(&s, "web", "core", n, &["dev", "staging"]);
        let tag = format!("r-{n}");
        let a = train_env(&s, "staging", &[("gitTag", &tag)]).expect(200);
        assert_eq!(a.json["tag"], tag.as_str());
        answered.push((tag, a.commit().expect("commit")));
    }
    s.wait_exported();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let missing: Vec<&str> = answered
            .iter()
            .filter(|(t, c)| tag_commit(&s.remote_dir, t).map(|o| o.to_string()).as_deref() != Some(c.as_str()))
            .map(|(t, _)| t.as_str())
            .collect();
        if missing.is_empty() {
            break;
        }
        let drops: Vec<String> = s.logs().into_iter().filter(|l| l.contains("dropping a pending tag")).collect();
        assert!(Instant::now() < deadline, "acknowledged tags missing on the remote: {missing:?}\n{drops:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn concurrent_trains_asking_for_the_same_tag_one_wins() {
    let s = Server::start();
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    env(&s, "qa", from("dev"), None);
    release(&s, "web", "core", 1, &["dev", "staging", "qa"]);
    settle(&s);
    let server = &s;
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["staging", "qa", "staging", "qa"]
            .into_iter()
            .map(|e| scope.spawn(move || train_env(server, e, &[("gitTag", "race")])))
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let won: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(won.len(), 1, "{answers:#?}");
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_eq!((a.status, a.json["code"].as_str()), (409, Some("tag_exists")), "{}", a.text);
    }
    let commit = won[0].commit().expect("commit");
    s.wait_exported();
    assert_eq!(wait_remote_tag(&s, "race").to_string(), commit);
}

#[test]
fn with_minimize_a_dry_run_of_a_noop_train_answers_like_the_train() {
    let s = Server::start_with(&["--minimize-exported-data", "true"]);
    env(&s, "dev", latest(), None);
    env(&s, "staging", from("dev"), None);
    release(&s, "web", "core", 1, &["dev", "staging"]);
    train_ok(&s, "staging", &[]);
    let dry = train_env(&s, "staging", &[("gitTag", "noop"), ("dryRun", "true")]).expect(200);
    let real = train_env(&s, "staging", &[("gitTag", "noop")]).expect(200);
    assert_eq!(real.commit(), None);
    assert_eq!(dry.json["environments"], real.json["environments"]);
    assert_eq!(dry.json["tag"], real.json["tag"], "dry run {} vs train {}", dry.text, real.text);
    assert_eq!((&dry.json["empty"], &real.json["empty"]), (&Value::Bool(true), &Value::Bool(true)));
}
