//! One pack per batch (issue 22), end to end on the real binary and real repos, read with the git CLI:
//!
//! - a series of writes leaves no loose object, at most 9 packs once the background roll-up ran, and a repo (and
//!   remote) that `git fsck --strict` finds clean; everything reads back through the API;
//! - a refused upload (409 `release_exists`, 403 with auth, and a refusal batched with accepted uploads) leaves no
//!   object on disk: the object counts do not move and the refused manifest's blob is not in the repo;
//! - kill -9 while packs are rolled up, over and over, loses no acknowledged write, leaves a clean repo and, once the
//!   last run rolled its packs up, no temporary pack file;
//! - a train over 200 applications writes exactly the tree `git fast-import` writes for the same change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use railyard_tests::repogen::{self, RepoSpec};
use railyard_tests::{release_parts, upload_as, write_tokens, Rng, Server};
use serde_json::{json, Value};

/// `git --git-dir <repo> <args>`; panics unless it succeeds. Returns stdout.
fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("--git-dir").arg(repo).args(args).output().expect("git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}{}",
        repo.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git count-objects -v` as numbers (`count` is the loose objects, `in-pack` the packed ones, `packs` the packs).
fn count_objects(repo: &Path) -> HashMap<String, u64> {
    git(repo, &["count-objects", "-v"])
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
        .collect()
}

/// The id `git hash-object` gives `content` as a blob (without writing it).
fn blob_id(content: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(["hash-object", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git hash-object");
    child.stdin.take().expect("stdin").write_all(content.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("git hash-object");
    String::from_utf8(out.stdout).expect("hex").trim().to_owned()
}

/// Whether `git cat-file -e` finds object `id` in `repo`.
fn has_object(repo: &Path, id: &str) -> bool {
    Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["cat-file", "-e", id])
        .stderr(Stdio::null())
        .status()
        .expect("git cat-file")
        .success()
}

/// Files of `objects/pack` that are not part of a complete pack: temporaries (`tmp_*`, `pack_git2_*`, `*.lock`),
/// and a `.pack` without its `.idx` or the other way round.
fn stray_pack_files(repo: &Path) -> Vec<String> {
    let dir = repo.join("objects").join("pack");
    let names: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("pack folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names
        .iter()
        .filter(|n| {
            let Some((stem, ext)) = n.strip_prefix("pack-").and_then(|r| r.split_once('.')) else { return true };
            let complete = names.contains(&format!("pack-{stem}.pack")) && names.contains(&format!("pack-{stem}.idx"));
            let named = stem.len() == 40 && stem.bytes().all(|b| b.is_ascii_hexdigit());
            !(named && complete && ["pack", "idx", "rev", "keep", "bitmap", "mtimes"].contains(&ext))
        })
        .cloned()
        .collect()
}

/// Polls until `pred` holds on the repo's object counts; returns the counts, or None after `limit`.
fn wait_counts(
    repo: &Path,
    limit: Duration,
    pred: impl Fn(&HashMap<String, u64>) -> bool,
) -> Result<HashMap<String, u64>, HashMap<String, u64>> {
    let deadline = Instant::now() + limit;
    loop {
        let c = count_objects(repo);
        if pred(&c) {
            return Ok(c);
        }
        if Instant::now() > deadline {
            return Err(c);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn manifest(app: &str, n: usize, env: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}\n  namespace: {env}\ndata:\n  release: \"{n}\"\n"
    )
}

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

fn setup_envs(s: &Server) {
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s.create_env("prod", json!({"environment": "staging"}), None);
}

fn upload(s: &Server, app: &str, n: usize) -> railyard_tests::Reply {
    let texts: Vec<String> = ENVS.iter().map(|e| manifest(app, n, e)).collect();
    let manifests: Vec<(&str, &str)> = ENVS.iter().copied().zip(texts.iter().map(String::as_str)).collect();
    s.release(app, None, &manifests)
}

#[test]
fn a_series_of_writes_leaves_no_loose_object_and_few_packs() {
    let s = Server::start();
    setup_envs(&s);
    let apps = ["web", "api", "db", "cache", "queue"];
    // 40 uploads, one batch (so one pack) each.
    for n in 1..=8 {
        for app in apps {
            let r = upload(&s, app, n);
            r.assert_status(201);
            assert_eq!(r.json["version"], n as u64, "{}", r.text);
        }
    }
    for app in apps {
        s.deploy("staging", app, 3, "fail").assert_status(200);
    }
    s.deploy("prod", "web", 2, "fail").assert_status(200);
    s.put_json("/api/environments/prod/locks/freeze", &json!({"message": "release freeze"})).assert_status(200);
    s.put_json("/api/environments/staging/applications/db/locks/hold", &json!({"message": "incident"}))
        .assert_status(200);
    s.put_json("/api/environments/staging/locks/gone", &json!({"message": "short"})).assert_status(200);
    s.delete("/api/environments/staging/locks/gone").assert_status(200);
    let train = s.put_json("/api/environments/staging/releasetrain", &json!({}));
    train.assert_status(200);
    let moved: BTreeSet<&str> = train.json["environments"][0]["deployed"]
        .as_array()
        .expect("deployed")
        .iter()
        .filter_map(|m| m["application"].as_str())
        .collect();
    assert_eq!(moved, BTreeSet::from(["web", "api", "cache", "queue"]), "db is locked: {}", train.text);
    let prod_train = s.put_json("/api/environments/prod/releasetrain", &json!({}));
    prod_train.assert_status(200);
    assert!(prod_train.json["environments"][0]["deployed"].as_array().expect("deployed").is_empty());
    s.wait_exported();

    // 55 batches, 55 packs as written; the roll-up (at most every 250 ms, in the background) brings them down.
    let counts = wait_counts(&s.repo_dir, Duration::from_secs(10), |c| c["packs"] <= 9 && c["count"] == 0)
        .unwrap_or_else(|c| panic!("after 10 s: {c:?} (loose `count` must be 0, `packs` ≤ 9)"));
    eprintln!("local repo after 55 batches: {counts:?}");
    assert!(
        s.logs().iter().any(|l| l.contains("rolled small packs up into one")),
        "no roll-up was logged, yet the packs are few: were the batches packed?"
    );
    railyard_tests::assert_git_fsck_clean(&s.repo_dir);
    railyard_tests::assert_git_fsck_clean(&s.remote_dir);
    assert_eq!(stray_pack_files(&s.repo_dir), Vec::<String>::new());
    // Each batch linked the branch's old ref file aside before moving it; a background thread removed every link.
    let retired = s.repo_dir.join("railyard/retired-refs");
    assert!(retired.is_dir(), "the writer keeps no retired ref files folder");
    let left = || std::fs::read_dir(&retired).expect("retired-refs").count();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while left() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(left(), 0, "retired ref files left behind");
    {
        use std::os::unix::fs::MetadataExt;
        let branch = std::fs::metadata(s.repo_dir.join("refs/heads/main")).expect("loose branch ref");
        assert_eq!(branch.nlink(), 1, "the branch's ref file is linked elsewhere");
    }
    // The local remote got a pack per push; the pushing thread rolls them up once there are more than 16.
    let remote = count_objects(&s.remote_dir);
    eprintln!("local remote after 55 batches: {remote:?}");
    assert!(remote["packs"] <= 17 && remote["count"] == 0, "the local remote's packs are not rolled up: {remote:?}");
    assert_eq!(stray_pack_files(&s.remote_dir), Vec::<String>::new());

    // Everything reads back through the API...
    for app in apps {
        let r = s.get(&format!("/api/applications/{app}/releases"));
        r.assert_status(200);
        let versions: Vec<u64> =
            r.json["releases"].as_array().expect("releases").iter().filter_map(|v| v["version"].as_u64()).collect();
        assert_eq!(versions, (1..=8).rev().collect::<Vec<u64>>(), "{app}: {}", r.text);
    }
    let overview = s.get("/api/overview");
    overview.assert_status(200);
    let deployed = |env: &str| -> BTreeMap<String, u64> {
        let e = overview.json["environments"].as_array().expect("envs").iter().find(|e| e["name"] == env).cloned();
        let e = e.unwrap_or_else(|| panic!("{env} missing: {}", overview.text));
        e["applications"]
            .as_array()
            .expect("applications")
            .iter()
            .map(|a| (a["application"].as_str().expect("name").to_owned(), a["version"].as_u64().expect("version")))
            .collect()
    };
    let all = |v: u64| apps.iter().map(|a| ((*a).to_owned(), v)).collect::<BTreeMap<_, _>>();
    assert_eq!(deployed("dev"), all(8));
    let mut staging = all(8);
    staging.insert("db".into(), 3);
    assert_eq!(deployed("staging"), staging);
    assert_eq!(deployed("prod"), BTreeMap::from([("web".to_owned(), 2)]));
    let locks = s.get("/api/environments/prod/locks");
    assert_eq!(locks.json["locks"][0]["lockId"], "freeze", "{}", locks.text);
    let locks = s.get("/api/environments/staging/locks");
    assert_eq!(locks.json["locks"], json!([]), "{}", locks.text);
    let locks = s.get("/api/environments/staging/applications/db/locks");
    assert_eq!(locks.json["locks"][0]["message"], "incident", "{}", locks.text);
    // ...and every manifest, byte for byte, from the packs (read by the git CLI).
    for app in apps {
        for n in 1..=8 {
            for env in ENVS {
                let path = format!("main:applications/{app}/releases/{n}/environments/{env}/manifests.yaml");
                assert_eq!(git(&s.repo_dir, &["cat-file", "blob", &path]), manifest(app, n, env), "{path}");
            }
        }
    }
    let path = "main:environments/staging/applications/web/manifests/manifests.yaml";
    assert_eq!(git(&s.remote_dir, &["cat-file", "blob", path]), manifest("web", 8, "staging"));
}

/// The loose and packed object counts.
fn objects(repo: &Path) -> (u64, u64) {
    let c = count_objects(repo);
    (c["count"], c["in-pack"])
}

#[test]
fn a_refused_upload_leaves_no_object_on_disk() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    let accepted = "kind: ConfigMap\ndata:\n  accepted: \"yes\"\n";
    s.release("web", Some("1"), &[("dev", accepted)]).assert_status(201);
    let before = objects(&s.repo_dir);
    assert_eq!(before.0, 0, "loose objects after two writes");
    assert!(has_object(&s.repo_dir, &blob_id(accepted)), "the accepted manifest is in the repo");

    // 409: the same version with other content.
    let refused = format!("kind: ConfigMap\ndata:\n  refused: \"{:?}\"\n", Instant::now());
    s.release("web", Some("1"), &[("dev", &refused)]).assert_error(409, "release_exists", None);
    assert_eq!(objects(&s.repo_dir), before, "a 409 wrote objects");
    assert!(!has_object(&s.repo_dir, &blob_id(&refused)), "the refused manifest's blob is on disk");

    // A refusal batched with accepted uploads: sent at once, the writer folds them into a batch or a few; only what
    // the commits name is packed.
    let refused_batched = format!("kind: ConfigMap\ndata:\n  refused-in-a-batch: \"{:?}\"\n", Instant::now());
    let barrier = Arc::new(Barrier::new(13));
    let s = Arc::new(s);
    let threads: Vec<_> = (0..13)
        .map(|i| {
            let (s, barrier, refused_batched) = (s.clone(), barrier.clone(), refused_batched.clone());
            std::thread::spawn(move || {
                barrier.wait();
                if i == 0 {
                    s.release("web", Some("1"), &[("dev", &refused_batched)]).assert_error(409, "release_exists", None);
                    None
                } else {
                    let text = format!("kind: ConfigMap\ndata:\n  app: \"batched-{i}\"\n");
                    s.release(&format!("batched-{i}"), None, &[("dev", &text)]).assert_status(201);
                    Some(text)
                }
            })
        })
        .collect();
    let accepted_texts: Vec<String> = threads.into_iter().filter_map(|t| t.join().expect("uploader")).collect();
    assert!(
        !has_object(&s.repo_dir, &blob_id(&refused_batched)),
        "a refusal batched with accepted uploads left its blob"
    );
    for t in &accepted_texts {
        assert!(has_object(&s.repo_dir, &blob_id(t)), "an accepted upload's manifest is missing");
    }
    assert_eq!(objects(&s.repo_dir).0, 0, "loose objects after batched uploads");
    railyard_tests::assert_git_fsck_clean(&s.repo_dir);

    // 403: a token that may release only team pay's applications uploads one of team core's.
    let dir = tempfile::tempdir().expect("dir");
    let tokens = write_tokens(
        dir.path(),
        &[("admin-token", "Root", "[{action: admin}]"), ("pay-token", "Pat", "[{action: release, teams: [pay]}]")],
    );
    let a = Server::start_in(dir, &["--auth-tokens", tokens.to_str().expect("path")]);
    let admin = Some("admin-token");
    railyard_tests::call(
        &a,
        "POST",
        "/api/environments",
        admin,
        Some(&json!({"name": "dev", "upstream": {"latest": true}})),
    )
    .assert_status(201);
    upload_as(&a, "/api/release", admin, &release_parts("core-app", None, &[("dev", accepted)])).assert_status(201);
    let before = objects(&a.repo_dir);
    let forbidden = format!("kind: ConfigMap\ndata:\n  forbidden: \"{:?}\"\n", Instant::now());
    let parts = release_parts("core-app", None, &[("dev", &forbidden)]);
    upload_as(&a, "/api/release", Some("pay-token"), &parts).assert_error(403, "forbidden", None);
    assert_eq!(objects(&a.repo_dir), before, "a 403 wrote objects");
    assert!(!has_object(&a.repo_dir, &blob_id(&forbidden)), "the forbidden manifest's blob is on disk");
    railyard_tests::assert_git_fsck_clean(&a.repo_dir);
}

#[derive(Default)]
struct Acked {
    locks: BTreeSet<String>,
    releases: BTreeSet<(String, u64)>,
    /// Answers other than success (a kill shows as a dropped connection, never as an error answer).
    refused: Vec<String>,
}

/// Writes against `url` until `stop`: locks on dev, every third a release of an application of its own. Records
/// what was acknowledged; `done` counts the acknowledged writes.
fn keep_writing(url: String, first: usize, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>, done: Arc<Mutex<usize>>) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let mut n = first;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let release = n.is_multiple_of(3);
        let answer = if release {
            let app = format!("kill-{n}");
            let text = manifest(&app, n, "dev");
            let parts = release_parts(&app, None, &[("dev", &text)]);
            let parts: Vec<(&str, &[u8])> = parts.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            let (ct, body) = railyard_tests::multipart_body(&parts);
            client.post(format!("{url}/api/release")).header("content-type", ct).body(body).send()
        } else {
            client.put(format!("{url}/api/environments/dev/locks/w-{n}")).json(&json!({"message": "kill"})).send()
        };
        let Ok(resp) = answer else { return };
        let status = resp.status().as_u16();
        let Ok(body) = resp.json::<Value>() else { return };
        let mut a = acked.lock().unwrap_or_else(|p| p.into_inner());
        match (release, status) {
            (true, 201) => {
                a.releases.insert((format!("kill-{n}"), body["version"].as_u64().expect("version")));
            }
            (false, 200) => {
                a.locks.insert(format!("w-{n}"));
            }
            _ => a.refused.push(format!("write {n}: {status} {body}")),
        }
        drop(a);
        *done.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }
}

fn pack_files(repo: &Path) -> (usize, bool) {
    let Ok(entries) = std::fs::read_dir(repo.join("objects").join("pack")) else { return (0, false) };
    let names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let packs = names.iter().filter(|n| n.ends_with(".idx")).count();
    let temporary = names.iter().any(|n| n.starts_with("tmp_") || n.starts_with("pack_git2") || n.ends_with(".lock"));
    (packs, temporary)
}

const MIN_KILLS: usize = 10;
const MAX_KILLS: usize = 20;
const KILL_TIME: Duration = Duration::from_secs(25);

/// What the kill loop leaves: the server of the last start (its roll-up done), the acknowledged writes, and the
/// object counts after that start.
struct Killed {
    s: Server,
    acked: Acked,
    counts: HashMap<String, u64>,
}

/// Starts the server on the same directory again and again; each time writes keep coming until more than
/// `MAX_PACKS` new packs were made (so the run rolls up: its consolidation runs at start and then at most every 250 ms
/// after a commit), then kill -9 — when a temporary pack file shows, when the pack count drops (rolled-up packs being
/// removed), or after a random delay, whichever the round picks, within 3 s. Then one last start, whose roll-up runs.
fn kill_loop() -> Killed {
    let mut rng = Rng::from_env("PACKS_SEED");
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    let repo: PathBuf = s.repo_dir.clone();
    let mut dir = s.kill();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let (mut kills, mut during_temporary, mut during_removal, mut next) = (0, 0, 0, 0usize);
    let started = Instant::now();
    while kills < MIN_KILLS || (kills < MAX_KILLS && started.elapsed() < KILL_TIME) {
        let s = Server::start_in(dir, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(0));
        let writer = {
            let (url, stop, acked, done) = (s.url.clone(), stop.clone(), acked.clone(), done.clone());
            let first = next;
            std::thread::spawn(move || keep_writing(url, first, stop, acked, done))
        };
        next += 100_000;
        let deadline = Instant::now() + Duration::from_secs(20);
        while *done.lock().unwrap_or_else(|p| p.into_inner()) < 10 {
            assert!(Instant::now() < deadline, "10 writes did not complete in 20 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        let how = rng.below(3);
        let delay = Duration::from_millis(rng.below(3000));
        let peak = pack_files(&repo).0;
        let watch = Instant::now();
        loop {
            let (packs, temporary) = pack_files(&repo);
            let now = watch.elapsed();
            if (how == 0 && temporary)
                || (how == 1 && packs + 2 < peak)
                || (how == 2 && now >= delay)
                || now.as_secs() >= 3
            {
                during_temporary += usize::from(temporary);
                during_removal += usize::from(packs + 2 < peak);
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        dir = s.kill();
        kills += 1;
        stop.store(true, Ordering::SeqCst);
        writer.join().expect("writer");
    }

    // The last start rolls the packs up (at start: no write needed).
    let s = Server::start_in(dir, &[]);
    let counts = wait_counts(&repo, Duration::from_secs(10), |c| c["packs"] <= 9)
        .unwrap_or_else(|c| panic!("the packs were not rolled up after the last start: {c:?}"));
    let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|p| p.into_inner()));
    eprintln!(
        "{kills} kills ({during_temporary} with a temporary pack file present, {during_removal} while packs were \
         being removed); {} locks and {} releases acknowledged; after the last start: {counts:?}",
        acked.locks.len(),
        acked.releases.len()
    );
    Killed { s, acked, counts }
}

#[test]
fn kill_9_during_roll_ups_loses_no_acknowledged_write() {
    let Killed { s, acked: a, counts } = kill_loop();
    let repo = s.repo_dir.clone();
    assert!(a.refused.is_empty(), "writes refused: {:?}", a.refused);
    assert_eq!(counts["count"], 0, "loose objects");
    let locks = s.get("/api/environments/dev/locks");
    locks.assert_status(200);
    let present: BTreeSet<String> = locks.json["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .filter_map(|l| l["lockId"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<&String> = a.locks.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged locks lost: {lost:?}");
    for (app, version) in &a.releases {
        let r = s.get(&format!("/api/applications/{app}/releases"));
        r.assert_status(200);
        assert_eq!(r.json["releases"][0]["version"], *version, "{app}: {}", r.text);
        let path = format!("main:applications/{app}/releases/{version}/environments/dev/manifests.yaml");
        let n: usize = app.trim_start_matches("kill-").parse().expect("n");
        assert_eq!(git(&repo, &["cat-file", "blob", &path]), manifest(app, n, "dev"));
    }
    railyard_tests::assert_git_fsck_clean(&repo);
    s.wait_exported();
    railyard_tests::assert_git_fsck_clean(&s.remote_dir);
    // Complete packs only (temporaries: the next test).
    let incomplete: Vec<String> = stray_pack_files(&repo).into_iter().filter(|f| f.starts_with("pack-")).collect();
    assert!(incomplete.is_empty(), "a .pack without its .idx or the other way round: {incomplete:?}");
}

#[test]
fn kill_9_during_roll_ups_leaves_no_temporary_pack_file_after_the_next_start() {
    let Killed { s, .. } = kill_loop();
    let stray = stray_pack_files(&s.repo_dir);
    assert!(stray.is_empty(), "temporary or incomplete pack files left after the last start's roll-up: {stray:?}");
}

/// Every blob path of `rev`'s tree with its id (git CLI).
fn ls_tree(repo: &Path, rev: &str) -> BTreeMap<String, String> {
    git(repo, &["ls-tree", "-r", "--full-tree", rev])
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            Some((path.to_owned(), meta.split_whitespace().nth(2)?.to_owned()))
        })
        .collect()
}

#[test]
fn a_train_over_200_apps_writes_the_tree_git_fast_import_writes() {
    use std::io::Write;
    let apps = 200;
    let spec = RepoSpec { apps, envs: 2, releases: apps, hot_releases: 0, commits: 0, argocd: false };
    let (s, _) = railyard_tests::start_generated(&spec, &[]);
    let pre = s.local_head().expect("head").to_string();
    let copy = s.dir.path().join("fast-import.git");
    let ok =
        Command::new("git").args(["clone", "--bare", "--no-local", "--quiet"]).arg(&s.repo_dir).arg(&copy).status();
    assert!(ok.expect("git clone").success());

    let r = s.put_json("/api/environments/env-1/releasetrain", &json!({}));
    r.assert_status(200);
    assert_eq!(r.json["environments"][0]["deployed"].as_array().map_or(0, Vec::len), apps, "{}", r.text);
    let train = r.commit().expect("the train commits");
    let train_tree = git(&s.repo_dir, &["rev-parse", &format!("{train}^{{tree}}")]).trim().to_owned();

    // The same change, derived from the pre-train repo alone: each application of env-0 (upstream latest) moves
    // into env-1 at env-0's version with its release's env-1 manifest; deployed_by/_email are Railyard's identity
    // when auth is off. Only the train's clock is taken from the train's own tree (deployed_at_utc).
    let at = git(
        &s.repo_dir,
        &["cat-file", "blob", &format!("{train}:environments/env-1/applications/app-00000/deployed_at_utc")],
    );
    let before = ls_tree(&copy, &pre);
    let mut stream =
        format!("commit refs/heads/fast-import\ncommitter Test <t@t> 1700000000 +0000\ndata 5\ntrain\nfrom {pre}\n");
    for i in 0..apps {
        let app = repogen::app(i);
        let version =
            git(&copy, &["cat-file", "blob", &format!("{pre}:environments/env-0/applications/{app}/version")]);
        let manifest = &before[&format!("applications/{app}/releases/{version}/environments/env-1/manifests.yaml")];
        let dir = format!("environments/env-1/applications/{app}");
        for (file, content) in [
            ("version", version.as_str()),
            ("deployed_by", "railyard"),
            ("deployed_by_email", "railyard@localhost"),
            ("deployed_at_utc", at.as_str()),
        ] {
            stream.push_str(&format!("M 100644 inline {dir}/{file}\ndata {}\n{content}\n", content.len()));
        }
        stream.push_str(&format!("M 100644 {manifest} {dir}/manifests/manifests.yaml\n"));
    }
    stream.push_str("done\n");
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet", "--done"])
        .env("GIT_DIR", &copy)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child.stdin.take().expect("stdin").write_all(stream.as_bytes()).expect("stream");
    assert!(child.wait().expect("fast-import").success());
    let expected_tree = git(&copy, &["rev-parse", "refs/heads/fast-import^{tree}"]).trim().to_owned();

    if train_tree != expected_tree {
        let (ours, theirs) = (ls_tree(&s.repo_dir, &train), ls_tree(&copy, "refs/heads/fast-import"));
        let differ: Vec<&String> = ours
            .keys()
            .chain(theirs.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|p| ours.get(*p) != theirs.get(*p))
            .collect();
        panic!("the train's tree {train_tree} is not fast-import's {expected_tree}; paths that differ: {differ:?}");
    }
    railyard_tests::assert_git_fsck_clean(&s.repo_dir);
    railyard_tests::assert_git_fsck_clean(&copy);
}
