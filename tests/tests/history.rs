//! The deployment history: every endpoint, paged with `limit` and `before`, equals a full walk of the branch's
//! commits with git2; the index beside the repo is rebuilt when deleted, truncated or damaged, and a kill -9 during
//! writes never leaves it answering wrong; Kuberpult's commit deployments; `railyard history`; a small version of
//! the history bench.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use railyard_tests::walk::{fetch_all, projection, walk};
use railyard_tests::{bin, percentile, repogen, Server};
use serde_json::{json, Value};

/// The walk's entries for `filter`, newest first.
fn expected(s: &Server, env: Option<&str>, app: Option<&str>) -> Vec<Value> {
    let mut all = walk(&s.repo_dir);
    all.reverse();
    all.into_iter()
        .filter(|e| env.is_none_or(|env| e["environment"] == env) && app.is_none_or(|app| e["application"] == app))
        .collect()
}

/// Every endpoint, fetched with a small page size, against the walk.
fn assert_history_matches_walk(s: &Server, envs: &[&str], apps: &[&str]) {
    let got = |path: &str| fetch_all(s, path, 3).iter().map(projection).collect::<Vec<_>>();
    assert_eq!(got("/api/history"), expected(s, None, None), "GET /api/history");
    for env in envs {
        assert_eq!(got(&format!("/api/environments/{env}/history")), expected(s, Some(env), None), "env {env}");
        for app in apps {
            let path = format!("/api/environments/{env}/applications/{app}/history");
            assert_eq!(got(&path), expected(s, Some(env), Some(app)), "{path}");
        }
    }
    for app in apps {
        assert_eq!(got(&format!("/api/applications/{app}/history")), expected(s, None, Some(app)), "app {app}");
    }
}

fn scenario(s: &Server) {
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s.release("web", None, &[("dev", "a: 1\n"), ("staging", "a: 1\n")]).assert_status(201);
    s.release("api", None, &[("dev", "b: 1\n"), ("staging", "b: 1\n")]).assert_status(201);
    s.put_json("/api/environments/staging/applications/api/locks/hold", &json!({"message": "wait for QA"}))
        .assert_status(200);
    s.put_json("/api/environments/staging/releasetrain", &json!({})).assert_status(200);
    s.release("web", None, &[("dev", "a: 2\n"), ("staging", "a: 2\n")]).assert_status(201);
    s.deploy("staging", "web", 2, "fail").assert_status(200);
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    s.delete("/api/environments/staging/applications/api/locks/hold").assert_status(200);
    s.put_json("/api/environments/staging/releasetrain", &json!({})).assert_status(200);
    s.put_json("/api/environments/dev/locks/freeze", &json!({"message": "release freeze"})).assert_status(200);
}

