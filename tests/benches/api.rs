//! End-to-end benchmarks of the real `railyard-api` binary (release build) over HTTP on 127.0.0.1, each against a
//! baseline measured in the same run:
//!
//! - `latency`: p50/p99 of single deploys, locks and release uploads on generated repos from 10 to 10,000 releases
//!   and up to 100,000 commits of history; baseline: the same on the smallest repo (flatness), target p99 ≤ 20 ms.
//! - `load`: 500 concurrent writers uploading releases, with batching (default `--batch-max 100`) against
//!   `--batch-max 1`; throughput, p50/p99, peak RSS; every acknowledged upload checked on the remote.
//! - `train`: a release train over 1,000 applications through the API: latency and the API's peak RSS.
//!
//! - `history`: p50/p99 of the newest 20 history entries of one app in one environment on generated repos of 1,000
//!   and 100,000 commits (target p99 ≤ 20 ms, and the big repo within 20 % of the small one), and the time the
//!   index takes to build at start.
//! - `webhooks`: lock latency with no subscriber against a subscriber that never answers (and one that does).
//! - `argocd`: a deploy in an environment of 10 and of 1,000 applications, with and without Argo CD settings.
//! - `retention`: upload p50 of one application after 10, 1,000 and 10,000 uploads with `--release-versions-limit`
//!   at its default (20), every upload a real one through the API; baseline: the same application's history
//!   generated with retention off (`0`), where an upload's cost grows with the releases it holds.
//! - `ui`: the overview on 100 and 1,000 applications × 10 environments: `GET /api/overview` warm, with
//!   `If-None-Match` (304) and first after a write (cold snapshot), `GET /` warm, and the page in headless Chromium
//!   (its navigation timing); baseline: a std `TcpListener` serving a static body of the same size. Targets: p99
//!   ≤ 50 ms, interactive within 1.5 s.
//!
//! `make bench` (builds the binaries in release first), or
//! `cargo build --release --bins && cargo bench -p railyard-tests --bench api [-- latency|load|train|history|webhooks|argocd|retention|ui]`.
//! Sizes: `RAILYARD_BENCH_SAMPLES` (requests per kind, default 200), `RAILYARD_BENCH_WRITERS` (500),
//! `RAILYARD_BENCH_UPLOADS` (uploads per writer, 4), `RAILYARD_BENCH_MAX_COMMITS` (100000).

use std::path::Path;
use std::time::{Duration, Instant};

use railyard_tests::repogen::{self, RepoSpec};
use railyard_tests::{load, peak_rss_kib, percentile, Server};
use serde_json::json;

fn var(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A server on a generated repo whose remote already has everything (so the exporter is idle while we measure).
fn server_on(spec: &RepoSpec, extra: &[&str]) -> (Server, Duration) {
    railyard_tests::start_generated(spec, extra)
}

fn timed(f: impl FnOnce() -> railyard_tests::Reply, expect: u16) -> Duration {
    let started = Instant::now();
    let r = f();
    let took = started.elapsed();
    r.assert_status(expect);
    took
}

struct Row {
    label: String,
    generated: Duration,
    deploy: (Duration, Duration),
    lock: (Duration, Duration),
    upload: (Duration, Duration),
}

/// `samples` deploys, locks and release uploads, one at a time; every one of them changes the repo (a deploy
/// alternates an application between its releases 1 and 2 in `env-2`). `hot`: deploy and upload only `app-00000`.
fn measure(label: String, spec: &RepoSpec, samples: usize, hot: bool) -> Row {
    // Retention off: these rows measure the cost of the history itself (`retention` measures it on).
    let (s, generated) = server_on(spec, &["--release-versions-limit", "0"]);
    let (mut deploys, mut locks, mut uploads) = (Vec::new(), Vec::new(), Vec::new());
    let manifests = [("env-0", "kind: ConfigMap\n"), ("env-1", "kind: ConfigMap\n"), ("env-2", "kind: ConfigMap\n")];
    for i in 0..samples {
        let (app, version) =
            if hot { (0, (i % 2) as u64 + 1) } else { (i % spec.apps, ((i / spec.apps) % 2) as u64 + 1) };
        deploys.push(timed(|| s.deploy("env-2", &repogen::app(app), version, "fail"), 200));
        let path = format!("/api/environments/env-1/locks/bench-{i}");
        locks.push(timed(|| s.put_json(&path, &json!({"message": "bench"})), 200));
        let name = if hot { repogen::app(0) } else { format!("bench-{i:05}") };
        uploads.push(timed(|| s.release(&name, None, &manifests), 201));
    }
    let p = |v: &mut Vec<Duration>| (percentile(v, 50.0), percentile(v, 99.0));
    let row = Row { label, generated, deploy: p(&mut deploys), lock: p(&mut locks), upload: p(&mut uploads) };
    println!(
        "  {}: generated in {:.1}s; deploy p50 {:.2} p99 {:.2} ms; lock p50 {:.2} p99 {:.2} ms; upload p50 {:.2} p99 {:.2} ms",
        row.label,
        row.generated.as_secs_f64(),
        ms(row.deploy.0),
        ms(row.deploy.1),
        ms(row.lock.0),
        ms(row.lock.1),
        ms(row.upload.0),
        ms(row.upload.1)
    );
    row
}

fn table(title: &str, rows: &[Row]) {
    let base = &rows[0];
    println!("\n{title}\n");
    println!("| repo | deploy p50 / p99 (ms) | lock p50 / p99 (ms) | upload p50 / p99 (ms) | p50 vs first row (deploy, lock, upload) |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2}, {:.2}, {:.2} |",
            r.label,
            ms(r.deploy.0),
            ms(r.deploy.1),
            ms(r.lock.0),
            ms(r.lock.1),
            ms(r.upload.0),
            ms(r.upload.1),
            ms(r.deploy.0) / ms(base.deploy.0),
            ms(r.lock.0) / ms(base.lock.0),
            ms(r.upload.0) / ms(base.upload.0),
        );
    }
}

