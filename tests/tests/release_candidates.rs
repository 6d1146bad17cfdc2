//! Release candidates and deployments with Aviator's API (`/api/releases/{project}/…`): every status and error
//! message of its tables, end to end, with what lands on the remote.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use railyard_tests::Server;
use serde_json::{json, Value};

const SHA: &str = "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";

fn setup(extra: &[&str]) -> Server {
    let s = Server::start_with(extra);
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    s.create_env("prod", json!({"environment": "dev"}), None).assert_status(201);
    s
}

fn candidate(s: &Server, project: &str, rc: &str, body: Value) -> railyard_tests::Reply {
    s.post_json(&format!("/api/releases/{project}/releases/{rc}"), &body)
}

fn body(commit: &str) -> Value {
    json!({"repo": "acme/web", "commit": commit, "manifests": {"dev": "kind: Dev\n", "prod": "kind: Prod\n"}})
}

fn deployments(env: &str) -> String {
    format!("/api/releases/web/environments/{env}/deployments")
}

fn patch(s: &Server, path: &str, body: &Value) -> railyard_tests::Reply {
    railyard_tests::Reply::from_response(s.client().patch(s.at(path)).json(body).send().expect("PATCH"))
}

fn assert_aviator_error(r: &railyard_tests::Reply, status: u16, message: &str) {
    r.assert_status(status);
    assert_eq!(r.json["error"], message, "{}", r.text);
}

#[test]
fn create_is_a_release_with_the_candidate_as_display_version_idempotent_and_conflicting() {
    let s = setup(&[]);
    let r = candidate(&s, "web", "1.4.0-rc1", body(SHA));
    r.assert_status(201);
    assert_eq!(r.json["release_candidate_version"], "1.4.0-rc1");
    assert_eq!(r.json["version"], 1);
    assert_eq!(r.json["created"], true);
    assert_eq!(r.json["deployed"], json!(["dev"]), "dev takes the latest release");
    s.wait_exported();
    assert_eq!(s.remote_file("applications/web/releases/1/display_version").as_deref(), Some("1.4.0-rc1"));
    assert_eq!(s.remote_file("applications/web/releases/1/source_commit_id").as_deref(), Some(SHA));
    assert_eq!(s.remote_file("applications/web/repository").as_deref(), Some("acme/web"));
    assert_eq!(
        s.remote_file("applications/web/releases/1/environments/prod/manifests.yaml").as_deref(),
        Some("kind: Prod\n")
    );

    let again = candidate(&s, "web", "1.4.0-rc1", body(SHA));
    again.assert_status(200);
    assert_eq!(again.json["created"], false);
    assert_eq!(again.json["commit"], Value::Null);
    let bare = candidate(&s, "web", "1.4.0-rc1", json!({"repo": "acme/web", "commit": SHA}));
    bare.assert_status(200);
    let other = candidate(&s, "web", "1.4.0-rc1", body("abcdef0"));
    other.assert_status(409);
    assert_eq!(other.json["code"], "release_candidate_exists");
    let other_manifests =
        candidate(&s, "web", "1.4.0-rc1", json!({"repo": "acme/web", "commit": SHA, "manifests": {"dev": "x: 1\n"}}));
    other_manifests.assert_status(409);
    // a candidate with no manifests at all is accepted (Aviator's body has none)
    let r = candidate(
        &s,
        "web",
        "1.4.0-rc2",
        json!({"repo": "acme/web", "commit": "abcdef0", "trigger_build_workflow": false}),
    );
    r.assert_status(201);
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.json["deployed"], json!([]));
}