#[test]
fn history_endpoints_equal_a_full_walk_of_the_commits() {
    let s = Server::start();
    scenario(&s);
    assert_history_matches_walk(&s, &["dev", "staging"], &["web", "api"]);

    // The entries say what a person asks: who, what, from which version to which, and why.
    let r = s.get("/api/environments/staging/applications/web/history?limit=20");
    r.assert_status(200);
    let e = &r.json["entries"];
    let moved =
        |x: &Value| (x["action"].as_str().map(str::to_owned), x["from_version"].as_u64(), x["to_version"].as_u64());
    assert_eq!(moved(&e[0]), (Some("train".to_owned()), Some(1), Some(2)), "{}", r.text);
    assert_eq!(moved(&e[1]), (Some("deploy".to_owned()), Some(2), Some(1)));
    assert_eq!(e[1]["source"], "manual");
    assert_eq!(moved(&e[3]), (Some("train".to_owned()), None, Some(1)));
    let train = &e[0];
    assert_eq!(train["source"], "train from dev");
    assert_eq!(train["request"]["request"]["kind"], "release-train", "the request as recorded");
    assert!(train["author"]["name"].is_string() && train["author"]["email"].is_string());
    assert!(train["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let upload = s.get("/api/environments/dev/applications/web/history").json["entries"][0].clone();
    assert_eq!((upload["action"].as_str(), upload["source"].as_str()), (Some("deploy"), Some("release upload")));
    let lock = &s.get("/api/environments/dev/history?limit=1").json["entries"][0];
    assert_eq!((lock["action"].as_str(), lock["lock_id"].as_str()), (Some("lock"), Some("freeze")));
    assert_eq!(lock["message"], "release freeze");

    // `before` takes a commit too: only entries of older commits.
    let all = fetch_all(&s, "/api/history", 500);
    let third = all[2]["commit"].as_str().unwrap();
    let older = s.get(&format!("/api/history?limit=500&before={third}"));
    let want: Vec<&Value> =
        all.iter().skip_while(|e| e["commit"] != third).skip_while(|e| e["commit"] == third).collect();
    assert_eq!(older.json["entries"].as_array().unwrap().iter().collect::<Vec<_>>(), want);
    assert_eq!(s.get("/api/history").json["entries"].as_array().unwrap().len(), all.len().min(50));

    // Bad input and unknown names.
    for q in ["limit=0", "limit=501", "limit=ten", "limit=-1"] {
        s.get(&format!("/api/history?{q}")).assert_error(400, "invalid_input", Some("limit"));
    }
    for b in ["abc", "zz", "0123456789abcdef0123456789abcdef0123456z", "0123456789abcdef0123456789abcdef01234567:x"] {
        s.get(&format!("/api/history?before={b}")).assert_error(400, "invalid_input", Some("before"));
    }
    s.get("/api/history?before=0123456789abcdef0123456789abcdef01234567").assert_error(404, "not_found", None);
    s.get("/api/environments/nope/history").assert_error(404, "not_found", None);
    s.get("/api/applications/nope/history").assert_error(404, "not_found", None);
    s.get("/api/environments/dev/applications/nope/history").assert_error(404, "not_found", None);
    s.get("/api/environments/Bad_Name/history").assert_error(400, "invalid_name", None);
}

#[test]
fn commit_deployments_say_where_a_source_commit_is_deployed() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("prod", json!({"environment": "dev"}), None);
    let parts = |commit: &str| {
        let mut p = railyard_tests::release_parts("web", None, &[("dev", "a\n"), ("prod", "a\n")]);
        p.retain(|(name, _)| name != "source_commit_id");
        p.push(("source_commit_id".into(), commit.as_bytes().to_vec()));
        p
    };
    let (c1, c2) = ("1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222");
    s.upload(&parts(c1)).assert_status(201);
    s.put_json("/api/environments/prod/releasetrain", &json!({})).assert_status(200);
    s.upload(&parts(c2)).assert_status(201);
    let r = s.get(&format!("/api/commit-deployments/{c1}"));
    r.assert_status(200);
    assert_eq!(
        r.json["deploymentStatus"]["web"]["deploymentStatus"],
        json!({"dev": "DEPLOYED", "prod": "DEPLOYED"}),
        "{}",
        r.text
    );
    let r = s.get(&format!("/api/commit-deployments/{}", &c2[..10]));
    assert_eq!(
        r.json["deploymentStatus"]["web"]["deploymentStatus"],
        json!({"dev": "DEPLOYED", "prod": "PENDING"}),
        "{}",
        r.text
    );
    assert_eq!(r.json["applications"]["web"]["release"], 2);
    assert_eq!(r.json["applications"]["web"]["environments"]["prod"]["deployed_version"], 1);
    s.get("/api/commit-deployments/3333333333333333333333333333333333333333").assert_error(404, "not_found", None);
    s.get("/api/commit-deployments/xyz").assert_error(400, "invalid_input", Some("commit"));
}

#[test]
fn the_index_is_rebuilt_when_deleted_truncated_or_damaged() {
    let s = Server::start();
    scenario(&s);
    let mut before = fetch_all(&s, "/api/history", 500);
    let file = s.repo_dir.join("railyard/history/index.jsonl");
    let mut dir = s.kill();
    let lines = std::fs::read_to_string(&file).expect("the index file exists");
    assert!(lines.lines().count() > 5, "{lines}");
    let half = lines.len() / 2;
    let damaged_middle = {
        let mut l: Vec<String> = lines.lines().map(str::to_owned).collect();
        l[3] = l[3]
            .replace("\"lock\"", "\"unlock\"")
            .replace("\"deploy\"", "\"train\"")
            .replace("\"release\"", "\"deploy\"");
        l.join("\n") + "\n"
    };
    type Damage<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let damages: [Damage<'_>; 4] = [
        ("deleted", Box::new(|| std::fs::remove_file(&file).expect("rm"))),
        ("truncated mid-line", Box::new(|| std::fs::write(&file, &lines[..half]).expect("write"))),
        ("a line altered", Box::new(|| std::fs::write(&file, &damaged_middle).expect("write"))),
        ("empty", Box::new(|| std::fs::write(&file, "").expect("write"))),
    ];
    for (what, damage) in damages {
        damage();
        let s = Server::start_in(dir, &[]);
        assert_eq!(fetch_all(&s, "/api/history", 500), before, "index {what}");
        assert_history_matches_walk(&s, &["dev", "staging"], &["web", "api"]);
        s.put_json("/api/environments/dev/locks/after", &json!({})).assert_status(200);
        assert_history_matches_walk(&s, &["dev"], &["web"]);
        s.delete("/api/environments/dev/locks/after").assert_status(200);
        before = fetch_all(&s, "/api/history", 500);
        dir = s.kill();
    }
}

#[test]
fn kill_9_during_writes_never_leaves_the_index_answering_wrong() {
    let mut s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.release("web", None, &[("dev", "a: 1\n")]).assert_status(201);
    s.release("web", None, &[("dev", "a: 2\n")]).assert_status(201);
    let started = Instant::now();
    let mut rounds = 0;
    let mut seed = started.elapsed().as_nanos() as u64 | 1;
    while rounds < 12 && started.elapsed() < Duration::from_secs(60) {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (url, stop) = (s.url.clone(), stop.clone());
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let req = if w == 0 {
                            client
                                .put(format!("{url}/api/environments/dev/applications/web/deploy"))
                                .json(&json!({"version": i % 2 + 1}))
                        } else {
                            client
                                .put(format!("{url}/api/environments/dev/locks/r{rounds}-w{w}-{i}"))
                                .json(&json!({"message": "m"}))
                        };
                        let _ = req.send();
                        let _ = client.get(format!("{url}/api/environments/dev/history?limit=5")).send();
                        i += 1;
                    }
                })
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 500));
        let dir = s.kill();
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            let _ = w.join();
        }
        s = Server::start_in(dir, &[]);
        assert_history_matches_walk(&s, &["dev"], &["web"]);
        rounds += 1;
    }
    eprintln!("history index: {rounds} kill -9 rounds, answers equal the walk after each");
    assert!(rounds >= 5, "only {rounds} rounds in the time limit");
}