fn latency() {
    let samples = var("RAILYARD_BENCH_SAMPLES", 200);
    let max_commits = var("RAILYARD_BENCH_MAX_COMMITS", 100_000);
    // Every app has releases 1 and 2; 100 apps × 3 envs.
    let base = RepoSpec { apps: 100, envs: 3, releases: 200, hot_releases: 0, commits: 0, argocd: false };
    println!("\n## latency: single requests over HTTP, {samples} of each kind, one at a time");
    let mut history = Vec::new();
    for commits in [201, 1_000, 10_000, max_commits] {
        let spec = RepoSpec { commits, ..base };
        history.push(measure(format!("{commits} commits"), &spec, samples, false));
    }
    table("History length (100 apps × 3 envs, 2 releases each; padded with lock/unlock commits):", &history);
    let mut releases = Vec::new();
    for hot in [8, 98, 998, 9_998] {
        let spec = RepoSpec { hot_releases: hot, ..base };
        releases.push(measure(format!("app-00000 with {} releases", hot + 2), &spec, samples, true));
    }
    table("Releases of one application (deploys and uploads of that application):", &releases);
}

fn load_run(label: &str, extra: &[&str], writers: usize, per_writer: usize) -> f64 {
    let spec = RepoSpec { apps: 1, envs: 2, releases: 1, hot_releases: 0, commits: 2, argocd: false };
    let (s, _) = server_on(&spec, extra);
    let mut report = load::uploads(&s, writers, per_writer, &["env-0", "env-1"]);
    let exported = Instant::now();
    let lost = load::lost_on_remote(&s, &report);
    let drain = exported.elapsed();
    let commits = {
        let repo = git2::Repository::open_bare(&s.repo_dir).expect("repo");
        let mut walk = repo.revwalk().expect("walk");
        walk.push_ref("refs/heads/main").expect("head");
        walk.count() - 2
    };
    println!(
        "| {label} | {} | {:.0}/s | {:.1} | {:.1} | {commits} | {:.1}s | {} | {} | {} MiB |",
        report.acked.len(),
        report.throughput(),
        ms(report.p(50.0)),
        ms(report.p(99.0)),
        drain.as_secs_f64(),
        report.errors.len(),
        lost.len(),
        peak_rss_kib(s.pid()).unwrap_or(0) / 1024,
    );
    assert!(lost.is_empty(), "acknowledged uploads missing on the remote: {lost:?}");
    report.throughput()
}

