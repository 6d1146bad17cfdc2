//! Crash safety: kill -9 the exporter, and separately the API, at random moments during a stream of writes, 100+
//! times (bounded in time). Afterwards every acknowledged write and requested tag is on the remote exactly once,
//! and the remote history is linear. The counts are printed (nextest shows them: see .config/nextest.toml).
//! A third test kills the API while applications are undeployed and deleted: every acknowledged undeploy release is
//! on the remote exactly once and deployed, every acknowledged delete has removed its application.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use railyard_tests::{free_port, ExportProcess, GitDaemon, Rng, Server};
use serde_json::{json, Value};

const MIN_CRASHES: usize = 100;
const MAX_CRASHES: usize = 150;
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// What the API acknowledged: lock ids, and tags with the commit each answer named.
#[derive(Default)]
struct Acknowledged {
    locks: BTreeSet<String>,
    tags: BTreeMap<String, String>,
    /// Answers other than 200 (a crash shows as a dropped connection, never as an error answer).
    refused: Vec<String>,
}

/// Write number `n` against `url`: a lock on dev, every fifth a tagged train. Records it if acknowledged.
fn write(client: &reqwest::blocking::Client, url: &str, n: usize, acked: &Mutex<Acknowledged>) -> bool {
    let tagged = n % 5 == 4;
    let req = if tagged {
        client.put(format!("{url}/api/environments/staging/releasetrain?gitTag=t-{n}")).json(&json!({}))
    } else {
        client.put(format!("{url}/api/environments/dev/locks/w-{n}")).json(&json!({"message": "crash test"}))
    };
    let Ok(resp) = req.send() else { return false };
    if resp.status().as_u16() != 200 {
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        acked.lock().unwrap_or_else(|p| p.into_inner()).refused.push(format!("write {n}: {status} {text}"));
        return false;
    }
    let Ok(body) = resp.json::<Value>() else { return false };
    let mut acked = acked.lock().unwrap_or_else(|p| p.into_inner());
    if tagged {
        let commit = body["commit"].as_str().expect("a tagged train names its commit").to_owned();
        acked.tags.insert(format!("t-{n}"), commit);
    } else {
        acked.locks.insert(format!("w-{n}"));
    }
    true
}

fn setup_envs(s: &Server) {
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    s.create_env("staging", json!({"environment": "dev"}), None).assert_status(201);
}

