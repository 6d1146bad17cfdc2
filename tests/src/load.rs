//! HTTP load against a running server: many concurrent writers, each uploading releases; what was acknowledged, how
//! fast, and whether all of it reached the remote.

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::{multipart_body, percentile, release_parts, Server};

/// What a load run measured.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// (application, version, commit) of every 2xx upload.
    pub acked: Vec<(String, u64, String)>,
    /// Latency of each acknowledged upload.
    pub latencies: Vec<Duration>,
    /// Answers other than 201 (status and body), and transport errors.
    pub errors: Vec<String>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn throughput(&self) -> f64 {
        self.acked.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn p(&mut self, pct: f64) -> Duration {
        percentile(&mut self.latencies, pct)
    }
}

/// How long each writer of [`uploads_until`] goes on.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// This many uploads each.
    Count(usize),
    /// Uploads until this long after the writers were released.
    Elapsed(Duration),
}

/// `writers` threads, all released at once, each uploading `per_writer` releases of its own application
/// `load-<n>` (version chosen by the server) with a manifest for every environment in `envs`.
pub fn uploads(s: &Server, writers: usize, per_writer: usize, envs: &[&str]) -> LoadReport {
    uploads_until(s, writers, Until::Count(per_writer), envs)
}

/// [`uploads`], each writer going on until `until`.
pub fn uploads_until(s: &Server, writers: usize, until: Until, envs: &[&str]) -> LoadReport {
    let report = Arc::new(Mutex::new(LoadReport::default()));
    let barrier = Arc::new(Barrier::new(writers + 1));
    let envs: Vec<String> = envs.iter().map(|e| (*e).to_owned()).collect();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (report, barrier, url, envs) = (report.clone(), barrier.clone(), s.at("/api/release"), envs.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let client = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(120))
                        .pool_max_idle_per_host(1)
                        .build()
                        .expect("client");
                    let app = format!("load-{w:04}");
                    barrier.wait();
                    let released = Instant::now();
                    let more = |i: usize| match until {
                        Until::Count(n) => i < n,
                        Until::Elapsed(d) => released.elapsed() < d,
                    };
                    for i in (0..).take_while(|&i| more(i)) {
                        let texts: Vec<String> =
                            envs.iter().map(|e| format!("kind: ConfigMap # {app} {i} {e}\n")).collect();
                        let manifests: Vec<(&str, &str)> =
                            envs.iter().zip(&texts).map(|(e, t)| (e.as_str(), t.as_str())).collect();
                        let parts = release_parts(&app, None, &manifests);
                        let parts: Vec<(&str, &[u8])> = parts.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
                        let (content_type, body) = multipart_body(&parts);
                        let started = Instant::now();
                        let answer = client.post(&url).header("content-type", content_type).body(body).send();
                        let took = started.elapsed();
                        let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                        match answer {
                            Ok(resp) if resp.status().as_u16() == 201 => {
                                let v: serde_json::Value = resp.json().unwrap_or_default();
                                let version = v["version"].as_u64().unwrap_or(0);
                                let commit = v["commit"].as_str().unwrap_or_default().to_owned();
                                r.acked.push((app.clone(), version, commit));
                                r.latencies.push(took);
                            }
                            Ok(resp) => {
                                let status = resp.status();
                                r.errors.push(format!("{status} {}", resp.text().unwrap_or_default()));
                            }
                            Err(e) => r.errors.push(e.to_string()),
                        }
                    }
                })
                .expect("writer thread")
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for t in threads {
        t.join().expect("writer");
    }
    let mut report = std::mem::take(&mut *report.lock().unwrap_or_else(|p| p.into_inner()));
    report.elapsed = started.elapsed();
    report
}

/// The acknowledged uploads that are not on the remote branch (`applications/<app>/releases/<v>`), after waiting
/// for the export. Also checks that no (app, version) was acknowledged twice.
pub fn lost_on_remote(s: &Server, report: &LoadReport) -> Vec<String> {
    s.wait_exported();
    let repo = git2::Repository::open_bare(&s.remote_dir).expect("remote");
    let tree = repo.find_reference("refs/heads/main").and_then(|r| r.peel_to_tree()).expect("remote tree");
    let mut seen = std::collections::BTreeSet::new();
    let mut lost = Vec::new();
    for (app, version, _) in &report.acked {
        assert!(seen.insert((app.clone(), *version)), "{app} {version} acknowledged twice");
        let path = format!("applications/{app}/releases/{version}");
        if tree.get_path(std::path::Path::new(&path)).is_err() {
            lost.push(path);
        }
    }
    lost
}
