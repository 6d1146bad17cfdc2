//! @northflank/js-client (the real client, installed from npm with `npm ci` in tests/clients/northflank by the test
//! setup or .ci/run) stores a release flow, runs it with arguments, overrides and release-node overrides through
//! `ApiClient` pointed at 127.0.0.1, and reads the run back. The script asserts what the client sees; this test
//! checks the run's effect on the remote.

use std::path::PathBuf;
use std::process::Command;

use railyard_tests::{release_parts, Server};
use serde_json::json;

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients").join("northflank")
}

fn ensure_installed() {
    let dir = client_dir();
    if dir.join("node_modules").join("@northflank").join("js-client").exists() {
        return;
    }
    let ok = Command::new("npm")
        .args(["ci", "--silent", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("npm");
    assert!(ok.success(), "npm ci in tests/clients/northflank failed");
}

fn upload(s: &Server, version: &str, content: &str) {
    let manifests = [("dev", content), ("staging", content), ("prod", content), ("qa", content)];
    let mut parts = release_parts("web", Some(version), &manifests);
    for p in &mut parts {
        if p.0 == "team" {
            p.1 = b"pay".to_vec();
        }
    }
    s.upload(&parts).assert_status(201);
}

#[test]
fn northflank_js_client_runs_a_release_flow_with_arguments_and_overrides() {
    ensure_installed();
    let s = Server::start();
    for (name, upstream) in [
        ("dev", json!({"latest": true})),
        ("staging", json!({"environment": "dev"})),
        ("prod", json!({"environment": "staging"})),
        ("qa", json!({"environment": "staging"})),
    ] {
        s.create_env(name, upstream, None).assert_status(201);
    }
    upload(&s, "1", "kind: A\n");
    upload(&s, "2", "kind: B\n");
    s.deploy("staging", "web", 1, "fail").assert_status(200);

    let out = Command::new("node").arg(client_dir().join("run_flow.js")).arg(&s.url).output().expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "js-client script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("summary");
    let commit = summary["commit"].as_str().expect("commit").to_owned();
    assert_eq!(s.wait_exported().to_string(), commit);
    // the override sent the train to qa, and the release-node override made it web 2
    assert_eq!(s.remote_file("environments/qa/applications/web/version").as_deref(), Some("2"));
    assert_eq!(s.remote_file("environments/prod/applications/web/version"), None);
    assert!(s.remote_file("release-flows/main/production.yaml").is_some());
    assert!(s.remote_file("release-flows/main/production/runs/1.json").is_some());
    // Northflank's error envelope on a wrong project
    let r = s.get("/v1/projects/other/pipelines/main/release-flows/Production");
    r.assert_status(404);
    assert_eq!(r.json["error"]["status"], 404, "{}", r.text);
}
