//! Webhooks: every event of an acknowledged write reaches each subscriber at least once, signed, in order, also
//! across a subscriber outage and kill -9 of the API; a subscriber that never answers slows neither writes nor the
//! other subscribers; bad `--webhooks` files are refused at start-up without showing the secret.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use railyard_tests::webhook_receiver::{Mode, WebhookReceiver};
use railyard_tests::{bin, percentile, Server};
use serde_json::json;

const SECRET: &str = "s3cret-s3cret-s3cret";

fn hooks_file(dir: &Path, subs: &[(&str, &str, &str)]) -> String {
    let mut text = String::new();
    for (url, secret, events) in subs {
        text.push_str(&format!("- url: {url}\n  secret: {secret}\n  events: {events}\n"));
    }
    let path = dir.join("webhooks.yaml");
    std::fs::write(&path, text).expect("write");
    path.to_str().expect("path").to_owned()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_arrive_signed_in_order_after_the_subscriber_comes_back() {
    let all = WebhookReceiver::start(SECRET, Mode::Down);
    let deploys = WebhookReceiver::start("another-secret-1234", Mode::Up);
    let dir = tempfile::tempdir().expect("dir");
    let file =
        hooks_file(dir.path(), &[(&all.url, SECRET, "['*']"), (&deploys.url, "another-secret-1234", "[deploy]")]);
    let s = Server::start_in(dir, &["--webhooks", &file]);
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("qa", json!({"latest": true}), None);
    let mut commits = Vec::new();
    for i in 0..10 {
        let r = s.put_json(&format!("/api/environments/dev/locks/l{i}"), &json!({"message": format!("m{i}")}));
        r.assert_status(200);
        commits.push(r.commit().expect("commit"));
    }
    // dev is locked by now: the release is deployed to qa only.
    let r = s.release("web", None, &[("dev", "a: 1\n"), ("qa", "a: 1\n")]);
    r.assert_status(201);
    let release_commit = r.commit().expect("commit");
    // Down for a while: attempts fail and are retried.
    std::thread::sleep(Duration::from_secs(2));
    let d = s.get("/api/webhooks/deliveries");
    d.assert_status(200);
    assert!(!d.text.contains(SECRET), "{}", d.text);
    assert!(d.json["deliveries"].as_array().unwrap().iter().any(|x| x["status"] == "retrying"), "{}", d.text);
    assert!(d.json["subscribers"][0]["pending"].as_u64().unwrap() > 0, "{}", d.text);
    all.set_mode(Mode::Up);
    let history = railyard_tests::walk::fetch_all(&s, "/api/history", 500);
    // The subscriber was there before the first commit: it gets everything, the environment's creation included.
    let want: Vec<String> = history.iter().rev().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    wait_until("every event", Duration::from_secs(60), || {
        let got: BTreeSet<String> = all.hooks().iter().map(|h| h.delivery.clone()).collect();
        want.iter().all(|w| got.contains(w))
    });
    let hooks = all.hooks();
    assert!(hooks.iter().all(|h| h.valid), "every signature verifies");
    // In order: the first arrival of each id follows the history, oldest first.
    let mut seen = BTreeSet::new();
    let order: Vec<String> = hooks
        .iter()
        .filter(|h| h.event != "exported" && seen.insert(h.delivery.clone()))
        .map(|h| h.delivery.clone())
        .collect();
    assert_eq!(order, want);
    for h in &hooks {
        assert_eq!(h.body["id"], h.delivery.as_str());
        assert_eq!(h.body["type"], h.event.as_str());
        assert_eq!(h.body["exported"], h.event == "exported");
    }
    let lock = hooks.iter().find(|h| h.body["lock_id"] == "l3").expect("lock l3");
    assert_eq!((lock.event.as_str(), lock.body["message"].as_str()), ("lock", Some("m3")));
    assert_eq!(lock.body["commit"], commits[3].as_str());
    assert_eq!(lock.body["environment"], "dev");
    assert!(lock.body["author"]["email"].is_string() && lock.body["time"].is_string());
    // Once on the remote, an `exported` event per event.
    wait_until("exported events", Duration::from_secs(60), || {
        all.hooks().iter().any(|h| h.event == "exported" && h.body["commit"] == release_commit.as_str())
    });
    let exported =
        all.hooks().into_iter().find(|h| h.event == "exported" && h.body["lock_id"] == "l3").expect("exported l3");
    assert_eq!(exported.delivery, format!("{}:exported", lock.delivery));
    assert_eq!(exported.body["action"], "lock");
    // The deploy-only subscriber got the release's deploy to dev and nothing else.
    wait_until("the deploy event", Duration::from_secs(30), || !deploys.hooks().is_empty());
    let got = deploys.hooks();
    assert!(got.iter().all(|h| h.event == "deploy" && h.valid), "{got:?}");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].body["application"].as_str(), got[0].body["to_version"].as_u64()), (Some("web"), Some(1)));
    assert_eq!(
        (got[0].body["environment"].as_str(), got[0].body["source"].as_str()),
        (Some("qa"), Some("release upload"))
    );
    let d = s.get("/api/webhooks/deliveries?limit=1000");
    assert!(d.json["deliveries"].as_array().unwrap().iter().any(|x| x["status"] == "delivered"));
    let metrics = s.get("/metrics").text;
    assert!(metrics.contains("railyard_webhook_pending") && metrics.contains("railyard_webhook_failed"), "{metrics}");
    assert!(!metrics.contains(SECRET));
    assert!(!s.logs().iter().any(|l| l.contains(SECRET)), "a secret in the log");
}

