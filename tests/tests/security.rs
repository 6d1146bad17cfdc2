//! Security (issue 13): roles are checked against what a write really touches (the stored team of an application,
//! the environments a group has when the lock is written, every team of an environment lock), refused requests
//! leave nothing behind (no objects, no build webhook call), tags cannot nest under tags, the Host header is not
//! reflected in links, and flow names cannot overlap another flow's files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use railyard_tests::{
    call, free_port, object_count, object_kib, read_file, release_parts, upload_as, write_tokens, Receiver, Reply,
    Server,
};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const RELEASE_PAYMENTS: &str = "release-payments-token";
const RELEASE_BOTH: &str = "release-both-token";
const LOCK_ONLY: &str = "lock-only-token";
const LOCK_PAYMENTS: &str = "lock-payments-token";
const LOCK_ALL_TEAMS: &str = "lock-all-teams-token";
const LOCK_DEV: &str = "lock-dev-token";

const PEOPLE: &[(&str, &str, &str)] = &[
    (ADMIN, "Root", "[{action: admin}]"),
    (RELEASE_PAYMENTS, "Pam", "[{action: release, teams: [payments]}]"),
    (RELEASE_BOTH, "Bo", "[{action: release, teams: [payments, core]}]"),
    (LOCK_ONLY, "Lou", "[{action: lock}]"),
    (LOCK_PAYMENTS, "Lip", "[{action: lock, environments: [\"*\"], teams: [payments]}]"),
    (LOCK_ALL_TEAMS, "Lia", "[{action: lock, environments: [\"*\"], teams: [\"*\"]}]"),
    (LOCK_DEV, "Dev", "[{action: lock, environments: [dev]}]"),
];

/// A server with the tokens of [`PEOPLE`] (plus `extra` flags), pushing to `git_url` (None: the local remote).
fn start(git_url: Option<&str>, extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = write_tokens(dir.path(), PEOPLE);
    let mut flags = vec!["--auth-tokens", tokens.to_str().expect("path")];
    flags.extend_from_slice(extra);
    match git_url {
        Some(url) => Server::start_in_with_git_url(dir, url, &flags),
        None => Server::start_in(dir, &flags),
    }
}

fn admin_env(s: &Server, name: &str, upstream: Value, group: Option<&str>) {
    let mut body = json!({ "name": name, "upstream": upstream });
    if let Some(g) = group {
        body["environmentGroup"] = g.into();
    }
    call(s, "POST", "/api/environments", Some(ADMIN), Some(&body)).assert_status(201);
}

/// The parts of an upload of `app` with `team` (None: no `team` part) and one manifest per env.
fn parts(app: &str, team: Option<&str>, manifests: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut p = release_parts(app, None, manifests);
    match team {
        Some(t) => p.iter_mut().filter(|(n, _)| n == "team").for_each(|(_, v)| *v = t.as_bytes().to_vec()),
        None => p.retain(|(n, _)| n != "team"),
    }
    p
}

fn local_file(s: &Server, path: &str) -> Option<String> {
    read_file(&s.repo_dir, "refs/heads/main", path)
}

fn team_of(s: &Server, app: &str) -> Option<String> {
    local_file(s, &format!("applications/{app}/team")).map(|t| t.trim().to_owned())
}

fn has_lock(s: &Server, env: &str, id: &str) -> bool {
    local_file(s, &format!("environments/{env}/locks/{id}/message")).is_some()
}

fn candidate(s: &Server, token: &str, app: &str, rc: &str, body: &Value) -> Reply {
    call(s, "POST", &format!("/api/releases/{app}/releases/{rc}"), Some(token), Some(body))
}

// 1. A release upload cannot take an application from its team.