fn load() {
    let writers = var("RAILYARD_BENCH_WRITERS", 500);
    let per_writer = var("RAILYARD_BENCH_UPLOADS", 4);
    println!("\n## load: {writers} concurrent writers × {per_writer} release uploads (2 envs each)");
    println!("\n| config | acknowledged | throughput | p50 (ms) | p99 (ms) | commits | export drained after | errors | lost | API peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let batched = load_run("`--batch-max 100` (default)", &[], writers, per_writer);
    let single = load_run("`--batch-max 1` (baseline)", &["--batch-max", "1"], writers, per_writer);
    println!("\nbatching: {:.2}× the throughput of one commit per request", batched / single);
}

fn train() {
    let apps = 1000;
    let spec = RepoSpec { apps, envs: 2, releases: apps, hot_releases: 0, commits: apps + 1, argocd: false };
    let (s, _) = server_on(&spec, &[]);
    let before = peak_rss_kib(s.pid()).unwrap_or(0);
    let mut times = Vec::new();
    for round in 0..5 {
        // Alternate the target's state so every run moves all apps: lock-free train, then reset by a new release set.
        if round > 0 {
            for i in 0..apps {
                s.deploy("env-1", &repogen::app(i), 1, "fail");
            }
        }
        let started = Instant::now();
        let r = s.put_json("/api/environments/env-1/releasetrain", &json!({}));
        times.push(started.elapsed());
        r.assert_status(200);
        if round == 0 {
            let moved = r.json["environments"][0]["deployed"].as_array().map_or(0, Vec::len);
            assert_eq!(moved, apps, "{}", r.text);
        }
    }
    let after = peak_rss_kib(s.pid()).unwrap_or(0);
    let writer_ms: Vec<u64> = s
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "committed batch")
        .filter_map(|v| v["fields"]["ms"].as_u64())
        .collect();
    println!("  writer time per commit (log): {writer_ms:?} ms");
    println!("\n## train: release train over {apps} apps through the API (env-0 → env-1)");
    println!(
        "  first train {:.1} ms (later runs move nothing: {:.1} ms median)",
        ms(times[0]),
        ms(percentile(&mut times[1..].to_vec(), 50.0))
    );
    println!("  API peak RSS: {} MiB before, {} MiB after the trains", before / 1024, after / 1024);
}

/// `path` `samples` times; (p50, p99).
fn get_times(s: &Server, path: &str, samples: usize) -> (Duration, Duration) {
    let client = s.client();
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let r = client.get(s.at(path)).send().expect("GET");
        assert_eq!(r.status(), 200);
        let _ = r.bytes();
        times.push(started.elapsed());
    }
    (percentile(&mut times, 50.0), percentile(&mut times, 99.0))
}

fn history() {
    let samples = var("RAILYARD_BENCH_SAMPLES", 200) * 5;
    let max_commits = var("RAILYARD_BENCH_MAX_COMMITS", 100_000);
    let base = RepoSpec { apps: 100, envs: 3, releases: 200, hot_releases: 0, commits: 0, argocd: false };
    println!("\n## history: newest 20 entries of one app in one environment, {samples} requests");
    println!("\n| repo | index built at start | p50 (ms) | p99 (ms) | p99 vs 1,000 commits |");
    println!("|---|---|---|---|---|");
    let mut first = None;
    for commits in [1_000, max_commits] {
        let (s, _) = server_on(&RepoSpec { commits, ..base }, &[]);
        let started = Instant::now();
        // The first answer waits for the index the server builds at start.
        s.get("/api/environments/env-0/applications/app-00042/history?limit=20").assert_status(200);
        let built = started.elapsed();
        let (p50, p99) = get_times(&s, "/api/environments/env-0/applications/app-00042/history?limit=20", samples);
        let base99 = *first.get_or_insert(p99);
        println!(
            "| {commits} commits | {:.1}s | {:.2} | {:.2} | {:.2} |",
            built.as_secs_f64(),
            ms(p50),
            ms(p99),
            ms(p99) / ms(base99)
        );
    }
}