#[test]
fn kill_9_during_500_writes_loses_no_event_of_an_acknowledged_write() {
    let rx = WebhookReceiver::start(SECRET, Mode::Up);
    let dir = tempfile::tempdir().expect("dir");
    let file = hooks_file(dir.path(), &[(&rx.url, SECRET, "[lock]")]);
    let mut s = Server::start_in(dir, &["--webhooks", &file]);
    s.create_env("dev", json!({"latest": true}), None);
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let started = Instant::now();
    let mut next = 0;
    let mut kills = 0;
    // Kill rounds over the first 400 writes; the last 100 (or more) run without kills, so that a loaded machine,
    // where few writes of a round are answered before its kill, still ends with enough acknowledged writes.
    while next < 400 && started.elapsed() < Duration::from_secs(120) {
        let round_end = (next + 60 + (started.elapsed().as_nanos() % 60) as usize).min(400);
        let url = s.url.clone();
        let batch: Vec<usize> = (next..round_end).collect();
        let handles: Vec<_> = batch
            .chunks(batch.len().div_ceil(4).max(1))
            .map(|chunk| {
                let (url, chunk) = (url.clone(), chunk.to_vec());
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
                    let mut ok = Vec::new();
                    for i in chunk {
                        let r = client
                            .put(format!("{url}/api/environments/dev/locks/w-{i}"))
                            .json(&json!({"message": "x"}))
                            .send();
                        if let Some(r) = r.filter_ok() {
                            ok.push((format!("w-{i}"), r));
                        }
                    }
                    ok
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + (started.elapsed().as_nanos() % 300) as u64));
        let dir = s.kill();
        kills += 1;
        for h in handles {
            for (id, commit) in h.join().expect("writer") {
                acked.insert(id, commit);
            }
        }
        next = round_end;
        s = Server::start_in(dir, &["--webhooks", &file]);
    }
    // The rest without kills.
    for i in next..500 {
        let r = s.put_json(&format!("/api/environments/dev/locks/w-{i}"), &json!({"message": "x"}));
        r.assert_status(200);
        acked.insert(format!("w-{i}"), r.commit().expect("commit"));
    }
    eprintln!("webhooks: {} acknowledged writes, {kills} kill -9 of the API", acked.len());
    assert!(kills >= 3 && acked.len() >= 100, "{kills} kills, {} acked", acked.len());
    wait_until("an event for every acknowledged write", Duration::from_secs(120), || {
        let got: BTreeSet<String> = rx
            .hooks()
            .iter()
            .filter(|h| h.valid)
            .filter_map(|h| h.body["lock_id"].as_str().map(str::to_owned))
            .collect();
        acked.keys().all(|k| got.contains(k))
    });
    let hooks = rx.hooks();
    assert!(hooks.iter().all(|h| h.valid));
    for h in &hooks {
        if let Some(commit) = acked.get(h.body["lock_id"].as_str().unwrap_or_default()) {
            assert_eq!(h.body["commit"], commit.as_str(), "the event names the acknowledged commit");
        }
    }
    // A redelivery keeps its id: one id per lock, however often it arrived.
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for h in &hooks {
        ids.entry(h.body["lock_id"].as_str().unwrap_or_default().to_owned()).or_default().insert(h.delivery.clone());
    }
    assert!(ids.values().all(|s| s.len() == 1), "an event came with two ids");
}