#[test]
fn a_release_token_cannot_upload_into_another_teams_application() {
    let s = start(None, &[]);
    admin_env(&s, "dev", json!({"latest": true}), None);
    upload_as(&s, "/api/release", Some(ADMIN), &parts("web", Some("core"), &[("dev", "kind: Core\n")]))
        .assert_status(201);
    assert_eq!(team_of(&s, "web").as_deref(), Some("core"));
    let head = s.local_head();

    // Claiming the app for payments is a change of its team: payments alone does not allow it.
    let r =
        upload_as(&s, "/api/release", Some(RELEASE_PAYMENTS), &parts("web", Some("payments"), &[("dev", "kind: X\n")]));
    r.assert_error(403, "forbidden", None);
    assert_eq!(team_of(&s, "web").as_deref(), Some("core"), "the team file changed");
    assert_eq!(s.local_head(), head, "a refused upload made a commit");

    // Without a team part the stored team (core) is what is checked.
    let r = upload_as(&s, "/api/release", Some(RELEASE_PAYMENTS), &parts("web", None, &[("dev", "kind: X\n")]));
    r.assert_error(403, "forbidden", None);
    // Kuberpult's path is the same upload.
    let r = upload_as(&s, "/release", Some(RELEASE_PAYMENTS), &parts("web", Some("payments"), &[("dev", "kind: X\n")]));
    r.assert_error(403, "forbidden", None);

    // A release candidate of core's app is a release of core's app.
    let body = json!({"repo": "acme/web", "commit": "0123abc", "manifests": {"dev": "kind: Rc\n"}});
    candidate(&s, RELEASE_PAYMENTS, "web", "1.0.0-rc1", &body).assert_error(403, "forbidden", None);
    assert_eq!(team_of(&s, "web").as_deref(), Some("core"));
    assert_eq!(s.local_head(), head, "a refused write made a commit");

    // Release on both teams may move it to payments; admin may move it back.
    upload_as(&s, "/api/release", Some(RELEASE_BOTH), &parts("web", Some("payments"), &[("dev", "kind: B\n")]))
        .assert_status(201);
    assert_eq!(team_of(&s, "web").as_deref(), Some("payments"));
    upload_as(&s, "/api/release", Some(ADMIN), &parts("web", Some("core"), &[("dev", "kind: C\n")])).assert_status(201);
    assert_eq!(team_of(&s, "web").as_deref(), Some("core"));
    s.wait_exported();
    assert_eq!(s.remote_file("applications/web/team").map(|t| t.trim().to_owned()).as_deref(), Some("core"));
}

// 2. The build webhook hears only of candidates that are written.

#[test]
fn the_build_webhook_is_not_called_for_a_refused_release_candidate() {
    let hook = Receiver::start();
    let s = start(None, &["--build-webhook", &hook.url]);
    admin_env(&s, "dev", json!({"latest": true}), None);
    let body = |commit: &str, env: &str| {
        json!({"repo": "acme/web", "commit": commit, "trigger_build_workflow": true,
            "manifests": {env: "kind: Rc\n"}})
    };
    let plain = json!({"repo": "acme/web", "commit": "0123abc", "manifests": {"dev": "kind: Rc\n"}});
    candidate(&s, ADMIN, "web", "1.0.0-rc1", &plain).assert_status(201);
    let head = s.local_head();

    // A token without release on the app: 403, and nobody was told to build.
    candidate(&s, LOCK_ONLY, "web", "2.0.0-rc1", &body("0123abc", "dev")).assert_error(403, "forbidden", None);
    // The same candidate with another commit: 409.
    candidate(&s, ADMIN, "web", "1.0.0-rc1", &body("4567def", "dev")).assert_error(
        409,
        "release_candidate_exists",
        None,
    );
    // A manifest for an environment that does not exist: 404.
    let r = candidate(&s, ADMIN, "web", "3.0.0-rc1", &body("89abcde", "nowhere"));
    r.assert_status(404);
    std::thread::sleep(Duration::from_millis(500));
    let got: Vec<String> =
        hook.received().iter().map(|(line, body)| format!("{line} {}", String::from_utf8_lossy(body))).collect();
    assert!(got.is_empty(), "the build webhook was called for a refused candidate: {got:?}");
    assert_eq!(s.local_head(), head);

    // The receiver works: an accepted candidate reaches it.
    candidate(&s, ADMIN, "web", "4.0.0-rc1", &body("89abcde", "dev")).assert_status(201);
    // (The call may come after the answer.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hook.received().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let sent: Value = serde_json::from_slice(&got[0].1).expect("JSON body");
    assert_eq!(sent["release_candidate_version"], "4.0.0-rc1");
}