#[test]
fn railyard_history_prints_the_newest_entries() {
    let s = Server::start();
    scenario(&s);
    let out = std::process::Command::new(bin("railyard"))
        .args(["--url", &s.url, "history", "--environment", "staging", "--application", "web", "--limit", "2"])
        .output()
        .expect("railyard");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TIME") && lines[0].contains("ACTION"), "{text}");
    assert!(lines[1].contains("train") && lines[1].contains("1 → 2") && lines[1].contains("train from dev"), "{text}");
    assert!(lines[2].contains("deploy") && lines[2].contains("2 → 1") && lines[2].contains("manual"), "{text}");
    assert!(lines[3].starts_with("more: --before "), "{text}");
    let out = std::process::Command::new(bin("railyard"))
        .args(["--url", &s.url, "--output", "json", "history", "--application", "api"])
        .output()
        .expect("railyard");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(expected(&s, None, Some("api")).len()));
}

/// The history bench, small: the newest 20 entries of one app in one environment on a generated repo are those a
/// full walk finds, request after request (the timings are printed; the figures, on 100,000 commits, come from the
/// bench: docs/benchmarks.md).
#[test]
fn newest_entries_of_an_app_are_fast_on_a_generated_repo() {
    let dir = tempfile::tempdir().expect("dir");
    let spec = repogen::RepoSpec { apps: 20, envs: 3, releases: 40, hot_releases: 0, commits: 3_000, argocd: false };
    repogen::generate(&dir.path().join("repo.git"), &spec);
    let s = Server::start_in(dir, &[]);
    let path = "/api/environments/env-0/applications/app-00003/history?limit=20";
    let first = s.get(path);
    first.assert_status(200);
    let walked: Vec<Value> = expected(&s, Some("env-0"), Some("app-00003")).into_iter().take(20).collect();
    let commits = |v: &[Value]| v.iter().map(|e| e["commit"].clone()).collect::<Vec<_>>();
    assert_eq!(commits(first.json["entries"].as_array().expect("entries")), commits(&walked), "{}", first.text);
    assert!(!walked.is_empty(), "the generated repo has entries of the app there");
    let client = s.client();
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let r = client.get(s.at(path)).send().expect("GET");
        assert_eq!(r.status(), 200);
        let body: Value = r.json().expect("json");
        times.push(started.elapsed());
        assert_eq!(body["entries"], first.json["entries"]);
    }
    let p50 = percentile(&mut times, 50.0);
    let p99 = percentile(&mut times, 99.0);
    eprintln!("history on 3,000 commits: p50 {:.2} ms, p99 {:.2} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
}
