use railyard_tests::Server;
use serde_json::{json, Value};

#[test]
fn release_upload_lands_in_the_remote() {
    let s = Server::start();
    let c = s.client();
    let r =
        c.post(s.at("/api/environments")).json(&json!({"name": "dev", "upstream": {"latest": true}})).send().unwrap();
    assert_eq!(r.status(), 201);
    let form = reqwest::blocking::multipart::Form::new()
        .text("application", "web")
        .text("manifests[dev]", "kind: Deployment\n")
        .text("source_commit_id", "abcdef1");
    let r = c.post(s.at("/api/release")).multipart(form).send().unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().unwrap();
    assert_eq!(body["version"], 1);
    let commit = body["commit"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(
        s.remote_file("environments/dev/applications/web/manifests/manifests.yaml").as_deref(),
        Some("kind: Deployment\n")
    );
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("1"));
}