/// Waits until the remote has the local branch and no tag is pending; `report` says what the process that should drain
/// them shows (whether it runs, its last log lines) if they are not drained in time.
fn wait_drained(repo_dir: &std::path::Path, remote: &std::path::Path, mut report: impl FnMut() -> String) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let local = Repository::open_bare(repo_dir).expect("local");
        let head = local.refname_to_id("refs/heads/main").ok();
        let remote_head = Repository::open_bare(remote).ok().and_then(|r| r.refname_to_id("refs/heads/main").ok());
        let pending = local.references_glob("refs/railyard/pending-tags/*").expect("glob").count();
        if head.is_some() && head == remote_head && pending == 0 {
            return;
        }
        if Instant::now() >= deadline {
            let mut detail = Vec::new();
            for r in local.references_glob("refs/railyard/pending-tags/*").expect("glob") {
                let r = r.expect("ref");
                let target = r.target().expect("target");
                let on_branch =
                    head.is_some_and(|h| h == target || local.graph_descendant_of(h, target).unwrap_or(false));
                let remote_tag = Repository::open_bare(remote).ok().and_then(|rr| {
                    let name = r.name().unwrap_or("").replace("refs/railyard/pending-tags/", "refs/tags/");
                    rr.refname_to_id(&name).ok()
                });
                detail.push(format!("{:?} -> {target} on branch {on_branch}, remote has {remote_tag:?}", r.name()));
            }
            let status = std::fs::read_to_string(repo_dir.join("railyard/export-status.json")).unwrap_or_default();
            panic!(
                "not drained: local {head:?}, remote {remote_head:?}, pending tags {detail:?}, status {status}\n{}",
                report()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks the remote against what was acknowledged; returns the number of writes lost (always asserted 0).
fn verify(remote: &std::path::Path, acked: &Acknowledged) -> usize {
    let repo = Repository::open_bare(remote).expect("remote");
    let head = repo.refname_to_id("refs/heads/main").expect("remote head");
    let mut walk = repo.revwalk().expect("walk");
    walk.push(head).expect("push");
    let mut history: BTreeSet<Oid> = BTreeSet::new();
    let mut lock_commits: BTreeMap<String, usize> = BTreeMap::new();
    let mut train_commits: BTreeMap<String, usize> = BTreeMap::new();
    for oid in walk {
        let c = repo.find_commit(oid.expect("oid")).expect("commit");
        assert!(c.parent_count() <= 1, "remote history is not linear at {}", c.id());
        history.insert(c.id());
        for line in c.message().unwrap_or_default().lines() {
            let Some(raw) = line.strip_prefix("Railyard-Request: ") else { continue };
            let v: Value = serde_json::from_str(raw).expect("trailer");
            match v["request"]["kind"].as_str() {
                Some("create-lock") => {
                    *lock_commits.entry(v["request"]["lock_id"].as_str().unwrap_or("").into()).or_default() += 1
                }
                Some("release-train") => {
                    if let Some(t) = v["request"]["git_tag"].as_str() {
                        *train_commits.entry(t.into()).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
    }
    let tree = repo.find_commit(head).expect("head").tree().expect("tree");
    let mut lost = 0;
    for id in &acked.locks {
        let there = tree.get_path(std::path::Path::new(&format!("environments/dev/locks/{id}"))).is_ok();
        if !there {
            eprintln!("LOST: lock {id}");
            lost += 1;
        }
        assert_eq!(
            lock_commits.get(id).copied().unwrap_or(0),
            usize::from(there),
            "lock {id} committed more than once"
        );
    }
    for (tag, commit) in &acked.tags {
        let on_remote =
            repo.find_reference(&format!("refs/tags/{tag}")).ok().and_then(|r| r.peel_to_commit().ok()).map(|c| c.id());
        match on_remote {
            Some(c) if history.contains(&c) => {
                assert_eq!(c.to_string(), *commit, "tag {tag} names another commit than the answer did");
                assert_eq!(
                    train_commits.get(tag),
                    Some(&1),
                    "the train of tag {tag} is not on the remote exactly once"
                );
            }
            other => {
                eprintln!("LOST: tag {tag} ({other:?})");
                lost += 1;
            }
        }
    }
    lost
}

#[test]
fn killing_the_exporter_at_random_moments_loses_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().to_path_buf();
    let remote = base.join("remote.git");
    Repository::init_bare(&remote).expect("remote");
    let port = free_port();
    let _daemon = GitDaemon::start(&base, port);
    let url = format!("git://127.0.0.1:{port}/remote.git");
    let s = Server::start_in_with_git_url(dir, &remote, &["--export", "external"]);
    setup_envs(&s);

    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, api) = (acked.clone(), stop.clone(), s.url.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                write(&client, &api, n, &acked);
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        })
    };
    let mut rng = Rng::from_env("CRASH_SEED");
    let started = Instant::now();
    let mut crashes = 0;
    while crashes < MAX_CRASHES && (crashes < MIN_CRASHES || started.elapsed() < Duration::from_secs(20)) {
        assert!(started.elapsed() < TIME_LIMIT, "only {crashes} crashes in {TIME_LIMIT:?}");
        let exporter = ExportProcess::start(&s.repo_dir, &url, &[]);
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        exporter.kill();
        crashes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = writer.join().expect("writer");
    let _exporter = ExportProcess::start(&s.repo_dir, &url, &[]);
    wait_drained(&s.repo_dir, &remote, String::new);
    let acked = acked.lock().expect("acked");
    let lost = verify(&remote, &acked);
    eprintln!(
        "exporter kill -9: crashes injected {crashes}, writes sent {sent}, writes acknowledged {} ({} tagged), writes lost {lost}, in {:.1}s",
        acked.locks.len() + acked.tags.len(),
        acked.tags.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(crashes >= MIN_CRASHES);
    assert!(acked.locks.len() > 100, "too few writes to mean anything");
    assert_eq!(lost, 0);
    assert!(acked.refused.is_empty(), "{:?}", acked.refused);
}

#[test]
fn killing_the_api_at_random_moments_loses_no_acknowledged_write() {
    let s = Server::start();
    setup_envs(&s);
    let remote = s.remote_dir.clone();
    let repo_dir = s.repo_dir.clone();
    let mut dir = s.kill();

    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let mut rng = Rng::from_env("CRASH_SEED");
    let started = Instant::now();
    let mut crashes = 0;
    let mut n = 0;
    let mut sent = 0;
    // On a loaded machine a window between start and kill acknowledges fewer writes: go on (within TIME_LIMIT) until
    // enough were acknowledged for the check to mean something.
    let enough = |acked: &Mutex<Acknowledged>| acked.lock().expect("acked").locks.len() > 100;
    while (crashes < MIN_CRASHES || started.elapsed() < Duration::from_secs(20) || !enough(&acked))
        && (crashes < MAX_CRASHES || !enough(&acked))
    {
        assert!(started.elapsed() < TIME_LIMIT, "only {crashes} crashes in {TIME_LIMIT:?}");
        let s = Server::start_in(dir, &[]);
        // Four clients write at once, so the kill also lands inside batches and pushes.
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (acked, stop, api) = (acked.clone(), stop.clone(), s.url.clone());
                let first = n + w;
                std::thread::spawn(move || {
                    let client =
                        reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
                    let mut k = first;
                    let mut count = 0;
                    while !stop.load(Ordering::Relaxed) {
                        write(&client, &api, k, &acked);
                        k += 4;
                        count += 1;
                    }
                    (k, count)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + rng.below(150)));
        stop.store(true, Ordering::Relaxed);
        dir = s.kill();
        for w in writers {
            let (k, count) = w.join().expect("writer");
            n = n.max(k);
            sent += count;
        }
        n += 4;
        crashes += 1;
    }
    let mut s = Server::start_in(dir, &[]);
    wait_drained(&repo_dir, &remote, || s.report());
    let acked = acked.lock().expect("acked");
    let lost = verify(&remote, &acked);
    eprintln!(
        "API kill -9: crashes injected {crashes}, writes sent {sent}, writes acknowledged {} ({} tagged), writes lost {lost}, in {:.1}s",
        acked.locks.len() + acked.tags.len(),
        acked.tags.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(crashes >= MIN_CRASHES);
    assert!(acked.locks.len() > 100, "too few writes to mean anything");
    assert_eq!(lost, 0);
    assert!(acked.refused.is_empty(), "{:?}", acked.refused);
    s.assert_healthy();
}

/// What the API acknowledged of undeploys and deletes: the undeploy release of each app, and the apps deleted.
#[derive(Default)]
struct Lifecycle {
    undeployed: BTreeMap<String, u64>,
    deleted: BTreeSet<String>,
    refused: Vec<String>,
}

/// Undeploys `app` (and deletes it after, when `delete`), recording what was acknowledged.
fn undeploy_and_delete(
    client: &reqwest::blocking::Client,
    url: &str,
    app: &str,
    delete: bool,
    acked: &Mutex<Lifecycle>,
) {
    let Ok(resp) = client.post(format!("{url}/api/applications/{app}/undeploy")).send() else { return };
    let status = resp.status().as_u16();
    let Ok(body) = resp.json::<Value>() else { return };
    let mut a = acked.lock().unwrap_or_else(|p| p.into_inner());
    if status != 201 {
        a.refused.push(format!("undeploy {app}: {status} {body}"));
        return;
    }
    a.undeployed.insert(app.to_owned(), body["version"].as_u64().expect("an undeploy names its version"));
    drop(a);
    if !delete {
        return;
    }
    let Ok(resp) = client.delete(format!("{url}/api/applications/{app}")).send() else { return };
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    let mut a = acked.lock().unwrap_or_else(|p| p.into_inner());
    if status == 200 {
        a.deleted.insert(app.to_owned());
    } else if !text.is_empty() {
        a.refused.push(format!("delete {app}: {status} {text}"));
    }
}

#[test]
fn killing_the_api_during_undeploys_loses_no_acknowledged_undeploy_or_delete() {
    const APPS: usize = 400;
    const MIN_ROUNDS: usize = 25;
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    let apps: Vec<String> = (0..APPS).map(|i| format!("app-{i:03}")).collect();
    std::thread::scope(|scope| {
        for chunk in apps.chunks(APPS / 8) {
            let s = &s;
            scope.spawn(move || {
                for app in chunk {
                    s.release(app, None, &[("dev", "kind: ConfigMap\n")]).assert_status(201);
                }
            });
        }
    });
    let remote = s.remote_dir.clone();
    let repo_dir = s.repo_dir.clone();
    let mut dir = s.kill();

    let acked = Arc::new(Mutex::new(Lifecycle::default()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let apps = Arc::new(apps);
    let mut rng = Rng::from_env("CRASH_SEED");
    let started = Instant::now();
    let mut rounds = 0;
    // Bounded: at least MIN_ROUNDS kills, and no more once every application has been tried.
    while rounds < MIN_ROUNDS || next.load(Ordering::Relaxed) < APPS {
        assert!(started.elapsed() < TIME_LIMIT, "only {rounds} kills in {TIME_LIMIT:?}");
        let s = Server::start_in(dir, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (acked, stop, next, apps, api) =
                    (acked.clone(), stop.clone(), next.clone(), apps.clone(), s.url.clone());
                std::thread::spawn(move || {
                    let client =
                        reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(app) = apps.get(i) else { break };
                        undeploy_and_delete(&client, &api, app, i % 2 == 0, &acked);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + rng.below(120)));
        stop.store(true, Ordering::Relaxed);
        dir = s.kill();
        for w in writers {
            w.join().expect("writer");
        }
        rounds += 1;
    }
    let mut s = Server::start_in(dir, &[]);
    wait_drained(&repo_dir, &remote, || s.report());

    let repo = Repository::open_bare(&remote).expect("remote");
    let head = repo.refname_to_id("refs/heads/main").expect("remote head");
    let mut walk = repo.revwalk().expect("walk");
    walk.push(head).expect("push");
    let (mut undeploy_trailers, mut delete_trailers) = (BTreeMap::<String, usize>::new(), BTreeSet::new());
    for oid in walk {
        let c = repo.find_commit(oid.expect("oid")).expect("commit");
        assert!(c.parent_count() <= 1, "remote history is not linear at {}", c.id());
        for raw in c.message().unwrap_or_default().lines().filter_map(|l| l.strip_prefix("Railyard-Request: ")) {
            let v: Value = serde_json::from_str(raw).expect("trailer");
            let app = v["request"]["application"].as_str().unwrap_or_default().to_owned();
            match v["request"]["kind"].as_str() {
                Some("create-undeploy") => *undeploy_trailers.entry(app).or_default() += 1,
                Some("delete-application") => {
                    delete_trailers.insert(app);
                }
                _ => {}
            }
        }
    }
    let tree = repo.find_commit(head).expect("head").tree().expect("tree");
    let file = |path: &str| -> Option<String> {
        let e = tree.get_path(std::path::Path::new(path)).ok()?;
        Some(String::from_utf8_lossy(repo.find_blob(e.id()).ok()?.content()).into_owned())
    };
    let exists = |path: &str| tree.get_path(std::path::Path::new(path)).is_ok();
    let acked = acked.lock().expect("acked");
    let mut lost = 0;
    for (app, version) in &acked.undeployed {
        assert_eq!(undeploy_trailers.get(app), Some(&1), "the undeploy of {app} is not on the remote exactly once");
        if delete_trailers.contains(app) {
            continue;
        }
        let marker = exists(&format!("applications/{app}/releases/{version}/undeploy"));
        let deployed = file(&format!("environments/dev/applications/{app}/version"));
        if !marker || deployed.as_deref() != Some(version.to_string().as_str()) {
            eprintln!("LOST: undeploy {version} of {app} (marker {marker}, dev runs {deployed:?})");
            lost += 1;
        }
    }
    for app in &acked.deleted {
        if exists(&format!("applications/{app}")) || exists(&format!("environments/dev/applications/{app}")) {
            eprintln!("LOST: delete of {app}");
            lost += 1;
        }
    }
    eprintln!(
        "API kill -9 during undeploys: {rounds} kills, {} apps tried, {} undeploys and {} deletes acknowledged, lost {lost}, in {:.1}s",
        next.load(Ordering::Relaxed).min(APPS),
        acked.undeployed.len(),
        acked.deleted.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(rounds >= MIN_ROUNDS);
    assert!(acked.undeployed.len() > 50 && !acked.deleted.is_empty(), "too few writes to mean anything");
    assert_eq!(lost, 0);
    assert!(acked.refused.is_empty(), "{:?}", acked.refused);
    s.assert_healthy();
}