// 4. Tags cannot nest under tags (a ref cannot be a file and a folder at once).

fn train(s: &Server, env: &str, tag: &str) -> Reply {
    call(s, "PUT", &format!("/api/environments/{env}/releasetrain?gitTag={tag}"), Some(ADMIN), None)
}

/// dev (latest) → staging, web released; with `git_url` the remote is elsewhere (e.g. unreachable).
fn train_setup(git_url: Option<&str>) -> Server {
    let s = start(git_url, &[]);
    admin_env(&s, "dev", json!({"latest": true}), None);
    admin_env(&s, "staging", json!({"environment": "dev"}), None);
    upload_as(&s, "/api/release", Some(ADMIN), &parts("web", Some("core"), &[("dev", "a"), ("staging", "b")]))
        .assert_status(201);
    s
}

fn tag_on(repo: &std::path::Path, tag: &str) -> bool {
    git2::Repository::open_bare(repo).is_ok_and(|r| r.find_reference(&format!("refs/tags/{tag}")).is_ok())
}

fn wait_remote_tag(s: &Server, tag: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !tag_on(&s.remote_dir, tag) {
        assert!(std::time::Instant::now() < deadline, "tag {tag} never reached the remote: {}", s.get("/readyz").text);
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn assert_export_healthy(s: &Server) {
    let r = s.get("/readyz");
    r.assert_status(200);
    assert_eq!(r.json["ready"], true, "{}", r.text);
    assert!(r.json["export"]["stopped"].is_null(), "the exporter stopped: {}", r.text);
}

#[test]
fn a_tag_nested_under_an_existing_tag_is_a_conflict_and_writes_nothing() {
    let s = train_setup(None);
    train(&s, "staging", "dtag").assert_status(200);
    wait_remote_tag(&s, "dtag");
    let head = s.local_head();
    train(&s, "staging", "dtag/sub2").assert_error(409, "tag_conflict", None);
    assert_eq!(s.local_head(), head, "a refused train made a commit");

    // The other way round: a tag where a folder of tags is.
    train(&s, "staging", "a/b").assert_status(200);
    wait_remote_tag(&s, "a/b");
    let head = s.local_head();
    train(&s, "staging", "a").assert_error(409, "tag_conflict", None);
    assert_eq!(s.local_head(), head, "a refused train made a commit");

    s.wait_exported();
    std::thread::sleep(Duration::from_millis(300));
    assert_export_healthy(&s);
    let r = s.get("/readyz");
    assert!(r.json["export"]["last_error"].is_null(), "{}", r.text);
    assert!(tag_on(&s.remote_dir, "dtag") && tag_on(&s.remote_dir, "a/b"));
    assert!(!tag_on(&s.remote_dir, "dtag/sub2") && !tag_on(&s.remote_dir, "a"));
    // Afterwards trains with fresh tags still work and arrive.
    train(&s, "staging", "dtag-2").assert_status(200);
    wait_remote_tag(&s, "dtag-2");
}

/// A `git://` URL on a port nothing listens on: every push fails, tags stay pending.
fn unreachable_remote() -> String {
    format!("git://127.0.0.1:{}/remote.git", free_port())
}

#[test]
fn a_tag_nested_under_a_pending_tag_is_a_conflict_and_writes_nothing() {
    let url = unreachable_remote();
    let s = train_setup(Some(&url));
    train(&s, "staging", "ptag").assert_status(200);
    let head = s.local_head();
    train(&s, "staging", "ptag/x").assert_error(409, "tag_conflict", None);
    assert_eq!(s.local_head(), head);
    train(&s, "staging", "q/r").assert_status(200);
    let head = s.local_head();
    train(&s, "staging", "q").assert_error(409, "tag_conflict", None);
    assert_eq!(s.local_head(), head);
    // Taken names are still 409 tag_exists, fresh ones still work.
    train(&s, "staging", "ptag").assert_error(409, "tag_exists", None);
    train(&s, "staging", "fresh").assert_status(200);
    s.assert_healthy();
}

// 5. A conflicting tag fails alone: the writes batched beside it go through, nothing answers 500.

#[test]
fn locks_batched_beside_a_conflicting_tag_all_succeed() {
    let url = unreachable_remote();
    let s = Arc::new(train_setup(Some(&url)));
    train(&s, "staging", "ptag").assert_status(200);
    let secret = s.dir.path().to_string_lossy().into_owned();
    for round in 0..3 {
        let start = Arc::new(Barrier::new(21));
        let mut locks = Vec::new();
        for i in 0..20 {
            let (s, start) = (s.clone(), start.clone());
            locks.push(std::thread::spawn(move || {
                start.wait();
                let path = format!("/api/environments/dev/locks/r{round}-l{i}");
                (format!("r{round}-l{i}"), call(&s, "PUT", &path, Some(ADMIN), Some(&json!({"message": "m"}))))
            }));
        }
        let t = {
            let (s, start) = (s.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                train(&s, "staging", "ptag/x")
            })
        };
        let t = t.join().expect("train thread");
        assert!(!t.text.contains(&secret), "an answer shows a server path: {}", t.text);
        assert_ne!(t.status, 500, "{}", t.text);
        t.assert_error(409, "tag_conflict", None);
        for l in locks {
            let (id, r) = l.join().expect("lock thread");
            assert!(!r.text.contains(&secret), "an answer shows a server path: {}", r.text);
            r.assert_status(200);
            assert!(has_lock(&s, "dev", &id), "lock {id} answered 200 but is not in the local repo");
        }
    }
    s.assert_healthy();
}

// 6. An environment lock holds back every team: a team-scoped lock role cannot set or lift one.

#[test]
fn a_team_scoped_lock_token_cannot_touch_environment_or_group_locks() {
    let s = start(None, &[]);
    admin_env(&s, "dev", json!({"latest": true}), None);
    admin_env(&s, "prod", json!({"environment": "dev"}), Some("prodg"));
    let m = json!({"message": "core freeze"});
    call(&s, "PUT", "/api/environments/prod/locks/core-freeze", Some(ADMIN), Some(&m)).assert_status(200);
    call(&s, "PUT", "/api/environment-groups/prodg/locks/group-freeze", Some(ADMIN), Some(&m)).assert_status(201);
    let head = s.local_head();

    let refused: &[(&str, &str)] = &[
        ("PUT", "/api/environments/prod/locks/core-freeze"),
        ("DELETE", "/api/environments/prod/locks/core-freeze"),
        ("PUT", "/api/environments/prod/locks/payments-new"),
        ("PUT", "/api/environment-groups/prodg/locks/group-freeze"),
        ("DELETE", "/api/environment-groups/prodg/locks/group-freeze"),
        ("PUT", "/api/environment-groups/prodg/locks/payments-new"),
        ("DELETE", "/api/environment-groups/prodg/locks/core-freeze"),
        ("PUT", "/environments/prod/locks/core-freeze"),
        ("DELETE", "/environments/prod/locks/core-freeze"),
        ("DELETE", "/environment-groups/prodg/locks/group-freeze"),
    ];
    for (method, path) in refused {
        let body = (*method == "PUT").then(|| json!({"message": "payments"}));
        let r = call(&s, method, path, Some(LOCK_PAYMENTS), body.as_ref());
        assert_eq!(r.status, 403, "{method} {path} by a payments lock token: {}", r.text);
        r.assert_error(403, "forbidden", None);
    }
    assert_eq!(s.local_head(), head, "a refused lock request made a commit");
    assert!(has_lock(&s, "prod", "core-freeze") && has_lock(&s, "prod", "group-freeze"));
    assert!(!has_lock(&s, "prod", "payments-new"));
    assert_eq!(
        local_file(&s, "environments/prod/locks/core-freeze/message").as_deref().map(str::trim),
        Some("core freeze")
    );

    // Its own team's lock it may set.
    call(&s, "PUT", "/api/environments/prod/teams/payments/locks/pay", Some(LOCK_PAYMENTS), Some(&m))
        .assert_status(200);
    // A lock role for every team may set and lift environment and group locks.
    call(&s, "PUT", "/api/environment-groups/prodg/locks/all-teams", Some(LOCK_ALL_TEAMS), Some(&m)).assert_status(201);
    call(&s, "DELETE", "/api/environments/prod/locks/core-freeze", Some(LOCK_ALL_TEAMS), None).assert_status(200);
    assert!(!has_lock(&s, "prod", "core-freeze"));
    assert!(has_lock(&s, "prod", "all-teams"));
}

// 7. A group lock is checked against the environments it is written to, not those the group had earlier.

#[test]
fn a_group_lock_never_reaches_an_environment_moved_into_the_group_meanwhile() {
    let s = Arc::new(start(None, &[]));
    admin_env(&s, "dev", json!({"latest": true}), Some("gdev"));
    admin_env(&s, "staging", json!({"environment": "dev"}), Some("gother"));
    let mut applied = 0;
    for i in 0..40 {
        let start = Arc::new(Barrier::new(2));
        let mover = {
            let (s, start) = (s.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                call(&s, "PUT", "/api/environments/staging", Some(ADMIN), Some(&json!({"environmentGroup": "gdev"})))
            })
        };
        let id = format!("l{i}");
        let path = format!("/api/environment-groups/gdev/locks/{id}");
        start.wait();
        let lock = call(&s, "PUT", &path, Some(LOCK_DEV), Some(&json!({"message": "dev only"})));
        mover.join().expect("mover").assert_status(200);
        assert!(
            !has_lock(&s, "staging", &id),
            "round {i}: a dev-only token locked staging ({}: {})",
            lock.status,
            lock.text
        );
        match lock.status {
            200 | 201 => {
                applied += 1;
                assert!(has_lock(&s, "dev", &id), "round {i}: answered {} but dev is not locked", lock.status);
            }
            403 => assert!(!has_lock(&s, "dev", &id), "round {i}: 403 but dev got the lock"),
            other => panic!("round {i}: group lock answered {other}: {}", lock.text),
        }
        call(&s, "PUT", "/api/environments/staging", Some(ADMIN), Some(&json!({"environmentGroup": "gother"})))
            .assert_status(200);
        call(&s, "DELETE", &format!("/api/environments/dev/locks/{id}"), Some(ADMIN), None).assert_status(200);
    }
    eprintln!("group locks applied before the move: {applied} of 40");
}

