//! @northflank/js-client (the real client, installed from npm with `npm ci` in tests/clients/northflank by the test
//! setup or .ci/run) stores a release flow, runs it with arguments, overrides and release-node overrides through
//! `ApiClient` pointed at 127.0.0.1, and reads the run back, also through the team-scoped paths, and tries to abort a
//! run. The script asserts what the client sees; this test checks the runs' effect on the remote. Northflank's
//! error envelope for errors the client has no call for is checked with plain requests.

use std::path::PathBuf;
use std::process::Command;

use railyard_tests::{release_parts, Server};
use serde_json::json;

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients").join("northflank")
}

fn ensure_installed() {
    railyard_tests::npm_ci_once(&client_dir(), "@northflank/js-client");
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
    let team_commit = summary["teamCommit"].as_str().expect("team run's commit").to_owned();
    s.wait_exported();
    assert!(s.remote_contains(&commit) && s.remote_contains(&team_commit), "{summary}");
    // the run through the team-scoped path is the flow's second run (its train moved no app of team `other`)
    let second: serde_json::Value =
        serde_json::from_str(&s.remote_file("release-flows/main/production/runs/2.json").expect("run 2"))
            .expect("json");
    assert_eq!(second["name"], "Team Run");
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

/// `{"error": {"status": N, "message": "…"}}` and nothing else at the top.
fn assert_envelope(r: &railyard_tests::Reply, status: u16) {
    r.assert_status(status);
    assert!(r.content_type.starts_with("application/json"), "{:?}: {}", r.content_type, r.text);
    assert_eq!(r.json["error"]["status"], status, "{}", r.text);
    assert!(r.json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
    assert_eq!(r.json.as_object().map(|o| o.len()), Some(1), "{}", r.text);
}

#[test]
fn every_error_under_v1_is_in_northflanks_envelope() {
    let s = Server::start();
    let base = "/v1/teams/platform/projects/railyard/pipelines/main/release-flows/Production";
    s.put_json(base, &json!({"steps": [{"ref": "t", "kind": "tag", "tag": "nf-${args.N}"}]})).assert_status(200);
    let run = s.post_json(&format!("{base}/runs"), &json!({"arguments": {"N": "1"}}));
    run.assert_status(200);
    assert_eq!(run.json["data"]["status"], "succeeded", "{}", run.text);

    let abort = s.post_json(&format!("{base}/runs/1/abort"), &json!({}));
    assert_envelope(&abort, 409);
    assert!(abort.json["error"]["message"].as_str().is_some_and(|m| m.contains("already finished")), "{}", abort.text);
    let r = s.post_json("/v1/projects/railyard/pipelines/main/release-flows/Production/runs/1/abort", &json!({}));
    assert_envelope(&r, 409);
    assert_envelope(&s.post_json(&format!("{base}/runs/7/abort"), &json!({})), 404);
    // unknown routes, unsupported methods, path rejections: the same envelope, not Railyard's {"error", "code"}
    assert_envelope(&s.get("/v1/projects/railyard/services"), 404);
    assert_envelope(&s.get("/v1"), 404);
    assert_envelope(&s.delete(&format!("{base}/runs/1")), 405);
    assert_envelope(&s.get(&format!("{base}/runs/1/abort")), 405);
    assert_envelope(&s.raw_http("GET", &format!("{base}/runs/%FF"), None, b""), 400);
    // the abort wrote nothing
    let head = s.wait_exported();
    s.post_json(&format!("{base}/runs/1/abort"), &json!({}));
    assert_eq!(s.local_head(), Some(head));
}
