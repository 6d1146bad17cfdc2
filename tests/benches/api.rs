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
    let writer_ms: Vec<u64> = committed_batches(&s.logs()).filter_map(|f| f["ms"].as_u64()).collect();
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
    let configs = [(10, true), (1_000, true), (10, false), (1_000, false)];
    let mut servers = Vec::new();
    for (apps, argocd) in configs {
        // Releases 1 and 2 of every app; env-0 (upstream latest) runs release 2 of each, the train moves them to env-1.
        let spec = RepoSpec { apps, envs: 2, releases: 2 * apps, hot_releases: 0, commits: 0, argocd };
        let (s, _) = server_on(&spec, &[&format!("--argocd-repo-url={}", repogen::ARGOCD_REPO_URL)]);
        s.put_json("/api/environments/env-1/releasetrain", &json!({})).assert_status(200);
        s.wait_exported();
        let file = s.remote_file("argocd/v1alpha1/env-1.yaml");
        let listed = file.as_deref().map_or(0, |f| f.matches("kind: Application\n").count());
        assert_eq!(listed, if argocd { apps } else { 0 });
        servers.push((s, file, Vec::new()));
    }
    // The four servers take their deploys in turn, one at a time: whatever else the machine does meanwhile weighs on
    // all four alike, instead of on whichever ran while it happened.
    for i in 0..samples {
        for ((apps, _), (s, _, times)) in configs.iter().zip(servers.iter_mut()) {
            let version = ((i / apps) % 2) as u64 + 1;
            times.push(timed(|| s.deploy("env-1", &repogen::app(i % apps), version, "fail"), 200));
        }
    }
    let mut rows = Vec::new();
    for ((apps, argocd), (s, file, mut times)) in configs.into_iter().zip(servers) {
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
    let started = Instant::now();
    let r = s.release(&repogen::app(0), None, &RETENTION_MANIFESTS);
    let took = started.elapsed();
    if r.status != 201 {
        let errors: Vec<String> = s.logs().into_iter().filter(|l| l.contains("ERROR") || l.contains("WARN")).collect();
        panic!(
            "upload {} answered {}: {}\nthe server's warnings and errors:\n{}",
            *done + 1,
            r.status,
            r.text,
            errors.join("\n")
        );
    }
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
    let _daemon = railyard_tests::GitDaemon::start(base.path(), port);
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

// ---- packs: one pack per batch, at 10,000 applications (issue 22) ----

/// A generated repo for `packs`: environments `env-0` (upstream latest) … `env-<envs-1>` in a chain, `releases`
/// releases of each of `apps` applications (`app-00000` …) with a manifest for every environment; `env-0` runs the
/// last release of every application, every other environment the one before (a train into any of them moves every
/// application). Written with Railyard's own transformers and commit format, 1,000 releases per commit, through an
/// in-memory object store, and packed at the end as the single pack a repo has after its roll-ups.
fn packs_generate(repo_dir: &Path, apps: usize, envs: usize, releases: usize) -> (git2::Oid, Duration) {
    use railyard_manifest::{commit, Envelope, Identity, Stage};
    let started = Instant::now();
    let repo = git2::Repository::init_bare(repo_dir).expect("repo");
    repo.set_head("refs/heads/main").expect("HEAD");
    let odb = repo.odb().expect("odb");
    let memory = odb.add_new_mempack_backend(1000).expect("mempack");
    let mut head: Option<git2::Oid> = None;
    let mut step = |requests: Vec<serde_json::Value>| {
        let base = head.map(|h| repo.find_commit(h).and_then(|c| c.tree()).expect("tree"));
        let mut stage = Stage::new(&repo, base);
        let mut applied = Vec::with_capacity(requests.len());
        for request in requests {
            let mut e: Envelope = serde_json::from_value(json!({"author": {"name": "packs", "email": "packs@localhost"}, "at": "2026-11-23T10:00:00Z", "request": request}))
                .expect("envelope");
            railyard_manifest::apply(&mut stage, &mut e).expect("generated request applies");
            applied.push(e);
        }
        railyard_manifest::finish(&mut stage).expect("Argo CD files");
        let tree = stage.write_tree().expect("tree");
        let refs: Vec<&Envelope> = applied.iter().collect();
        let message = commit::message(&refs);
        head = Some(commit::write_commit(&repo, head, tree, &Identity::default(), &message).expect("commit"));
    };
    step(
        (0..envs)
            .map(|i| {
                let upstream =
                    if i == 0 { json!({"latest": true}) } else { json!({"environment": repogen::env(i - 1)}) };
                json!({"kind": "create-environment", "name": repogen::env(i), "upstream": upstream})
            })
            .collect(),
    );
    for round in 1..=releases {
        if round == releases && releases > 1 {
            // Every environment after env-0 takes the release before the last, env-1 first (from env-0), then on.
            step(
                (1..envs)
                    .map(|e| json!({"kind": "release-train", "target": {"scope": "environment", "environment": repogen::env(e)}}))
                    .collect(),
            );
        }
        for first in (0..apps).step_by(1000) {
            let requests = (first..(first + 1000).min(apps))
                .map(|i| {
                    let a = repogen::app(i);
                    let manifests: serde_json::Map<String, serde_json::Value> = (0..envs)
                        .map(|e| {
                            let text = format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {a}\n  namespace: {}\n  annotations:\n    release: \"{round}\"\n", repogen::env(e));
                            (repogen::env(e), json!(repo.blob(text.as_bytes()).expect("blob").to_string()))
                        })
                        .collect();
                    json!({"kind": "create-release", "application": a, "team": "team-a", "source_commit_id": format!("{round:040x}"), "manifests": manifests})
                })
                .collect();
            step(requests);
        }
    }
    let head = head.expect("commits");
    let mut pack = repo.packbuilder().expect("packbuilder");
    pack.set_threads(2);
    let mut walk = repo.revwalk().expect("walk");
    walk.push(head).expect("head");
    pack.insert_walk(&mut walk).expect("objects");
    pack.write(&repo_dir.join("objects").join("pack"), 0o444).expect("pack");
    drop(pack);
    memory.reset().expect("memory");
    repo.reference("refs/heads/main", head, true, "packs: generated").expect("branch");
    (head, started.elapsed())
}