trait FilterOk {
    fn filter_ok(self) -> Option<String>;
}

impl FilterOk for reqwest::Result<reqwest::blocking::Response> {
    /// The commit of a 200 answer.
    fn filter_ok(self) -> Option<String> {
        let r = self.ok().filter(|r| r.status() == 200)?;
        let v: serde_json::Value = r.json().ok()?;
        v["commit"].as_str().map(str::to_owned)
    }
}

/// The p50 and the slowest of `n` lock writes.
fn lock_latency(s: &Server, n: usize) -> (Duration, Duration) {
    let client = s.client();
    let mut times = Vec::new();
    for i in 0..n {
        let started = Instant::now();
        let r = client.put(s.at(&format!("/api/environments/dev/locks/t-{i}"))).json(&json!({})).send().expect("PUT");
        assert_eq!(r.status(), 200);
        times.push(started.elapsed());
    }
    let slowest = times.iter().copied().max().unwrap_or_default();
    (percentile(&mut times, 50.0), slowest)
}

#[test]
fn a_subscriber_that_never_answers_slows_neither_writes_nor_other_subscribers() {
    let baseline = Server::start();
    baseline.create_env("dev", json!({"latest": true}), None);
    let (base, _) = lock_latency(&baseline, 40);
    let hang = WebhookReceiver::start(SECRET, Mode::Hang);
    let healthy = WebhookReceiver::start(SECRET, Mode::Up);
    let dir = tempfile::tempdir().expect("dir");
    let file = hooks_file(dir.path(), &[(&hang.url, SECRET, "['*']"), (&healthy.url, SECRET, "['*']")]);
    let s = Server::start_in(dir, &["--webhooks", &file]);
    s.create_env("dev", json!({"latest": true}), None);
    let (with_hang, slowest) = lock_latency(&s, 40);
    eprintln!("lock p50: {base:?} without webhooks, {with_hang:?} with a subscriber that never answers");
    // A write that waited for the hanging subscriber would take its 10 s delivery timeout; the figures, as ratios,
    // come from the bench (docs/benchmarks.md), not from this test.
    assert!(slowest < Duration::from_secs(5), "a write took {slowest:?} beside a subscriber that never answers");
    wait_until("the healthy subscriber's events", Duration::from_secs(20), || {
        healthy.hooks().iter().filter(|h| h.event == "lock").count() >= 40
    });
}

#[test]
fn bad_webhook_files_are_refused_at_start_up_without_the_secret() {
    let dir = tempfile::tempdir().expect("dir");
    for (subs, says) in [
        (vec![("ftp://127.0.0.1/x", "0123456789abcdef-secret", "['*']")], "http:// or https://"),
        (vec![("http://127.0.0.1/x", "too-short", "['*']")], "at least 16 bytes"),
    ] {
        let file = hooks_file(dir.path(), &subs);
        let out = std::process::Command::new(bin("railyard-api"))
            .args(["--listen", "127.0.0.1:0", "--webhooks", &file, "--repo-dir"])
            .arg(dir.path().join("repo.git"))
            .arg("--git-url")
            .arg(dir.path().join("remote.git"))
            .output()
            .expect("run");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{text}");
        assert!(text.contains(says) && text.contains("--webhooks"), "{text}");
        assert!(!text.contains(subs[0].1), "the secret shows: {text}");
    }
}