#[test]
fn create_errors_carry_aviators_messages_and_write_nothing() {
    let s = setup(&[]);
    candidate(&s, "web", "1.0.0-rc1", body(SHA)).assert_status(201);
    for rc in ["1.0.0", "1.0.0-rc", "1.0.0-rcX", "-rc1", "1.0.0-beta1", "1.0.0%20-rc1"] {
        assert_aviator_error(&candidate(&s, "web", rc, body(SHA)), 400, "Invalid release candidate version");
    }
    for commit in ["abc", "xyz1234", "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39aa", ""] {
        assert_aviator_error(&candidate(&s, "web", "1.0.0-rc2", body(commit)), 400, "Invalid commit hash");
    }
    // 7, 40 and 64 hex digits are commit hashes (the second and third conflict with the first: same candidate)
    let sha256 = "a".repeat(64);
    for commit in ["abcdef0", SHA, sha256.as_str()] {
        assert!(matches!(candidate(&s, "web", "9.9.9-rc9", body(commit)).status, 200 | 201 | 409));
    }
    let head = s.local_head();
    let mut other_repo = body(SHA);
    other_repo["repo"] = json!("acme/other");
    assert_aviator_error(&candidate(&s, "web", "1.0.0-rc3", other_repo), 404, "Repository not found");
    candidate(&s, "web", "1.0.0-rc4", json!({"repo": "not-a-repo", "commit": SHA})).assert_status(400);
    candidate(&s, "web", "1.0.0-rc4", json!({"repo": "acme/web", "commit": SHA, "manifests": {"nope": "x"}}))
        .assert_status(404);
    candidate(&s, "Web!", "1.0.0-rc4", body(SHA)).assert_status(400);
    candidate(&s, "web", "1.0.0-rc4", json!({"repo": "acme/web", "commit": SHA, "colour": 1})).assert_status(400);
    assert_eq!(s.local_head(), head, "refusals write nothing");
}

#[test]
fn deployments_deploy_record_pending_respect_locks_and_patch_sets_status() {
    let s = setup(&[]);
    candidate(&s, "web", "2.0.0-rc1", body(SHA)).assert_status(201);
    let r = s.post_json(&deployments("prod"), &json!({"release_candidate_version": "2.0.0-rc1"}));
    r.assert_status(201);
    assert_eq!(r.json["status"], "pending");
    assert_eq!(r.json["id"], 1);
    assert_eq!(r.json["deployed"], true);
    assert_eq!(r.json["version"], 1);
    let commit = r.commit().expect("commit");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_file("environments/prod/applications/web/version").as_deref(), Some("1"));
    let record: Value =
        serde_json::from_str(&s.remote_file("applications/web/deployments/prod/1.json").expect("record"))
            .expect("json");
    assert_eq!(record["status"], "pending");
    assert_eq!(record["release_candidate_version"], "2.0.0-rc1");

    let r = patch(&s, &deployments("prod"), &json!({"release_candidate_version": "2.0.0-rc1", "status": "success"}));
    r.assert_status(200);
    assert_eq!((r.json["id"].as_u64(), r.json["status"].as_str()), (Some(1), Some("success")));
    s.wait_exported();
    let record: Value =
        serde_json::from_str(&s.remote_file("applications/web/deployments/prod/1.json").expect("record"))
            .expect("json");
    assert_eq!(record["status"], "success");
    let env = s.get("/api/environments/prod");
    assert_eq!(env.json["last_deployment"]["status"], "success", "{}", env.text);
    assert_eq!(env.json["last_deployment"]["release_candidate_version"], "2.0.0-rc1");

    // PATCH for a candidate never deployed there records it without deploying
    candidate(&s, "web", "2.0.0-rc2", body("abcdef0")).assert_status(201);
    let r =
        patch(&s, &deployments("prod"), &json!({"release_candidate_version": "2.0.0-rc2", "status": "in_progress"}));
    r.assert_status(200);
    assert_eq!((r.json["id"].as_u64(), r.json["deployed"].as_bool()), (Some(2), Some(false)));
    s.wait_exported();
    assert_eq!(s.remote_file("environments/prod/applications/web/version").as_deref(), Some("1"), "not deployed");
    for status in ["pending", "in_progress", "success", "failure", "canceling", "canceled", "unknown"] {
        patch(&s, &deployments("prod"), &json!({"release_candidate_version": "2.0.0-rc2", "status": status}))
            .assert_status(200);
    }
    patch(&s, &deployments("prod"), &json!({"release_candidate_version": "2.0.0-rc2", "status": "done"})).assert_error(
        400,
        "invalid_input",
        Some("status"),
    );

    // a lock holds the deploy back: 409 with the lock's message, nothing written
    s.put_json("/api/environments/prod/locks/freeze", &json!({"message": "release freeze until Monday"}))
        .assert_status(200);
    let head = s.local_head();
    let r = s.post_json(&deployments("prod"), &json!({"release_candidate_version": "2.0.0-rc2"}));
    r.assert_status(409);
    assert!(r.text.contains("release freeze until Monday"), "{}", r.text);
    assert_eq!(s.local_head(), head);
}