fn webhooks() {
    let samples = var("RAILYARD_BENCH_SAMPLES", 200);
    let spec = RepoSpec { apps: 10, envs: 3, releases: 20, hot_releases: 0, commits: 1_000, argocd: false };
    println!("\n## webhooks: {samples} lock writes, one at a time");
    println!("\n| subscribers | lock p50 (ms) | lock p99 (ms) |");
    println!("|---|---|---|");
    let hang = railyard_tests::webhook_receiver::WebhookReceiver::start(
        "bench-secret-0123456789",
        railyard_tests::webhook_receiver::Mode::Hang,
    );
    let up = railyard_tests::webhook_receiver::WebhookReceiver::start(
        "bench-secret-0123456789",
        railyard_tests::webhook_receiver::Mode::Up,
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("hooks.yaml");
    std::fs::write(
        &file,
        format!("- url: {}\n  secret: bench-secret-0123456789\n  events: ['*']\n- url: {}\n  secret: bench-secret-0123456789\n  events: ['*']\n", hang.url, up.url),
    )
    .expect("write");
    let file = file.to_str().expect("path").to_owned();
    for (label, extra) in
        [("none (baseline)", vec![]), ("one that never answers + one that does", vec!["--webhooks", file.as_str()])]
    {
        let (s, _) = server_on(&spec, &extra);
        let client = s.client();
        let mut times = Vec::new();
        for i in 0..samples {
            let started = Instant::now();
            let r =
                client.put(s.at(&format!("/api/environments/env-1/locks/b-{i}"))).json(&json!({})).send().expect("PUT");
            assert_eq!(r.status(), 200);
            times.push(started.elapsed());
        }
        println!("| {label} | {:.2} | {:.2} |", ms(percentile(&mut times, 50.0)), ms(percentile(&mut times, 99.0)));
    }
    let delivered = up.hooks().iter().filter(|h| h.valid).count();
    println!("\nthe answering subscriber received {delivered} signed events meanwhile");
}

/// Deploys of an application already in an environment with Argo CD settings, in an environment of 10 and of 1,000
/// applications: neither reads nor rewrites the environment's Argo CD file, so the two should take the same time.
/// A train first moves every app into `env-1` (the environment with settings), the one write that lists them all.
/// The same environments without Argo CD settings are the baseline: what a deploy costs in git alone.
fn argocd() {
    let samples = var("RAILYARD_BENCH_SAMPLES", 200);
    println!("\n## argocd: deploy of an app already in an environment with Argo CD settings, {samples} deploys");
    let mut rows = Vec::new();
    for (apps, argocd) in [(10, true), (1_000, true), (10, false), (1_000, false)] {
        // Releases 1 and 2 of every app; env-0 (upstream latest) runs release 2 of each, the train moves them to env-1.
        let spec = RepoSpec { apps, envs: 2, releases: 2 * apps, hot_releases: 0, commits: 0, argocd };
        let (s, _) = server_on(&spec, &[&format!("--argocd-repo-url={}", repogen::ARGOCD_REPO_URL)]);
        s.put_json("/api/environments/env-1/releasetrain", &json!({})).assert_status(200);
        s.wait_exported();
        let file = s.remote_file("argocd/v1alpha1/env-1.yaml");
        let listed = file.as_deref().map_or(0, |f| f.matches("kind: Application\n").count());
        assert_eq!(listed, if argocd { apps } else { 0 });
        let mut times = Vec::new();
        for i in 0..samples {
            let version = ((i / apps) % 2) as u64 + 1;
            times.push(timed(|| s.deploy("env-1", &repogen::app(i % apps), version, "fail"), 200));
        }
        s.wait_exported();
        assert_eq!(s.remote_file("argocd/v1alpha1/env-1.yaml"), file, "file untouched");
        let (p50, p99) = (percentile(&mut times, 50.0), percentile(&mut times, 99.0));
        println!("  {apps} apps, Argo CD settings {argocd}: deploy p50 {:.2} ms, p99 {:.2} ms", ms(p50), ms(p99));
        rows.push((apps, argocd, p50, p99));
    }
    println!(
        "\n| apps in the environment | Argo CD settings | deploy p50 / p99 (ms) | p50 vs 10 apps (same settings) |"
    );
    println!("|---|---|---|---|");
    for (apps, argocd, p50, p99) in &rows {
        let base = rows.iter().find(|r| r.0 == 10 && r.1 == *argocd).map_or(*p50, |r| r.2);
        println!("| {apps} | {argocd} | {:.2} / {:.2} | {:.2} |", ms(*p50), ms(*p99), ms(*p50) / ms(base));
    }
}

const RETENTION_MANIFESTS: [(&str, &str); 2] = [("env-0", "kind: ConfigMap\n"), ("env-1", "kind: ConfigMap\n")];

/// Uploads a release of `app-00000`; a train moves `env-1` (upstream `env-0`) after every 50th, so both environments
/// run recent releases as in a real pipeline. Returns the upload's latency.
fn retention_upload(s: &Server, done: &mut usize) -> Duration {
    let took = timed(|| s.release(&repogen::app(0), None, &RETENTION_MANIFESTS), 201);
    *done += 1;
    if done.is_multiple_of(50) {
        s.put_json("/api/environments/env-1/releasetrain", &json!({})).assert_status(200);
    }
    took
}

fn releases_held(s: &Server) -> usize {
    let r = s.get(&format!("/api/applications/{}/releases", repogen::app(0)));
    r.json["releases"].as_array().map_or(0, Vec::len)
}

fn retention() {
    let samples = var("RAILYARD_BENCH_SAMPLES", 200);
    let checkpoints = [10, 1_000, 10_000];
    println!("\n## retention: upload p50 of one application after N uploads, {samples} measured uploads at each point");
    let spec = RepoSpec { apps: 1, envs: 2, releases: 1, hot_releases: 0, commits: 2, argocd: false };
    let (s, _) = server_on(&spec, &[]);
    let mut rows = Vec::new();
    let mut done = 0;
    let started = Instant::now();
    for n in checkpoints {
        while done < n {
            retention_upload(&s, &mut done);
        }
        let mut times: Vec<Duration> = (0..samples).map(|_| retention_upload(&s, &mut done)).collect();
        let (p50, p99) = (percentile(&mut times, 50.0), percentile(&mut times, 99.0));
        let held = releases_held(&s);
        println!(
            "  after {n} uploads: p50 {:.2} ms, p99 {:.2} ms, {held} releases held ({:.0}s in)",
            ms(p50),
            ms(p99),
            started.elapsed().as_secs_f64()
        );
        rows.push((format!("{n} uploads, limit 20 (default)"), p50, p99, held));
    }
    for n in [10, 10_000] {
        let spec = RepoSpec { apps: 1, envs: 2, releases: 1, hot_releases: n - 1, commits: n + 1, argocd: false };
        let (s, _) = server_on(&spec, &["--release-versions-limit", "0"]);
        let mut done = 0;
        let mut times: Vec<Duration> = (0..samples).map(|_| retention_upload(&s, &mut done)).collect();
        let (p50, p99) = (percentile(&mut times, 50.0), percentile(&mut times, 99.0));
        rows.push((format!("{n} releases generated, limit 0 (baseline)"), p50, p99, releases_held(&s)));
    }
    let base = rows[0].1;
    println!("\n| history | upload p50 / p99 (ms) | releases held after | p50 vs first row |");
    println!("|---|---|---|---|");
    for (label, p50, p99, held) in &rows {
        println!("| {label} | {:.2} / {:.2} | {held} | {:.2} |", ms(*p50), ms(*p99), ms(*p50) / ms(base));
    }
}

/// Serves `body` at every path from a std `TcpListener` on 127.0.0.1 with keep-alive, computing nothing: what moving
/// the same bytes over HTTP costs (the baseline of the overview's GETs). Returns its base URL.
fn static_server(body: Vec<u8>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let body = std::sync::Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut out = stream;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                loop {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if out.write_all(head.as_bytes()).and_then(|_| out.write_all(&body)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// `samples` GETs of `url` over one connection (with `If-None-Match: etag` when given), each answered `expect`
/// and read to its end; (p50, p99).
fn url_times(url: &str, etag: Option<&str>, expect: u16, samples: usize) -> (Duration, Duration) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let mut req = client.get(url);
        if let Some(e) = etag {
            req = req.header("If-None-Match", e);
        }
        let r = req.send().expect("GET");
        assert_eq!(r.status().as_u16(), expect, "{url}");
        let _ = r.bytes().expect("body");
        times.push(started.elapsed());
    }
    (percentile(&mut times, 50.0), percentile(&mut times, 99.0))
}

/// The figures of one repo size; the browser's as (p50, max) in ms.
struct UiRow {
    apps: usize,
    json_bytes: usize,
    html_bytes: usize,
    static_file: (Duration, Duration),
    warm: (Duration, Duration),
    not_modified: (Duration, Duration),
    cold: (Duration, Duration),
    page: (Duration, Duration),
    first_load: Option<serde_json::Value>,
    browser: Vec<(&'static str, f64, f64)>,
}

const UI_ENVS: usize = 10;
const UI_LOADS: usize = 7;
const UI_COLD: usize = 20;

fn ui_measure(apps: usize, samples: usize) -> UiRow {
    // Releases 1 and 2 of every app; env-0 (upstream latest) runs 2, a train per environment moves it down the chain.
    let spec = RepoSpec { apps, envs: UI_ENVS, releases: 2 * apps, hot_releases: 0, commits: 0, argocd: false };
    let (s, generated) = server_on(&spec, &[]);
    for e in 1..UI_ENVS {
        let r = s.put_json(&format!("/api/environments/{}/releasetrain", repogen::env(e)), &json!({}));
        r.assert_status(200);
        assert_eq!(r.json["environments"][0]["deployed"].as_array().map_or(0, Vec::len), apps, "{}", r.text);
    }
    s.wait_exported();
    let overview = s.get("/api/overview");
    overview.assert_status(200);
    let envs = overview.json["environments"].as_array().expect("environments");
    assert_eq!(envs.len(), UI_ENVS);
    assert!(envs.iter().all(|e| e["applications"].as_array().map_or(0, Vec::len) == apps), "every app everywhere");
    let etag = format!("\"{}\"", s.local_head().expect("head"));
    let page = s.get("/");
    page.assert_status(200);
    assert_eq!(page.text.matches("<tr data-app=").count(), apps);
    println!(
        "  {apps} apps × {UI_ENVS} envs: generated in {:.1}s; overview JSON {} KiB, page {} KiB",
        generated.as_secs_f64(),
        overview.text.len() / 1024,
        page.text.len() / 1024
    );

    let static_url = static_server(overview.text.clone().into_bytes());
    let static_file = url_times(&static_url, None, 200, samples);
    let warm = url_times(&s.at("/api/overview"), None, 200, samples);
    let not_modified = url_times(&s.at("/api/overview"), Some(&etag), 304, samples);
    let page_times = url_times(&s.at("/"), None, 200, samples);

    // A deploy moves the head; once it is exported (so the exporter is idle again), one GET reads the new snapshot.
    let client = s.client();
    let mut cold = Vec::with_capacity(UI_COLD);
    for i in 0..UI_COLD {
        let version = 1 + ((i / apps) % 2) as u64;
        s.deploy(&repogen::env(UI_ENVS - 1), &repogen::app(i % apps), version, "fail").assert_status(200);
        s.wait_exported();
        let started = Instant::now();
        let r = client.get(s.at("/api/overview")).send().expect("GET");
        assert_eq!(r.status(), 200);
        let tag = r.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let _ = r.bytes().expect("body");
        cold.push(started.elapsed());
        assert_eq!(tag, Some(format!("\"{}\"", s.local_head().expect("head"))), "the new head's snapshot");
    }
    let cold = (percentile(&mut cold, 50.0), percentile(&mut cold, 99.0));

    // The page in headless Chromium: one unmeasured load of a fresh profile, then UI_LOADS loads, each of a URL of
    // its own (an unknown query parameter, ignored by the page) so none is answered from the browser's cache.
    let mut first_load = None;
    let mut browser = Vec::new();
    if let Some(b) = railyard_tests::browser::Browser::try_start() {
        let load = |i: usize| -> serde_json::Value {
            b.goto(&s.at(&format!("/?load={i}")));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let t = b.performance_timing();
                if t["loadEventEnd"].as_f64().unwrap_or(0.0) > 0.0 {
                    return t;
                }
                assert!(Instant::now() < deadline, "no load event: {t}");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        first_load = Some(load(0));
        let timings: Vec<serde_json::Value> = (1..=UI_LOADS).map(load).collect();
        assert_eq!(b.count("table#overview tr[data-app]"), apps, "rows in the browser");
        assert_eq!(b.count("table#overview td[data-env][data-app] span.version"), apps * UI_ENVS);
        for key in ["responseEnd", "domInteractive", "domContentLoadedEventEnd", "loadEventEnd"] {
            let mut v: Vec<f64> = timings.iter().map(|t| t[key].as_f64().expect(key)).collect();
            v.sort_by(f64::total_cmp);
            browser.push((key, v[v.len() / 2], v[v.len() - 1]));
        }
    } else {
        println!("  browser skipped: no Chromium/chromedriver and RAILYARD_SKIP_BROWSER=1");
    }
    UiRow {
        apps,
        json_bytes: overview.text.len(),
        html_bytes: page.text.len(),
        static_file,
        warm,
        not_modified,
        cold,
        page: page_times,
        first_load,
        browser,
    }
}

fn ui() {
    let samples = var("RAILYARD_BENCH_SAMPLES", 200);
    println!("\n## ui: the overview, {samples} GETs of each kind one at a time, {UI_COLD} after writes, {UI_LOADS} browser loads");
    let rows: Vec<UiRow> = [100, 1_000].into_iter().map(|apps| ui_measure(apps, samples)).collect();
    let (small, big) = (&rows[0], &rows[1]);
    let d2 = |p: (Duration, Duration)| format!("{:.2} / {:.2}", ms(p.0), ms(p.1));
    let head = format!("{} × {UI_ENVS}", small.apps);
    let big_head = format!("{} × {UI_ENVS}", big.apps);
    println!("\n| measure | {head}: p50 / p99 (ms) | {big_head}: p50 / p99 (ms) | target | {big_head} vs {head} (p50) | notes |");
    println!("|---|---|---|---|---|---|");
    let line = |label: &str, get: &dyn Fn(&UiRow) -> (Duration, Duration), target: &str, note: String| {
        let (a, b) = (get(small), get(big));
        println!("| {label} | {} | {} | {target} | {:.2} | {note} |", d2(a), d2(b), ms(b.0) / ms(a.0));
    };
    let vs = |r: &UiRow, p: (Duration, Duration), base: (Duration, Duration)| {
        format!("{}: p50 {:.2}×, p99 {:.2}×", r.apps, ms(p.0) / ms(base.0), ms(p.1) / ms(base.1))
    };
    line(
        "static body of the same size, std `TcpListener` (baseline)",
        &|r| r.static_file,
        "—",
        format!("bodies {} and {} KiB", small.json_bytes / 1024, big.json_bytes / 1024),
    );
    line(
        "`GET /api/overview`, warm snapshot (200)",
        &|r| r.warm,
        "p99 ≤ 50",
        format!("vs baseline {}; {}", vs(small, small.warm, small.static_file), vs(big, big.warm, big.static_file)),
    );
    line(
        "`GET /api/overview` with `If-None-Match` (304)",
        &|r| r.not_modified,
        "p99 ≤ 50",
        format!("vs warm 200 {}; {}", vs(small, small.not_modified, small.warm), vs(big, big.not_modified, big.warm)),
    );
    line(
        "`GET /api/overview` first after a deploy (cold snapshot)",
        &|r| r.cold,
        "p99 ≤ 50",
        format!("vs warm {}; {}", vs(small, small.cold, small.warm), vs(big, big.cold, big.warm)),
    );
    line(
        "`GET /` (HTML page), warm snapshot",
        &|r| r.page,
        "— (part of the 1.5 s)",
        format!("pages {} and {} KiB", small.html_bytes / 1024, big.html_bytes / 1024),
    );
    if !big.browser.is_empty() {
        println!("\nHeadless Chromium, `/` ({UI_LOADS} loads after one unmeasured; ms since navigation start):\n");
        println!("| navigation timing | {head}: p50 / max (ms) | {big_head}: p50 / max (ms) | target | {big_head} vs {head} (p50) |");
        println!("|---|---|---|---|---|");
        for (i, (key, p50, max)) in big.browser.iter().enumerate() {
            let (_, s50, smax) = small.browser[i];
            let target = match *key {
                "domInteractive" | "domContentLoadedEventEnd" => "≤ 1500",
                _ => "—",
            };
            println!("| {key} | {s50:.0} / {smax:.0} | {p50:.0} / {max:.0} | {target} | {:.2} |", p50 / s50);
        }
        for r in &rows {
            if let Some(t) = &r.first_load {
                println!(
                    "\n  first load of a fresh profile, {} apps: responseEnd {:.0}, domInteractive {:.0}, domContentLoadedEventEnd {:.0}, loadEventEnd {:.0} ms",
                    r.apps,
                    t["responseEnd"].as_f64().unwrap_or(0.0),
                    t["domInteractive"].as_f64().unwrap_or(0.0),
                    t["domContentLoadedEventEnd"].as_f64().unwrap_or(0.0),
                    t["loadEventEnd"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
}

/// `git-daemon` itself (not the `git daemon` wrapper, whose child outlives a kill of it) serving `base` on `port`;
/// killed on drop.
struct GitDaemonProcess(std::process::Child);

impl GitDaemonProcess {
    fn start(base: &Path, port: u16) -> Self {
        let exec = std::process::Command::new("git").arg("--exec-path").output().expect("git --exec-path");
        let program = Path::new(String::from_utf8_lossy(&exec.stdout).trim()).join("git-daemon");
        let child = std::process::Command::new(program)
            .args(["--export-all", "--enable=receive-pack", "--listen=127.0.0.1", "--reuseaddr"])
            .arg(format!("--base-path={}", base.display()))
            .arg(format!("--port={port}"))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git-daemon");
        let d = Self(child);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

impl Drop for GitDaemonProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `writers` threads writing unique locks for `secs` seconds, writer `w` on `servers[w % n]`; one fresh `git daemon`
/// remote. Returns (acknowledged, writes/s, p50, p99, not acknowledged, a note from the logs) and checks every
/// acknowledged lock is on the remote.
fn replicas_run(
    flags: &[&str],
    n: usize,
    writers: usize,
    secs: u64,
) -> (usize, f64, Duration, Duration, usize, String) {
    let base = tempfile::tempdir().expect("dir");
    let bare = git2::Repository::init_bare(base.path().join("remote.git")).expect("remote");
    bare.set_head("refs/heads/main").expect("HEAD");
    let port = railyard_tests::free_port();
    let _daemon = GitDaemonProcess::start(base.path(), port);
    let url = format!("git://127.0.0.1:{port}/remote.git");
    let servers: Vec<Server> =
        (0..n).map(|_| Server::start_in_with_git_url(tempfile::tempdir().expect("dir"), &url, flags)).collect();
    servers[0].create_env("dev", json!({"latest": true}), None);
    // Every replica has seen the environment before the clock starts.
    let head = servers[0].local_head().expect("head").to_string();
    for s in &servers {
        s.get(&format!("/api/environments?min_commit={head}")).assert_status(200);
    }
    let barrier = std::sync::Barrier::new(writers + 1);
    let (acked, mut times, refused, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (url, barrier) = (servers[w % n].url.clone(), &barrier);
                scope.spawn(move || {
                    let client =
                        reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
                    let (mut ok, mut times, mut refused) = (Vec::new(), Vec::new(), 0);
                    barrier.wait();
                    let end = Instant::now() + Duration::from_secs(secs);
                    let mut i = 0;
                    while Instant::now() < end {
                        let id = format!("b{w}-{i}");
                        i += 1;
                        let started = Instant::now();
                        let r = client
                            .put(format!("{url}/api/environments/dev/locks/{id}"))
                            .json(&json!({"message": "bench"}))
                            .send();
                        match r.map(|r| r.status().as_u16()) {
                            Ok(200) => {
                                times.push(started.elapsed());
                                ok.push(id);
                            }
                            _ => refused += 1,
                        }
                    }
                    (ok, times, refused)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let mut all = (Vec::new(), Vec::new(), 0, Duration::ZERO);
        for h in handles {
            let (ok, times, refused) = h.join().expect("writer");
            all.0.extend(ok);
            all.1.extend(times);
            all.2 += refused;
        }
        all.3 = started.elapsed();
        all
    });
    // After commit, the exporter pushes what was acknowledged; after push, it is there already.
    let deadline = Instant::now() + Duration::from_secs(120);
    while bare.refname_to_id("refs/heads/main").ok() != servers[0].local_head() {
        assert!(Instant::now() < deadline, "the remote did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let tree = bare.find_reference("refs/heads/main").and_then(|r| r.peel_to_tree()).expect("remote tree");
    let missing =
        acked.iter().filter(|id| tree.get_path(Path::new(&format!("environments/dev/locks/{id}/message"))).is_err());
    assert_eq!(missing.count(), 0, "acknowledged locks missing on the remote");
    // From the writers' logs: commits, and the pushes that found the branch moved by another replica.
    let (mut batches, mut rebuilt, mut most) = (0, 0, 0);
    for v in servers.iter().flat_map(|s| s.logs()).filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok()) {
        match v["fields"]["message"].as_str() {
            Some("committed batch") => batches += 1,
            Some("another replica moved the remote branch; rebuilding the batch on its head") => {
                rebuilt += 1;
                most = most.max(v["fields"]["attempt"].as_u64().unwrap_or(0));
            }
            _ => {}
        }
    }
    let note = format!(
        "{batches} commits ({:.1} requests each), {rebuilt} pushes found the branch moved, at most {} pushes for one batch",
        acked.len() as f64 / batches.max(1) as f64,
        most + 1
    );
    drop(servers);
    let throughput = acked.len() as f64 / elapsed.as_secs_f64();
    (acked.len(), throughput, percentile(&mut times, 50.0), percentile(&mut times, 99.0), refused, note)
}

fn replicas() {
    let writers = var("RAILYARD_BENCH_REPLICA_WRITERS", 100);
    let secs = var("RAILYARD_BENCH_REPLICA_SECONDS", 10) as u64;
    println!("\n## replicas: {writers} concurrent writers of unique locks for {secs}s each, one `git daemon` remote on 127.0.0.1");
    println!("\n| config | acknowledged | throughput | p50 (ms) | p99 (ms) | not acknowledged | throughput vs baseline | p50 / p99 vs baseline |");
    println!("|---|---|---|---|---|---|---|---|");
    let after_push = ["--ack", "after-push"];
    let mut base = None;
    let mut notes = Vec::new();
    for (label, flags, n) in [
        ("`--ack after-commit`, 1 replica (baseline)", &["--ack", "after-commit"][..], 1),
        ("`--ack after-push`, 1 replica", &after_push[..], 1),
        ("`--ack after-push`, 3 replicas", &after_push[..], 3),
    ] {
        let (acked, tput, p50, p99, refused, note) = replicas_run(flags, n, writers, secs);
        notes.push(format!("  {label}: {note}"));
        let (b_tput, b50, b99) = *base.get_or_insert((tput, p50, p99));
        println!(
            "| {label} | {acked} | {tput:.0}/s | {:.1} | {:.1} | {refused} | {:.2}× | {:.2}× / {:.2}× |",
            ms(p50),
            ms(p99),
            tput / b_tput,
            ms(p50) / ms(b50),
            ms(p99) / ms(b99)
        );
    }
    println!();
    for n in notes {
        println!("{n}");
    }
}

fn main() {
    let which: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    assert!(Path::new(&railyard_tests::bin("railyard-api")).exists());
    if run("latency") {
        latency();
    }
    if run("load") {
        load();
    }
    if run("train") {
        train();
    }
    if run("history") {
        history();
    }
    if run("webhooks") {
        webhooks();
    }
    if run("argocd") {
        argocd();
    }
    if run("retention") {
        retention();
    }
    if run("ui") {
        ui();
    }
    if run("replicas") {
        replicas();
    }
}
