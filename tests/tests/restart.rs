//! kill -9 and restart in the same directory: the state is read back from the repo, and new writes go on from it.

use railyard_tests::Server;
use serde_json::{json, Value};

#[test]
fn state_survives_kill_and_restart_and_new_writes_work() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), Some("pre"));
    s.release("web", None, &[("dev", "w1-dev"), ("staging", "w1-staging")]).assert_status(201);
    s.put_json("/api/environments/staging/locks/freeze", &json!({"message": "hold on"})).assert_status(200);
    s.deploy("staging", "web", 1, "queue").assert_status(200);
    let head = s.wait_exported();
    let count = s.remote_commit_count();

    let dir = s.kill();
    let s = Server::start_in(dir, &[]);
    assert_eq!(s.local_head(), Some(head));
    assert_eq!(s.remote_head(), Some(head));

    // Everything is still there.
    let envs = s.get("/api/environments");
    envs.assert_status(200);
    let names: Vec<&Value> =
        envs.json["environments"].as_array().expect("environments").iter().map(|e| &e["name"]).collect();
    assert_eq!(names, [&json!("dev"), &json!("staging")]);
    let staging = s.get("/api/environments/staging");
    staging.assert_status(200);
    assert_eq!(staging.json["id"], 2);
    assert_eq!(staging.json["environmentGroup"], "pre");
    assert_eq!(staging.json["upstream"], json!({"environment": "dev"}));
    let locks = s.get("/api/environments/staging/locks");
    assert_eq!(locks.json["locks"][0]["lockId"], "freeze");
    assert_eq!(locks.json["locks"][0]["message"], "hold on");
    let releases = s.get("/api/applications/web/releases");
    releases.assert_status(200);
    assert_eq!(releases.json["releases"][0]["version"], 1);
    let overview = s.get("/api/overview");
    let web_in_staging = overview.json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "staging")
        .and_then(|e| e["applications"].as_array())
        .and_then(|a| a.iter().find(|a| a["application"] == "web"))
        .cloned()
        .expect("web in staging");
    assert_eq!(web_in_staging["queued_version"], 1);
    assert_eq!(web_in_staging["version"], Value::Null);

    // The same lock again changes nothing; the lock still holds deploys back.
    let again = s.put_json("/api/environments/staging/locks/freeze", &json!({"message": "hold on"}));
    again.assert_status(200);
    assert_eq!(again.commit(), None);
    s.deploy("staging", "web", 1, "fail").assert_error(409, "locked", None);

    // New writes continue from the old state.
    let r = s.release("web", None, &[("dev", "w2-dev"), ("staging", "w2-staging")]);
    r.assert_status(201);
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.json["deployed"], json!(["dev"]));
    let qa = s.create_env("qa", json!({"environment": "dev"}), None);
    assert_eq!(qa.json["id"], 3, "environment ids go on after a restart");
    s.delete("/api/environments/staging/locks/freeze").assert_status(200);
    s.deploy("staging", "web", 2, "fail").assert_status(200);

    let new_head = s.wait_exported();
    assert_eq!(s.remote_commit_count(), count + 4);
    assert!(s.remote_contains(&head.to_string()));
    assert_ne!(new_head, head);
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("2"));
    assert_eq!(s.remote_file("environments/staging/applications/web/version").as_deref(), Some("2"));
    assert_eq!(
        s.remote_file("environments/staging/applications/web/manifests/manifests.yaml").as_deref(),
        Some("w2-staging")
    );
    assert_eq!(s.remote_file("environments/staging/applications/web/queued_version"), None);
    assert_eq!(s.remote_file("environments/staging/locks/freeze/message"), None);
    assert!(s.remote_file("applications/web/releases/1/environments/dev/manifests.yaml").is_some());
    s.assert_remote_layout();
}

#[test]
fn writes_acknowledged_just_before_a_kill_reach_the_remote_after_restart() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    let mut commits = Vec::new();
    for i in 1..=20 {
        let r = s.release("web", None, &[("dev", &format!("build {i}"))]);
        r.assert_status(201);
        assert_eq!(r.json["version"], i);
        commits.push(r.commit().expect("commit"));
    }
    // No waiting for the export: kill -9 right after the last answer.
    let local = s.local_head();
    let dir = s.kill();
    let s = Server::start_in(dir, &[]);
    assert_eq!(s.local_head(), local, "an acknowledged commit was lost locally");
    let head = s.wait_exported();
    assert_eq!(Some(head), local);
    for (i, c) in commits.iter().enumerate() {
        assert!(s.remote_contains(c), "commit of build {} missing", i + 1);
        assert_eq!(
            s.remote_file(&format!("applications/web/releases/{}/environments/dev/manifests.yaml", i + 1)),
            Some(format!("build {}", i + 1))
        );
    }
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("20"));
    // And the next number is 21.
    let r = s.release("web", None, &[("dev", "build 21")]);
    r.assert_status(201);
    assert_eq!(r.json["version"], 21);
    assert_eq!(s.wait_exported().to_string(), r.commit().unwrap());
}
