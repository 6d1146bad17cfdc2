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
//!
//! `make bench` (builds the binaries in release first), or
//! `cargo build --release --bins && cargo bench -p railyard-tests --bench api [-- latency|load|train|history|webhooks|argocd|retention]`.
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
}