// 8. Refused and failed uploads leave no objects behind.

#[test]
fn refused_and_failed_uploads_leave_no_objects_in_the_repo() {
    let s = start(None, &["--max-body-bytes", "67108864"]);
    admin_env(&s, "dev", json!({"latest": true}), None);
    upload_as(&s, "/api/release", Some(ADMIN), &parts("web", Some("core"), &[("dev", "kind: A\n")])).assert_status(201);
    s.wait_exported();
    let (objects, kib) = (object_count(&s.repo_dir), object_kib(&s.repo_dir));
    let head = s.local_head();

    for n in 0..4u8 {
        // 5 MB that do not compress to nothing and differ per upload.
        let mut big = Vec::with_capacity(5 << 20);
        let mut x: u32 = 0x9e37_79b9 ^ u32::from(n);
        while big.len() < 5 << 20 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            big.extend_from_slice(format!("k{x:08x}: v\n").as_bytes());
        }
        let mut p = parts("web", None, &[]);
        p.push(("manifests[dev]".into(), big));
        upload_as(&s, "/api/release", Some(RELEASE_PAYMENTS), &p).assert_error(403, "forbidden", None);
    }
    assert_eq!(object_count(&s.repo_dir), objects, "refused uploads left objects in the local repo");
    let grown = object_kib(&s.repo_dir).saturating_sub(kib);
    assert!(grown < 256, "refused uploads grew the local repo by {grown} KiB");

    // 10,000 manifests for environments that do not exist: 404, and none of them is stored.
    let mut p = parts("web", Some("core"), &[]);
    for i in 0..10_000 {
        p.push((format!("manifests[e{i}]"), format!("kind: E{i}\n").into_bytes()));
    }
    upload_as(&s, "/api/release", Some(ADMIN), &p).assert_error(404, "not_found", None);
    assert_eq!(object_count(&s.repo_dir), objects, "a failed upload left objects in the local repo");
    assert_eq!(s.local_head(), head);
}