#[test]
fn deployment_errors_carry_aviators_messages() {
    let s = setup(&[]);
    candidate(&s, "web", "3.0.0-rc1", body(SHA)).assert_status(201);
    let head = s.local_head();
    // POST (deploy) and PATCH (status) answer the same errors
    let both = |path: &str, rc: &str| {
        [
            s.post_json(path, &json!({"release_candidate_version": rc})),
            patch(&s, path, &json!({"release_candidate_version": rc, "status": "success"})),
        ]
    };
    for r in both(&deployments("prod"), "3.0.0") {
        assert_aviator_error(&r, 400, "Invalid release candidate version");
    }
    for r in both(&deployments("nowhere"), "3.0.0-rc1") {
        assert_aviator_error(&r, 404, "Release environment not found");
    }
    for r in both(&deployments("Bad_Env"), "3.0.0-rc1") {
        assert_aviator_error(&r, 404, "Release environment not found");
    }
    for r in both(&deployments("prod"), "3.0.0-rc7") {
        assert_aviator_error(&r, 404, "Release not found");
    }
    for r in both("/api/releases/nope/environments/prod/deployments", "3.0.0-rc1") {
        assert_aviator_error(&r, 404, "Release not found");
    }
    assert_eq!(s.local_head(), head, "refusals write nothing");
}

/// A one-shot HTTP server: answers 202 to the first request and hands its body over.
fn webhook() -> (String, mpsc::Receiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/build", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut request_line = String::new();
        reader.read_line(&mut request_line).expect("line");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let answer = r#"{"build":"queued","id":77}"#;
        let mut stream = stream;
        write!(stream, "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len())
            .expect("answer");
        let _ = tx.send((request_line, serde_json::from_slice(&body).unwrap_or(Value::Null)));
    });
    (url, rx)
}

#[test]
fn trigger_build_workflow_needs_a_webhook_and_records_its_answer() {
    let s = setup(&[]);
    let mut b = body(SHA);
    b["trigger_build_workflow"] = json!(true);
    let r = candidate(&s, "web", "5.0.0-rc1", b.clone());
    r.assert_error(400, "invalid_input", Some("trigger_build_workflow"));
    assert!(r.text.contains("no build webhook"), "{}", r.text);
    drop(s);

    let (url, rx) = webhook();
    let s = setup(&["--build-webhook", &url]);
    let r = candidate(&s, "web", "5.0.0-rc1", b);
    r.assert_status(201);
    assert_eq!(r.json["build_workflow"]["status"], 202, "{}", r.text);
    let (line, sent) = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the webhook was called");
    assert!(line.starts_with("POST /build "), "{line}");
    assert_eq!(
        sent,
        json!({"project": "web", "release_candidate_version": "5.0.0-rc1", "repo": "acme/web", "commit": SHA})
    );
    s.wait_exported();
    let recorded: Value =
        serde_json::from_str(&s.remote_file("applications/web/releases/1/build.json").expect("build.json"))
            .expect("json");
    assert_eq!(recorded["status"], 202);
    assert_eq!(recorded["body"], r#"{"build":"queued","id":77}"#);
}