/// The generated repo of this size kept in `keep` (generated there first if it is not), copied to `repo`: runs that
/// compare two builds (`RAILYARD_BIN_RAILYARD_API=…`) then start from the same repo without generating it again.
fn packs_kept(keep: &Path, repo: &Path, apps: usize, envs: usize, releases: usize) -> (git2::Oid, Duration) {
    let kept = keep.join(format!("{apps}x{envs}x{releases}.git"));
    let generated = if kept.join("refs/heads/main").exists() {
        println!("  (the generated repo kept in {} is reused)", kept.display());
        Duration::ZERO
    } else {
        let _ = std::fs::remove_dir_all(&kept);
        std::fs::create_dir_all(keep).expect("keep dir");
        packs_generate(&kept, apps, envs, releases).1
    };
    let ok = std::process::Command::new("cp").arg("-a").arg(&kept).arg(repo).status().expect("cp");
    assert!(ok.success());
    let head = git2::Repository::open_bare(repo).and_then(|r| r.refname_to_id("refs/heads/main")).expect("head");
    (head, generated)
}

/// `git <args>` (in `dir` when given), panicking unless it succeeds; stdout.
fn packs_git(dir: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("git");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.args(args).output().expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sync -f <dir>`: flushes the filesystem of `dir` (the same `syncfs` the writer makes before it answers).
fn packs_sync(dir: &Path) {
    let ok = std::process::Command::new("sync").arg("-f").arg(dir).status().expect("sync");
    assert!(ok.success());
}

/// Asserts `git fsck --strict` is clean on the bare repo `repo` (a `notice:` — HEAD naming an unborn branch in a repo
/// made by `git clone --bare` of a generated one — is not a finding); returns how long it took.
fn packs_fsck(repo: &Path) -> Duration {
    let started = Instant::now();
    let (ok, text) = railyard_tests::git_fsck(repo);
    let findings: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("notice:")).collect();
    assert!(ok && findings.is_empty(), "git fsck --strict {}: {text}", repo.display());
    started.elapsed()
}

/// The packs and loose objects of a bare repo (`git count-objects -v`).
fn packs_count(repo: &Path) -> (u64, u64) {
    let out = packs_git(None, &["--git-dir", repo.to_str().expect("path"), "count-objects", "-v"]);
    let get = |key: &str| -> u64 {
        out.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    (get("packs:"), get("count:"))
}

/// One file a commit changed: its path, its blob id and its new content (None: removed).
struct PacksChange {
    path: String,
    id: git2::Oid,
    content: Option<Vec<u8>>,
}

/// The files `commit` changed against its parent, read from `repo`.
fn packs_changes(repo: &Path, commit: git2::Oid) -> Vec<PacksChange> {
    let repo = git2::Repository::open_bare(repo).expect("repo");
    let c = repo.find_commit(commit).expect("commit");
    let old = c.parent(0).and_then(|p| p.tree()).expect("parent tree");
    let diff = repo.diff_tree_to_tree(Some(&old), Some(&c.tree().expect("tree")), None).expect("diff");
    diff.deltas()
        .map(|d| {
            let path = d.new_file().path().or(d.old_file().path()).expect("path").to_string_lossy().into_owned();
            let removed = d.status() == git2::Delta::Deleted;
            let id = d.new_file().id();
            let content = (!removed).then(|| repo.find_blob(id).expect("blob").content().to_vec());
            PacksChange { path, id, content }
        })
        .collect()
}

/// The `git fast-import` stream that makes `changes` as one commit on `from` (on `refs/heads/main`): new content
/// inline, blobs the repo already has (in `have`) by id, as the most economical importer would.
fn packs_stream(from: &str, changes: &[PacksChange], have: &git2::Odb<'_>) -> Vec<u8> {
    let mut s = Vec::with_capacity(changes.len() * 120);
    s.extend_from_slice(
        format!(
            "commit refs/heads/main\ncommitter Bench <bench@localhost> 1700000000 +0000\ndata 5\ntrain\nfrom {from}\n"
        )
        .as_bytes(),
    );
    for c in changes {
        match &c.content {
            None => s.extend_from_slice(format!("D {}\n", c.path).as_bytes()),
            Some(_) if have.exists(c.id) => s.extend_from_slice(format!("M 100644 {} {}\n", c.id, c.path).as_bytes()),
            Some(content) => {
                s.extend_from_slice(format!("M 100644 inline {}\ndata {}\n", c.path, content.len()).as_bytes());
                s.extend_from_slice(content);
                s.push(b'\n');
            }
        }
    }
    s.extend_from_slice(b"done\n");
    s
}

/// `git fast-import` of `stream` into the bare repo `repo`, then `sync -f`: the time of both, and of the sync alone.
fn packs_fast_import(repo: &Path, stream: &[u8]) -> (Duration, Duration) {
    use std::io::Write;
    let started = Instant::now();
    let mut child = std::process::Command::new("git")
        .args(["fast-import", "--quiet", "--done"])
        .env("GIT_DIR", repo)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child.stdin.take().expect("stdin").write_all(stream).expect("stream");
    assert!(child.wait().expect("fast-import").success(), "git fast-import failed");
    let synced = Instant::now();
    packs_sync(repo);
    (started.elapsed(), synced.elapsed())
}

/// The peer baseline: the same files written into the work tree `work`, then `git add -A`, `git commit`, `git push`
/// to its bare `origin`, then `sync -f`; the time of it all.
fn packs_peer(work: &Path, changes: &[PacksChange]) -> Duration {
    let started = Instant::now();
    for c in changes {
        let file = work.join(&c.path);
        match &c.content {
            Some(content) => {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir).expect("dir");
                }
                std::fs::write(&file, content).expect("write");
            }
            None => std::fs::remove_file(&file).expect("remove"),
        }
    }
    packs_git(Some(work), &["add", "-A"]);
    packs_git(Some(work), &["commit", "-q", "-m", "train"]);
    packs_git(Some(work), &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    packs_sync(work);
    started.elapsed()
}

/// Waits until the remote branch is the local one; how long that took. The exporter pushes to a bare remote of the
/// repo's size: on the big repo that can take far longer than the harness's 30 s, so this waits up to 20 minutes.
fn packs_exported(s: &Server, exporting: bool) -> Duration {
    let started = Instant::now();
    if !exporting {
        return Duration::ZERO;
    }
    while s.local_head() != s.remote_head() {
        assert!(started.elapsed() < Duration::from_secs(1200), "the remote did not catch up in 20 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// Waits until the server is idle: everything exported, and no roll-up pending (at most `MAX_PACKS` packs, then 2.5 s
/// more: a roll-up runs at most every 2 s).
fn packs_quiet(s: &Server, exporting: bool) -> Duration {
    let exported = packs_exported(s, exporting);
    let deadline = Instant::now() + Duration::from_secs(600);
    while packs_count(&s.repo_dir).0 > 8 {
        assert!(Instant::now() < deadline, "the packs were not rolled up in 10 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(2500));
    exported
}

/// A server on a repo generated by [`packs_generate`], its remote a bare clone marked exported (the exporter idle),
/// beside a copy of the repo for `git fast-import` and, when `peer`, a clone with a work tree and its own bare remote.
struct PacksSetup {
    s: Server,
    generated: Duration,
    fast_import: std::path::PathBuf,
    peer: Option<std::path::PathBuf>,
    peer_remote: std::path::PathBuf,
    /// False with `--export external` and no `railyard-export` beside it: nothing is pushed, nothing waited for.
    exporting: bool,
}

impl PacksSetup {
    /// Stops the server (kill -9) and starts it again on the same repos with `extra`, pushing to `git_url` (None:
    /// the bare remote beside the repo, by its path).
    fn restart(&mut self, git_url: Option<&str>, extra: &[&str]) {
        let placeholder = tempfile::tempdir().expect("dir");
        let old = std::mem::replace(&mut self.s, Server::start_in(placeholder, &["--export", "external"]));
        let dir = old.kill();
        let new = match git_url {
            Some(url) => Server::start_in_with_git_url(dir, url, extra),
            None => Server::start_in(dir, extra),
        };
        drop(std::mem::replace(&mut self.s, new));
        self.exporting = !extra.windows(2).any(|w| w == ["--export", "external"]);
    }
}

fn packs_setup(apps: usize, envs: usize, releases: usize, peer: bool, extra: &[&str]) -> PacksSetup {
    let dir = tempfile::tempdir().expect("dir");
    let repo = dir.path().join("repo.git");
    let (head, generated) = match std::env::var_os("RAILYARD_BENCH_PACKS_KEEP") {
        Some(keep) => packs_kept(Path::new(&keep), &repo, apps, envs, releases),
        None => packs_generate(&repo, apps, envs, releases),
    };
    let path = |p: &Path| p.to_str().expect("path").to_owned();
    let (r, remote) = (path(&repo), dir.path().join("remote.git"));
    packs_git(None, &["clone", "--bare", "--quiet", &r, &path(&remote)]);
    // The fast-import copy is the repo as generated, file for file (its one pack).
    let fast_import = dir.path().join("fast-import.git");
    let ok = std::process::Command::new("cp").arg("-a").arg(&repo).arg(&fast_import).status().expect("cp");
    assert!(ok.success());
    let peer_remote = dir.path().join("peer-remote.git");
    let peer = peer.then(|| {
        let work = dir.path().join("peer-work");
        packs_git(None, &["clone", "--bare", "--quiet", &r, &path(&peer_remote)]);
        packs_git(None, &["clone", "--quiet", &path(&peer_remote), &path(&work)]);
        packs_git(Some(&work), &["config", "user.name", "Bench"]);
        packs_git(Some(&work), &["config", "user.email", "bench@localhost"]);
        work
    });
    let local = git2::Repository::open_bare(&repo).expect("repo");
    local.reference("refs/railyard/exported/main", head, true, "generated").expect("exported");
    let s = Server::start_in(dir, extra);
    let exporting = !extra.windows(2).any(|w| w == ["--export", "external"]);
    PacksSetup { s, generated, fast_import, peer, peer_remote, exporting }
}

/// One train through the API and its two baselines (each checked to write the same tree).
struct PacksTrain {
    api: Duration,
    /// The writer's own time for the batch (its log).
    writer: Option<Duration>,
    fast_import: Duration,
    /// The `sync -f` part of `fast_import`.
    fast_import_sync: Duration,
    peer: Option<Duration>,
    files: usize,
    /// From the API's answer until the remote had the train (the embedded exporter's push).
    exported: Duration,
}

/// A train into `env` through the API (its answer comes once the commit is on disk), then the same file changes
/// by `git fast-import` + `sync` on the fast-import copy and, with a peer clone, by `git add -A`, `git commit`,
/// `git push` + `sync` there. The copies are brought to the train's parent first (a fetch, not measured).
fn packs_train(p: &PacksSetup, env: &str, apps: usize) -> PacksTrain {
    let s = &p.s;
    let parent = s.local_head().expect("head").to_string();
    let fi = p.fast_import.to_str().expect("path");
    let repo = s.repo_dir.to_str().expect("path");
    packs_git(None, &["--git-dir", fi, "fetch", "--quiet", repo, "+refs/heads/main:refs/heads/main"]);
    if let Some(work) = &p.peer {
        // The peer's remote and clone move to the API's commit (the same tree as the peer's own last one).
        let remote = p.peer_remote.to_str().expect("path");
        packs_git(None, &["--git-dir", remote, "fetch", "--quiet", repo, "+refs/heads/main:refs/heads/main"]);
        packs_git(Some(work), &["fetch", "--quiet", "origin"]);
        packs_git(Some(work), &["reset", "--quiet", "--hard", "origin/main"]);
    }
    // Each measurement starts with nothing left to flush.
    packs_sync(&s.repo_dir);
    let started = Instant::now();
    let r = s.put_json(&format!("/api/environments/{env}/releasetrain"), &json!({}));
    let api = started.elapsed();
    let answered = Instant::now();
    r.assert_status(200);
    let moved = r.json["environments"][0]["deployed"].as_array().map_or(0, Vec::len);
    assert_eq!(moved, apps, "every application moves: {}", &r.text[..r.text.len().min(500)]);
    let commit = git2::Oid::from_str(&r.commit().expect("a commit")).expect("sha");
    let tree = packs_git(None, &["--git-dir", repo, "rev-parse", &format!("{commit}^{{tree}}")]);
    packs_exported(s, p.exporting);
    let exported = if p.exporting { answered.elapsed() } else { Duration::ZERO };
    let changes = packs_changes(&s.repo_dir, commit);
    packs_quiet(s, p.exporting);

    let have = git2::Repository::open_bare(&p.fast_import).expect("copy");
    let stream = packs_stream(&parent, &changes, &have.odb().expect("odb"));
    drop(have);
    packs_sync(&p.fast_import);
    let (fast_import, fast_import_sync) = packs_fast_import(&p.fast_import, &stream);
    let theirs = packs_git(None, &["--git-dir", fi, "rev-parse", "refs/heads/main^{tree}"]);
    assert_eq!(theirs, tree, "git fast-import wrote another tree than the train");
    let peer = p.peer.as_ref().map(|work| {
        packs_sync(work);
        let took = packs_peer(work, &changes);
        let theirs = packs_git(
            None,
            &["--git-dir", p.peer_remote.to_str().expect("path"), "rev-parse", "refs/heads/main^{tree}"],
        );
        assert_eq!(theirs, tree, "the peer's commit has another tree than the train");
        took
    });
    let writer = committed_batches(&s.logs())
        .rev()
        .find(|f| f["commit"] == commit.to_string().as_str())
        .and_then(|f| f["ms"].as_u64())
        .map(Duration::from_millis);
    PacksTrain { api, writer, fast_import, fast_import_sync, peer, files: changes.len(), exported }
}

/// Waits for the history index the server builds at start, then makes one write (a lock on env-0, removed again):
/// the trains are measured on a server past its start.
fn packs_warm(s: &Server, exporting: bool) -> (Duration, Duration) {
    let started = Instant::now();
    s.get("/api/history?limit=1").assert_status(200);
    let ready = started.elapsed();
    s.put_json("/api/environments/env-0/locks/warm-up", &json!({"message": "warm-up"})).assert_status(200);
    s.delete("/api/environments/env-0/locks/warm-up").assert_status(200);
    (ready, packs_quiet(s, exporting))
}

/// The resident memory of process `pid` now, in MiB: all of it (VmRSS), its anonymous part (the heap, RssAnon) and
/// its file-mapped part (pack files and their indexes, RssFile).
fn packs_rss_now(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

/// The API's memory through one phase: its high-water mark is reset at the start (`/proc/<pid>/clear_refs`), and a
/// thread samples its anonymous and file-mapped parts every 2 ms meanwhile.
struct PacksPeak {
    pid: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<(u64, u64)>,
}

impl PacksPeak {
    fn start(pid: u32) -> Self {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let (mut anon, mut file) = (0, 0);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let (_, a, f) = packs_rss_now(pid);
                (anon, file) = (anon.max(a), file.max(f));
                std::thread::sleep(Duration::from_millis(2));
            }
            (anon, file)
        });
        PacksPeak { pid, stop, sampler }
    }

    /// (peak RSS, most anonymous, most file-mapped) in MiB.
    fn stop(self) -> (u64, u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (anon, file) = self.sampler.join().expect("sampler");
        (peak_rss_kib(self.pid).unwrap_or(0) / 1024, anon, file)
    }
}

/// Runs `work` as one phase of [`packs_big`]: its own peak ([`PacksPeak`]) goes into `phases` and into the peak so far.
fn packs_phase<T>(
    pid: u32,
    name: &'static str,
    phases: &mut Vec<(&'static str, (u64, u64, u64))>,
    earlier_peak: &std::cell::Cell<u64>,
    work: impl FnOnce() -> T,
) -> T {
    let peak = PacksPeak::start(pid);
    let out = work();
    let peak = peak.stop();
    earlier_peak.set(earlier_peak.get().max(peak.0));
    phases.push((name, peak));
    out
}

fn packs_median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// (a): trains over 1,000 and 10,000 applications × 4 environments × 2 releases, three each (into env-1, env-2,
/// env-3), against `git fast-import` + `sync` and against the peer (`git add -A`, `commit`, `push` + `sync`).
fn packs_trains() -> Vec<(usize, Duration, Duration, Duration, usize, u64)> {
    let sizes = [1_000, var("RAILYARD_BENCH_PACKS_APPS", 10_000)];
    println!("\n### trains through the API, durable on answer, against git on the same change (4 envs × 2 releases)");
    let mut rows = Vec::new();
    for apps in sizes {
        let p = packs_setup(apps, 4, 2, true, &[]);
        println!("  {apps} apps × 4 envs × 2 releases: generated in {:.1}s", p.generated.as_secs_f64());
        packs_warm(&p.s, true);
        let runs: Vec<PacksTrain> = (1..4).map(|e| packs_train(&p, &repogen::env(e), apps)).collect();
        for (i, t) in runs.iter().enumerate() {
            println!(
                "    train into env-{}: {} files; API {:.0} ms (writer {:.0} ms; on the remote {:.1}s later), fast-import + sync {:.0} ms (sync {:.0} ms), peer add/commit/push + sync {:.0} ms",
                i + 1,
                t.files,
                ms(t.api),
                ms(t.writer.unwrap_or_default()),
                t.exported.as_secs_f64(),
                ms(t.fast_import),
                ms(t.fast_import_sync),
                ms(t.peer.unwrap_or_default())
            );
        }
        let api = packs_median(runs.iter().map(|t| t.api).collect());
        let fi = packs_median(runs.iter().map(|t| t.fast_import).collect());
        let peer = packs_median(runs.iter().filter_map(|t| t.peer).collect());
        let rss = peak_rss_kib(p.s.pid()).unwrap_or(0) / 1024;
        packs_fsck(&p.s.repo_dir);
        packs_fsck(&p.s.remote_dir);
        packs_fsck(&p.fast_import);
        packs_fsck(&p.peer_remote);
        rows.push((apps, api, fi, peer, runs[0].files, rss));
    }
    println!("\n| apps | files changed | API (median of 3) | `git fast-import` + `sync` | ratio | peer: `git add -A && git commit && git push` + `sync` | ratio | API peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    for (apps, api, fi, peer, files, rss) in &rows {
        println!(
            "| {apps} | {files} | {:.0} ms | {:.0} ms | {:.2}× | {:.0} ms | {:.2}× | {rss} MiB |",
            ms(*api),
            ms(*fi),
            ms(*api) / ms(*fi),
            ms(*peer),
            ms(*api) / ms(*peer)
        );
    }
    if let [small, big] = rows.as_slice() {
        println!(
            "\n  from {} to {} apps: API ×{:.1}, fast-import ×{:.1}, peer ×{:.1}",
            small.0,
            big.0,
            ms(big.1) / ms(small.1),
            ms(big.2) / ms(small.2),
            ms(big.3) / ms(small.3)
        );
    }
    rows
}

/// `n` timed requests; (p50, p99).
/// The fields of the writer's `committed batch` lines among `logs` (JSON log lines), oldest first.
fn committed_batches(logs: &[String]) -> impl DoubleEndedIterator<Item = serde_json::Value> + '_ {
    logged(logs, "committed batch")
}

/// The fields of the JSON log lines whose message is `message`.
fn logged<'a>(logs: &'a [String], message: &'a str) -> impl DoubleEndedIterator<Item = serde_json::Value> + 'a {
    logs.iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(move |v| v["fields"]["message"] == message)
        .map(|mut v| v["fields"].take())
}

fn packs_times(n: usize, mut f: impl FnMut(usize) -> Duration) -> (Duration, Duration) {
    let mut v: Vec<Duration> = (0..n).map(&mut f).collect();
    (percentile(&mut v, 50.0), percentile(&mut v, 99.0))
}

/// What a timed run of concurrent uploaders did.
struct PacksLoad {
    acked: Vec<(String, u64)>,
    errors: Vec<String>,
    elapsed: Duration,
    p99: Duration,
    /// From the last answer until the remote had everything.
    drained: Duration,
}

/// `writers` threads uploading releases of their own application (`load-<n>`, manifests for `envs`) for `run`;
/// then every acknowledged upload is looked for in the local repo and, once exported, on the remote.
fn packs_load(
    s: &Server,
    exporting: bool,
    writers: usize,
    run: Duration,
    envs: &[&str],
) -> (PacksLoad, usize, Option<usize>) {
    let mut report = load::uploads_until(s, writers, load::Until::Elapsed(run), envs);
    let acked: Vec<(String, u64)> = report.acked.iter().map(|(app, v, _)| (app.clone(), *v)).collect();
    let lost_in = |repo: &Path| -> usize {
        let repo = git2::Repository::open_bare(repo).expect("repo");
        let tree = repo.find_reference("refs/heads/main").and_then(|r| r.peel_to_tree()).expect("tree");
        let mut seen = std::collections::BTreeSet::new();
        acked
            .iter()
            .filter(|(app, v)| {
                assert!(seen.insert((app.clone(), *v)), "{app} {v} acknowledged twice");
                tree.get_path(Path::new(&format!("applications/{app}/releases/{v}"))).is_err()
            })
            .count()
    };
    let lost_local = lost_in(&s.repo_dir);
    let drained = packs_exported(s, exporting);
    let lost_remote = exporting.then(|| lost_in(&s.remote_dir));
    let p99 = report.p(99.0);
    let (errors, elapsed) = (std::mem::take(&mut report.errors), report.elapsed);
    (PacksLoad { acked, errors, elapsed, p99, drained }, lost_local, lost_remote)
}

fn packs_load_row(
    label: &str,
    s: &Server,
    exporting: bool,
    writers: usize,
    run: Duration,
    envs: &[&str],
) -> (f64, usize) {
    let commits = || {
        let repo = git2::Repository::open_bare(&s.repo_dir).expect("repo");
        let mut walk = repo.revwalk().expect("walk");
        walk.push_ref("refs/heads/main").expect("head");
        walk.count()
    };
    let commits_before = commits();
    let (l, lost_local, lost_remote) = packs_load(s, exporting, writers, run, envs);
    let rate = l.acked.len() as f64 / l.elapsed.as_secs_f64();
    let batches = commits() - commits_before;
    let remote = lost_remote.map_or_else(|| "not pushed".to_owned(), |n| n.to_string());
    let drained = if exporting { format!("{:.1}s", l.drained.as_secs_f64()) } else { "—".to_owned() };
    println!(
        "| {label} | {writers} | {:.1}s | {} | {rate:.0}/s | {:.0} | {batches} | {} | {lost_local} / {remote} | {drained} |",
        l.elapsed.as_secs_f64(),
        l.acked.len(),
        ms(l.p99),
        l.errors.len(),
    );
    if !l.errors.is_empty() {
        println!("  first errors: {:?}", &l.errors[..l.errors.len().min(3)]);
    }
    let lost = lost_local + lost_remote.unwrap_or(0);
    assert_eq!(lost, 0, "acknowledged uploads lost");
    (rate, lost)
}

/// The figures of one configuration on the big repo.
struct PacksBig {
    label: &'static str,
    overview: (Duration, Duration),
    overview_cold: Duration,
    overview_kib: usize,
    deploys: (Duration, Duration),
    locks: (Duration, Duration),
    train: PacksTrain,
    /// (phase, RSS now, peak RSS so far, anonymous now, file-mapped now) in MiB.
    memory: Vec<(&'static str, u64, u64, u64, u64)>,
    /// Through the train alone: (peak RSS, most anonymous, most file-mapped) in MiB.
    train_peak: (u64, u64, u64),
    load_rate: f64,
}

/// One configuration on the big repo (`run` 0, 1, …: each deploys, locks and trains where the one before did not,
/// so every request changes the repo): the overview, deploys and locks one at a time, a train over every application
/// with its fast-import baseline, the API's memory at each step, then the concurrent writers.
fn packs_big(
    p: &PacksSetup,
    run: u64,
    label: &'static str,
    samples: usize,
    writers: usize,
    load: Duration,
) -> PacksBig {
    let s = &p.s;
    let (apps, releases) = (var("RAILYARD_BENCH_PACKS_APPS", 10_000), var("RAILYARD_BENCH_PACKS_RELEASES", 20));
    println!("\n#### {label}");
    // The peak so far, carried across the phases: the kernel's high-water mark is reset before each of them.
    let earlier_peak = std::cell::Cell::new(0u64);
    // The peak of each phase after the first overview: (phase, (peak RSS, most anonymous, most file-mapped)).
    let mut phases: Vec<(&'static str, (u64, u64, u64))> = Vec::new();
    let mem = |phase: &'static str| {
        let (now, anon, file) = packs_rss_now(s.pid());
        (phase, now, (peak_rss_kib(s.pid()).unwrap_or(0) / 1024).max(earlier_peak.get()), anon, file)
    };
    let (ready, exported) = packs_warm(s, p.exporting);
    let mut memory = vec![mem("history index ready, one lock and unlock")];
    println!(
        "  history index ready {:.1}s after the first request; the warm-up lock and unlock on the remote {:.1}s after the unlock's answer",
        ready.as_secs_f64(),
        exported.as_secs_f64()
    );
    let client = s.client();
    let cold = Instant::now();
    let first = client.get(s.at("/api/overview")).send().expect("GET");
    assert_eq!(first.status(), 200);
    let body = first.bytes().expect("body");
    let overview_cold = cold.elapsed();
    let parsed: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let cells: usize = parsed["environments"]
        .as_array()
        .expect("envs")
        .iter()
        .flat_map(|e| e["applications"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["application"].as_str().is_some_and(|n| n.starts_with("app-")))
        .count();
    assert_eq!(cells, apps * 10, "every generated app in every environment");
    memory.push(mem("first GET /api/overview"));
    earlier_peak.set(memory.last().map_or(0, |m| m.2));
    let overview = packs_phase(s.pid(), "the overview GETs", &mut phases, &earlier_peak, || {
        packs_times(samples, |_| {
            let started = Instant::now();
            let r = client.get(s.at("/api/overview")).send().expect("GET");
            assert_eq!(r.status(), 200);
            let _ = r.bytes().expect("body");
            started.elapsed()
        })
    });
    println!(
        "  GET /api/overview ({} KiB): first {:.0} ms, then p50 {:.1} ms p99 {:.1} ms ({samples})",
        body.len() / 1024,
        ms(overview_cold),
        ms(overview.0),
        ms(overview.1)
    );
    // env-2 runs release `releases - 1` of every app: run 0 moves apps to the last release, run 1 back, and so on.
    let version = releases as u64 - run % 2;
    let logged = s.logs().len();
    let deploys = packs_phase(s.pid(), "the deploys", &mut phases, &earlier_peak, || {
        packs_times(samples, |i| {
            let started = Instant::now();
            let r = s.deploy("env-2", &repogen::app(i % apps), version, "fail");
            let took = started.elapsed();
            r.assert_status(200);
            took
        })
    });
    // The writer's own time for those deploys' commits, and how much of it was flushing the repo to disk.
    let (mut writer, mut flushing): (Vec<Duration>, Vec<Duration>) = committed_batches(&s.logs()[logged..])
        .filter_map(|f| Some((f["ms"].as_u64()?, f["sync_ms"].as_u64()?)))
        .map(|(all, sync)| (Duration::from_millis(all), Duration::from_millis(sync)))
        .unzip();
    if !writer.is_empty() {
        println!(
            "  the writer's time per deploy commit ({}): p50 {:.0} p99 {:.0} ms, of which flushing to disk p50 {:.0} p99 {:.0} ms",
            writer.len(),
            ms(percentile(&mut writer, 50.0)),
            ms(percentile(&mut writer, 99.0)),
            ms(percentile(&mut flushing, 50.0)),
            ms(percentile(&mut flushing, 99.0))
        );
    }
    let locks = packs_phase(s.pid(), "the locks", &mut phases, &earlier_peak, || {
        packs_times(samples, |i| {
            let started = Instant::now();
            let r = s.put_json(&format!("/api/environments/env-9/locks/bench-{run}-{i}"), &json!({"message": "bench"}));
            let took = started.elapsed();
            r.assert_status(200);
            took
        })
    });
    println!(
        "  deploy p50 {:.2} p99 {:.2} ms; lock p50 {:.2} p99 {:.2} ms ({samples} each, one at a time)",
        ms(deploys.0),
        ms(deploys.1),
        ms(locks.0),
        ms(locks.1)
    );
    let exported = packs_phase(s.pid(), "waiting for the export and the roll-ups", &mut phases, &earlier_peak, || {
        packs_quiet(s, p.exporting)
    });
    if p.exporting {
        println!("  the remote had the last lock {:.1}s after its answer", exported.as_secs_f64());
    }
    memory.push(mem("deploys and locks (roll-ups done)"));
    earlier_peak.set(memory.last().map_or(0, |m| m.2));
    println!("  the API's peak RSS in each phase (anonymous / file-mapped at most, sampled every 2 ms):");
    for (phase, (peak, anon, file)) in &phases {
        println!("    {phase}: {peak} MiB ({anon} / {file})");
    }
    // env-1 (upstream env-0, which runs the last release), then env-2 (upstream env-1, trained by the run before): an
    // environment one release behind its upstream, so the train moves every application.
    let train_peak = PacksPeak::start(s.pid());
    let train = packs_train(p, &repogen::env(1 + run as usize), apps);
    let train_peak = train_peak.stop();
    memory.push(mem("the train (exported)"));
    println!(
        "  API memory through the train alone: peak RSS {} MiB; sampled every 2 ms, anonymous at most {} MiB, file-mapped at most {} MiB",
        train_peak.0, train_peak.1, train_peak.2
    );
    println!(
        "  train over {apps} apps ({} files): API {:.0} ms (writer {:.0} ms), fast-import + sync {:.0} ms ({:.2}×){}",
        train.files,
        ms(train.api),
        ms(train.writer.unwrap_or_default()),
        ms(train.fast_import),
        ms(train.api) / ms(train.fast_import),
        if p.exporting {
            format!("; on the remote {:.1}s after the answer", train.exported.as_secs_f64())
        } else {
            String::new()
        }
    );
    println!("\n| API memory after | RSS now | of it anonymous / file-mapped | peak RSS so far |\n|---|---|---|---|");
    for (phase, now, peak, anon, file) in &memory {
        println!("| {phase} | {now} MiB | {anon} / {file} MiB | {peak} MiB |");
    }
    println!("\n| repo | writers | ran | acknowledged | uploads/s | p99 (ms) | commits | errors | lost (local / remote) | export drained after |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let (load_rate, _) = packs_load_row(
        &format!("{apps} × 10 × {releases}, {label}"),
        s,
        p.exporting,
        writers,
        load,
        &["env-0", "env-1"],
    );
    memory.push(mem("the concurrent writers"));
    println!("  API peak RSS after the writers: {} MiB", memory.last().map_or(0, |m| m.2));
    PacksBig {
        label,
        overview,
        overview_cold,
        overview_kib: body.len() / 1024,
        deploys,
        locks,
        train,
        memory,
        train_peak,
        load_rate,
    }
}

/// The figures of the embedded exporter pushing over the network.
struct PacksNetwork {
    /// From each deploy's answer until the remote had it, p50 and max.
    exported: (Duration, Duration),
    /// `git push` by the git CLI of the same commits to a copy of the remote, p50 and max.
    git_push: (Duration, Duration),
    /// API RSS after the deploys, and its peak through them.
    rss: (u64, u64),
    /// A burst of deploys back to back: how many, how long they took to answer, until the remote had the last one
    /// after its answer, and the exporter's pushes meanwhile (count, longest).
    burst: (usize, Duration, Duration, usize, Duration),
}

/// The embedded exporter pushing to a `git://` remote (`git daemon` on 127.0.0.1 serving the bench's bare remote),
/// as it pushes to a remote on another machine: `deploys` deploys one at a time, each timed from its answer until the
/// remote has it; beside it, `git push` by the git CLI of each of the same commits (fetched into the fast-import
/// copy, not timed) to a copy of the remote through the same daemon. Both pushes send what the commit adds; most of
/// their time is the remote's (`git receive-pack` checks that the new commit's objects connect to its history). Then a
/// burst of `deploys` × 20 deploys back to back, timed until the remote has the last one.
fn packs_network(p: &mut PacksSetup, deploys: usize, releases: usize) -> PacksNetwork {
    let dir = p.s.dir.path().to_owned();
    let path = |p: &Path| p.to_str().expect("path").to_owned();
    let baseline_remote = dir.join("baseline-remote.git");
    packs_git(None, &["clone", "--bare", "--quiet", &path(&p.s.remote_dir), &path(&baseline_remote)]);
    let port = railyard_tests::free_port();
    let _daemon = railyard_tests::GitDaemon::start(&dir, port);
    p.restart(Some(&format!("git://127.0.0.1:{port}/remote.git")), &["--release-versions-limit", "0"]);
    let s = &p.s;
    let (ready, exported) = packs_warm(s, true);
    println!(
        "  history index ready {:.1}s after the first request; the warm-up lock and unlock on the remote {:.1}s after the unlock's answer",
        ready.as_secs_f64(),
        exported.as_secs_f64()
    );
    packs_git(
        None,
        &[
            "--git-dir",
            &path(&baseline_remote),
            "fetch",
            "--quiet",
            &path(&s.repo_dir),
            "+refs/heads/main:refs/heads/main",
        ],
    );
    let (fi, repo) = (path(&p.fast_import), path(&s.repo_dir));
    let baseline_url = format!("git://127.0.0.1:{port}/baseline-remote.git");
    let (mut exported, mut git_push) = (Vec::new(), Vec::new());
    let mut peak = 0;
    for i in 0..deploys {
        let r = s.deploy("env-3", &repogen::app(i), releases as u64, "fail");
        let answered = Instant::now();
        r.assert_status(200);
        let commit = r.commit().expect("a commit");
        let deadline = answered + Duration::from_secs(600);
        while s.remote_head().map(|h| h.to_string()) != Some(commit.clone()) {
            assert!(Instant::now() < deadline, "deploy {i} was not on the remote in 10 minutes");
            std::thread::sleep(Duration::from_millis(20));
        }
        exported.push(answered.elapsed());
        peak = peak.max(peak_rss_kib(s.pid()).unwrap_or(0) / 1024);
        packs_git(None, &["--git-dir", &fi, "fetch", "--quiet", &repo, "+refs/heads/main:refs/heads/main"]);
        let started = Instant::now();
        packs_git(None, &["--git-dir", &fi, "push", "--quiet", &baseline_url, &format!("{commit}:refs/heads/main")]);
        git_push.push(started.elapsed());
    }
    // A burst: the exporter pushes what is pending each time its push before ends, several commits at once.
    let burst = deploys * 20;
    let logged_before = s.logs().len();
    let started = Instant::now();
    let mut last = String::new();
    for i in 0..burst {
        let r = s.deploy("env-4", &repogen::app(i), releases as u64, "fail");
        r.assert_status(200);
        last = r.commit().expect("a commit");
    }
    let answered = Instant::now();
    let written = answered - started;
    let deadline = answered + Duration::from_secs(600);
    while s.remote_head().map(|h| h.to_string()) != Some(last.clone()) {
        assert!(Instant::now() < deadline, "the burst was not on the remote in 10 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    let drained = answered.elapsed();
    peak = peak.max(peak_rss_kib(s.pid()).unwrap_or(0) / 1024);
    let pushes: Vec<u64> =
        logged(&s.logs()[logged_before..], "exported branch").filter_map(|f| f["ms"].as_u64()).collect();
    let longest = Duration::from_millis(pushes.iter().copied().max().unwrap_or(0));
    println!(
        "  {burst} deploys back to back in {:.1}s: the last on the remote {:.1}s after its answer, in {} pushes (longest {:.1}s)",
        written.as_secs_f64(),
        drained.as_secs_f64(),
        pushes.len(),
        longest.as_secs_f64()
    );
    let now = packs_rss_now(s.pid()).0;
    let spread = |v: &mut Vec<Duration>| (percentile(v, 50.0), v.iter().copied().max().unwrap_or_default());
    let net = PacksNetwork {
        exported: spread(&mut exported),
        git_push: spread(&mut git_push),
        rss: (now, peak),
        burst: (burst, written, drained, pushes.len(), longest),
    };
    println!(
        "  {deploys} deploys, one at a time: on the remote p50 {:.2}s (max {:.2}s) after the answer; `git push` of the same commits p50 {:.2}s (max {:.2}s); API RSS {} MiB, peak {} MiB",
        net.exported.0.as_secs_f64(),
        net.exported.1.as_secs_f64(),
        net.git_push.0.as_secs_f64(),
        net.git_push.1.as_secs_f64(),
        net.rss.0,
        net.rss.1
    );
    packs_fsck(&baseline_remote);
    net
}

/// `packs` (issue 22, one pack per batch at 10,000 applications), all in one run:
///
/// - trains over 1,000 and 10,000 applications through the API (the answer comes once the commit is on disk)
///   against `git fast-import` of the same file changes + `sync -f`, and against the peer baseline (a clone, the
///   same files written, `git add -A`, `git commit`, `git push` to a bare remote, `sync -f`); each baseline's tree is
///   checked to be the train's. Targets: ≤ 1.2× (1,000) and ≤ 1.3× and ≤ 2 s (10,000) of fast-import + sync;
/// - a repo of 10,000 apps × 10 envs × 20 releases: deploy and lock p50/p99 one at a time, `GET /api/overview`
///   warm p99, and the API's memory through a train over its 10,000 apps (targets p99 ≤ 20, ≤ 100 ms, ≤ 256 MiB),
///   with the embedded exporter (the default) and again with `--export external` (the API alone: nothing pushed);
/// - 500 concurrent writers uploading releases for 10 s, on a small repo and on the big one: uploads/s (target
///   ≥ 1,000) and every 201 looked for in the local repo and on the remote (target 0 lost);
/// - on the big repo, the embedded exporter pushing to a `git://` remote: each of a few deploys timed from its answer
///   until the remote has it, beside `git push` of the same commit by the git CLI;
/// - `git fsck --strict` on every repo written.
///
/// Sizes: `RAILYARD_BENCH_PACKS_APPS` (10000), `RAILYARD_BENCH_PACKS_RELEASES` (20),
/// `RAILYARD_BENCH_PACKS_LOAD_SECONDS` (10), `RAILYARD_BENCH_WRITERS` (500), `RAILYARD_BENCH_SAMPLES` (200),
/// `RAILYARD_BENCH_PACKS_PUSHES` (5).
/// `RAILYARD_BENCH_PACKS_KEEP=<dir>` keeps the generated repos there and reuses them in later runs.
fn packs() {
    let samples = var("RAILYARD_BENCH_SAMPLES", 200);
    let writers = var("RAILYARD_BENCH_WRITERS", 500);
    let big_apps = var("RAILYARD_BENCH_PACKS_APPS", 10_000);
    let big_releases = var("RAILYARD_BENCH_PACKS_RELEASES", 20).max(2);
    let load = Duration::from_secs(var("RAILYARD_BENCH_PACKS_LOAD_SECONDS", 10) as u64);
    // RAILYARD_BENCH_PACKS_ONLY=trains,small,embedded,external,network picks parts (all by default).
    let only = std::env::var("RAILYARD_BENCH_PACKS_ONLY").ok();
    let part = |name: &str| only.as_deref().is_none_or(|o| o.split(',').any(|p| p.trim() == name));
    println!("\n## packs: one pack per batch, at {big_apps} applications");
    let trains = if part("trains") { packs_trains() } else { Vec::new() };

    let small_rate = part("small").then(|| {
    println!("\n### {writers} concurrent writers uploading releases for {} s, small repo", load.as_secs());
    println!("\n| repo | writers | ran | acknowledged | uploads/s | p99 (ms) | commits | errors | lost (local / remote) | export drained after |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let small = RepoSpec { apps: 1, envs: 2, releases: 1, hot_releases: 0, commits: 2, argocd: false };
    let (small_server, _) = server_on(&small, &["--release-versions-limit", "0"]);
    let (small_rate, _) = packs_load_row("1 app × 2 envs", &small_server, true, writers, load, &["env-0", "env-1"]);
    println!("  API peak RSS: {} MiB", peak_rss_kib(small_server.pid()).unwrap_or(0) / 1024);
    packs_fsck(&small_server.repo_dir);
    packs_fsck(&small_server.remote_dir);
    small_rate
    });

    println!("\n### {big_apps} apps × 10 envs × {big_releases} releases");
    let mut p = packs_setup(big_apps, 10, big_releases, false, &["--release-versions-limit", "0"]);
    let repo = p.s.repo_dir.to_str().expect("path").to_owned();
    let counted = packs_git(None, &["--git-dir", &repo, "count-objects", "-vH"]);
    let field = |k: &str| counted.lines().find_map(|l| l.strip_prefix(k)).unwrap_or_default().trim().to_owned();
    println!(
        "  generated in {:.1}s: {} objects in {} pack(s), {}",
        p.generated.as_secs_f64(),
        field("in-pack:"),
        field("packs:"),
        field("size-pack:")
    );
    let embedded = part("embedded").then(|| packs_big(&p, 0, "embedded exporter (default)", samples, writers, load));
    let alone = part("external").then(|| {
        p.restart(None, &["--release-versions-limit", "0", "--export", "external"]);
        packs_big(&p, 1, "`--export external`, no exporter running (the API alone)", samples, writers, load)
    });
    let network = part("network").then(|| {
        println!("\n#### the embedded exporter pushing to a `git://` remote (`git daemon` on 127.0.0.1)");
        packs_network(&mut p, var("RAILYARD_BENCH_PACKS_PUSHES", 5), big_releases)
    });
    let fsck = packs_fsck(&p.s.repo_dir);
    packs_fsck(&p.s.remote_dir);
    packs_fsck(&p.fast_import);
    println!(
        "\n  git fsck --strict clean on every repo written (the big local repo's took {:.0}s)",
        fsck.as_secs_f64()
    );

    println!("\n| target | figure | baseline | ratio | met |");
    println!("|---|---|---|---|---|");
    let yes = |b: bool| if b { "yes" } else { "**no**" };
    for (apps, api, fi, peer, _, _) in &trains {
        let limit = if *apps >= 10_000 { 1.3 } else { 1.2 };
        let r = ms(*api) / ms(*fi);
        let two = if *apps >= 10_000 { format!("; ≤ 2 s: {}", yes(api.as_secs_f64() <= 2.0)) } else { String::new() };
        println!(
            "| train over {apps} apps (4 envs × 2 releases) ≤ {limit}× fast-import + sync | {:.0} ms | fast-import + sync {:.0} ms; peer {:.0} ms ({:.2}×) | {r:.2}× | {}{two} |",
            ms(*api),
            ms(*fi),
            ms(*peer),
            ms(*api) / ms(*peer),
            yes(r <= limit)
        );
    }
    for b in [embedded.as_ref(), alone.as_ref()].into_iter().flatten() {
        let t = &b.train;
        let peak = b.memory.iter().map(|m| m.2).max().unwrap_or(0);
        let through = b.memory.iter().take(4).map(|m| m.2).max().unwrap_or(0);
        println!(
            "| train over {big_apps} apps on {big_apps} × 10 × {big_releases}, {} | {:.0} ms | fast-import + sync {:.0} ms | {:.2}× | ≤ 2 s: {}; ≤ 1.3×: {} |",
            b.label,
            ms(t.api),
            ms(t.fast_import),
            ms(t.api) / ms(t.fast_import),
            yes(t.api.as_secs_f64() <= 2.0),
            yes(ms(t.api) / ms(t.fast_import) <= 1.3)
        );
        println!(
            "| deploy p99 ≤ 20 ms, {} | {:.2} ms (p50 {:.2}) | — | — | {} |",
            b.label,
            ms(b.deploys.1),
            ms(b.deploys.0),
            yes(ms(b.deploys.1) <= 20.0)
        );
        println!(
            "| lock p99 ≤ 20 ms, {} | {:.2} ms (p50 {:.2}) | — | — | {} |",
            b.label,
            ms(b.locks.1),
            ms(b.locks.0),
            yes(ms(b.locks.1) <= 20.0)
        );
        println!(
            "| `GET /api/overview` p99 ≤ 100 ms, {} | {:.1} ms (p50 {:.1}; {} KiB; first {:.0} ms) | — | — | {} |",
            b.label,
            ms(b.overview.1),
            ms(b.overview.0),
            b.overview_kib,
            ms(b.overview_cold),
            yes(ms(b.overview.1) <= 100.0)
        );
        println!(
            "| API peak RSS ≤ 256 MiB through the train, {} | {through} MiB since start; the train alone {} MiB (anonymous ≤ {}, file-mapped ≤ {}); after the writers too: {peak} MiB | — | — | {} |",
            b.label,
            b.train_peak.0,
            b.train_peak.1,
            b.train_peak.2,
            yes(through <= 256)
        );
        println!(
            "| {writers} writers ≥ 1,000 uploads/s, 0 lost, {} | {:.0}/s, 0 lost | — | — | {} |",
            b.label,
            b.load_rate,
            yes(b.load_rate >= 1000.0)
        );
    }
    if let Some(n) = &network {
        println!(
            "| a deploy on a `git://` remote after its answer, embedded exporter | p50 {:.2}s (max {:.2}s) | `git push` of the same commit p50 {:.2}s | {:.2}× | — |",
            n.exported.0.as_secs_f64(),
            n.exported.1.as_secs_f64(),
            n.git_push.0.as_secs_f64(),
            n.exported.0.as_secs_f64() / n.git_push.0.as_secs_f64()
        );
        println!(
            "| {} deploys back to back onto the `git://` remote | the last there {:.1}s after its answer ({} pushes, longest {:.1}s) | — | — | — |",
            n.burst.0,
            n.burst.2.as_secs_f64(),
            n.burst.3,
            n.burst.4.as_secs_f64()
        );
    }
    if let Some(small_rate) = small_rate {
        println!(
            "| {writers} writers ≥ 1,000 uploads/s, 0 lost, small repo | {small_rate:.0}/s, 0 lost | — | — | {} |",
            yes(small_rate >= 1000.0)
        );
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
    if run("packs") {
        packs();
    }
}
