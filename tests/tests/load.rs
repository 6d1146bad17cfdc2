//! Load over HTTP on 127.0.0.1, bounded in count: 500 concurrent writers upload releases; every acknowledged upload
//! must be on the remote afterwards (0 lost), and no answer may be a server error. The figures are printed (see
//! .config/nextest.toml); `make bench` runs the larger version in tests/benches/api.rs.

use railyard_tests::{load, peak_rss_kib, Server};
use serde_json::json;

#[test]
fn five_hundred_concurrent_writers_lose_nothing() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    s.create_env("staging", json!({"environment": "dev"}), None).assert_status(201);
    let mut report = load::uploads(&s, 500, 2, &["dev", "staging"]);
    assert!(report.errors.is_empty(), "{} errors, e.g. {:?}", report.errors.len(), report.errors.first());
    assert_eq!(report.acked.len(), 1000);
    let lost = load::lost_on_remote(&s, &report);
    eprintln!(
        "load: 500 writers × 2 uploads: {} acknowledged in {:.2}s = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, lost {}, API peak RSS {} MiB",
        report.acked.len(),
        report.elapsed.as_secs_f64(),
        report.throughput(),
        report.p(50.0).as_secs_f64() * 1e3,
        report.p(99.0).as_secs_f64() * 1e3,
        lost.len(),
        peak_rss_kib(s.pid()).unwrap_or(0) / 1024,
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    // versions per application are 1 and 2, in the order the answers say
    let mut per_app = std::collections::BTreeMap::<&str, Vec<u64>>::new();
    for (app, v, _) in &report.acked {
        per_app.entry(app.as_str()).or_default().push(*v);
    }
    for (app, mut vs) in per_app {
        vs.sort_unstable();
        assert_eq!(vs, [1, 2], "{app}");
    }
}