// 11. The Host header is not reflected in the GitLab surface's links.

/// One GET over a fresh connection with the given `Host`; the head (lower-cased names) and the body.
fn get_with_host(s: &Server, path: &str, host: &str) -> (u16, Vec<(String, String)>, String) {
    let addr = s.url.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(c, "GET {path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {ADMIN}\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP answer");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    assert!(!headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")), "chunked answer");
    (status, headers, body.to_owned())
}

/// The URLs of a `Link` header (`<url>; rel="next", …`).
fn link_urls(headers: &[(String, String)]) -> Vec<String> {
    let link = headers.iter().find(|(k, _)| k == "link").map(|(_, v)| v.clone()).expect("a Link header");
    link.split(',').filter_map(|part| Some(part.split_once('<')?.1.split_once('>')?.0.to_owned())).collect()
}

fn three_envs(s: &Server) {
    admin_env(s, "dev", json!({"latest": true}), None);
    admin_env(s, "staging", json!({"environment": "dev"}), None);
    admin_env(s, "prod", json!({"environment": "staging"}), None);
}

#[test]
fn gitlab_links_do_not_reflect_the_host_header() {
    let s = start(None, &[]);
    three_envs(&s);
    let (status, headers, body) = get_with_host(&s, "/api/v4/projects/1/environments?per_page=1", "evil.example");
    assert_eq!(status, 200, "{body}");
    let urls = link_urls(&headers);
    assert!(!urls.is_empty(), "{headers:?}");
    for u in &urls {
        assert!(!u.contains("evil.example"), "the Link header reflects the Host header: {u}");
    }
    let (status, _, body) = get_with_host(&s, "/api/v4/projects/1", "evil.example");
    assert_eq!(status, 200, "{body}");
    let project: Value = serde_json::from_str(&body).expect("JSON");
    let web_url = project["web_url"].as_str().expect("web_url");
    assert!(!web_url.contains("evil.example"), "web_url reflects the Host header: {web_url}");
    drop(s);

    let s = start(None, &["--external-url", "https://railyard.example.com"]);
    three_envs(&s);
    let (status, headers, body) = get_with_host(&s, "/api/v4/projects/1/environments?per_page=1", "evil.example");
    assert_eq!(status, 200, "{body}");
    let urls = link_urls(&headers);
    assert!(!urls.is_empty(), "{headers:?}");
    for u in &urls {
        assert!(u.starts_with("https://railyard.example.com/"), "a Link URL not under --external-url: {u}");
    }
    let (_, _, body) = get_with_host(&s, "/api/v4/projects/1", "evil.example");
    let project: Value = serde_json::from_str(&body).expect("JSON");
    let web_url = project["web_url"].as_str().expect("web_url");
    assert!(web_url.starts_with("https://railyard.example.com/"), "web_url not under --external-url: {web_url}");
}

// 12. A flow name cannot land on another flow's run records.

#[test]
fn a_flow_name_that_overlaps_another_flows_runs_is_refused() {
    let s = start(None, &[]);
    admin_env(&s, "dev", json!({"latest": true}), None);
    let template = json!({"steps": [{"ref": "freeze", "kind": "lock", "environment": "dev", "lockId": "f"}]});
    call(&s, "PUT", "/api/release-flows/fa", Some(ADMIN), Some(&template)).assert_status(201);
    let head = s.local_head();
    call(&s, "PUT", "/api/release-flows/fa%2Fruns", Some(ADMIN), Some(&template)).assert_error(
        400,
        "invalid_input",
        Some("flow"),
    );
    let nf = call(&s, "PUT", "/v1/projects/1/pipelines/fa/release-flows/runs", Some(ADMIN), Some(&template));
    assert_eq!(nf.status, 400, "{}", nf.text);
    assert_eq!(s.local_head(), head, "a refused flow was written");
    assert!(local_file(&s, "release-flows/fa/runs.yaml").is_none());
    call(&s, "PUT", "/api/release-flows/fa%2Fx", Some(ADMIN), Some(&template)).assert_status(201);
    // fa's runs still work and are recorded where they belong.
    call(&s, "POST", "/api/release-flows/fa/runs", Some(ADMIN), Some(&json!({"name": "first"}))).assert_status(201);
}
