//! Deploys (`PUT /api/environments/{env}/applications/{app}/deploy`) and environment, application, team and
//! environment-group locks, as seen in the remote repo.

use railyard_tests::{Reply, Server};
use serde_json::{json, Value};

const APP_DIR: &str = "environments/staging/applications/web";

/// dev (latest) and staging (from dev); release 1 and 2 of `web` (team core) with manifests for both, and
/// release 1 of `api` (team other) for staging. Nothing is deployed to staging yet.
fn setup() -> Server {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s.release("web", None, &[("dev", "web-1-dev"), ("staging", "web-1-staging")]).assert_status(201);
    s.release("web", None, &[("dev", "web-2-dev"), ("staging", "web-2-staging")]).assert_status(201);
    let mut api = railyard_tests::release_parts("api", None, &[("staging", "api-1-staging")]);
    for (name, value) in &mut api {
        if name == "team" {
            *value = b"other".to_vec();
        }
    }
    s.upload(&api).assert_status(201);
    s.wait_exported();
    s
}

/// Asserts that `r` is a 409 `locked` naming the lock `lock_id` of `scope`, and that nothing was committed.
fn assert_locked(s: &Server, r: &Reply, head: git2::Oid, scope: &str, lock_id: &str) {
    r.assert_error(409, "locked", None);
    let locks = r.json["locks"].as_array().expect("locks in a locked error");
    assert!(
        locks.iter().any(|l| l["scope"] == scope && l["lock_id"] == lock_id),
        "lock {scope}/{lock_id} not named: {}",
        r.text
    );
    assert_eq!(s.local_head(), Some(head), "a refused deploy made a commit");
    assert_eq!(s.wait_exported(), head);
}

#[test]
fn deploy_writes_version_manifest_and_deployment_metadata_to_the_remote() {
    let s = setup();
    let count = s.remote_commit_count();
    let r = s.deploy("staging", "web", 1, "fail");
    r.assert_status(200);
    assert_eq!(r.json["environment"], "staging");
    assert_eq!(r.json["application"], "web");
    assert_eq!(r.json["version"], 1);
    assert_eq!(r.json["previous_version"], Value::Null);
    assert_eq!(r.json["queued"], false);
    let commit = r.commit().expect("a deploy makes a commit");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_commit_count(), count + 1);

    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")).as_deref(), Some("1"));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/manifests/manifests.yaml")).as_deref(), Some("web-1-staging"));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/deployed_by")).as_deref(), Some("railyard"));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/deployed_by_email")).as_deref(), Some("railyard@localhost"));
    let at = s.remote_file(&format!("{APP_DIR}/deployed_at_utc")).expect("deployed_at_utc");
    assert!(at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at:?}");
    let first = s.remote_commit_message(&commit);
    assert_eq!(first.lines().next(), Some("deploy web 1 to staging"));

    // Up to 2, then the same again: 200 without a commit.
    let r = s.deploy("staging", "web", 2, "fail");
    r.assert_status(200);
    assert_eq!(r.json["previous_version"], 1);
    s.wait_exported();
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")).as_deref(), Some("2"));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/manifests/manifests.yaml")).as_deref(), Some("web-2-staging"));
    let head = s.wait_exported();
    let again = s.deploy("staging", "web", 2, "fail");
    again.assert_status(200);
    assert_eq!(again.commit(), None);
    assert_eq!(s.local_head(), Some(head));

    // Rolling back is a deploy too.
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")).as_deref(), Some("1"));
    s.assert_remote_layout();
}

#[test]
fn deploy_of_a_release_without_a_manifest_for_the_env_is_409_and_writes_nothing() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s.release("web", None, &[("dev", "only dev")]).assert_status(201);
    let head = s.wait_exported();
    s.deploy("staging", "web", 1, "fail").assert_error(409, "no_manifest_for_environment", None);
    assert_eq!(s.local_head(), Some(head));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")), None);
}

#[test]
fn deploy_to_locked_env_fails_with_409_and_writes_nothing() {
    let s = setup();
    let lock = s.put_json("/api/environments/staging/locks/freeze", &json!({"message": "incident 42"}));
    lock.assert_status(200);
    assert_eq!(lock.json["lockId"], "freeze");
    assert_eq!(lock.json["changed"], true);
    assert_eq!(lock.json["environments"], json!(["staging"]));
    let head = s.wait_exported();
    assert_eq!(lock.commit(), Some(head.to_string()));
    assert_eq!(s.remote_file("environments/staging/locks/freeze/message").as_deref(), Some("incident 42"));
    assert_eq!(s.remote_file("environments/staging/locks/freeze/created_by_name").as_deref(), Some("railyard"));
    assert!(s.remote_file("environments/staging/locks/freeze/created_at").is_some());
    assert!(s.remote_file("environments/staging/locks/freeze/created_by_email").is_some());

    let r = s.deploy("staging", "web", 1, "fail");
    assert_locked(&s, &r, head, "environment", "freeze");
    assert!(r.json["error"].as_str().unwrap_or_default().contains("incident 42"));
    // fail is the default.
    let r = s.put_json("/api/environments/staging/applications/web/deploy", &json!({"version": 1}));
    assert_locked(&s, &r, head, "environment", "freeze");
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")), None);
    // The lock holds back every app of the env.
    let r = s.deploy("staging", "api", 1, "fail");
    assert_locked(&s, &r, head, "environment", "freeze");
}

#[test]
fn deploy_to_locked_env_with_queue_writes_only_the_queued_version() {
    let s = setup();
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    s.put_json("/api/environments/staging/locks/freeze", &json!({"message": "m"})).assert_status(200);
    let head = s.wait_exported();
    let r = s.deploy("staging", "web", 2, "queue");
    r.assert_status(200);
    assert_eq!(r.json["queued"], true);
    assert_eq!(r.json["version"], 2);
    assert_eq!(r.json["previous_version"], 1);
    let commit = r.commit().expect("queueing makes a commit");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_commit_parents(&commit), vec![head.to_string()]);
    assert_eq!(s.remote_file(&format!("{APP_DIR}/queued_version")).as_deref(), Some("2"));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")).as_deref(), Some("1"));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/manifests/manifests.yaml")).as_deref(), Some("web-1-staging"));
    // Queueing the same again changes nothing.
    let head = s.wait_exported();
    let again = s.deploy("staging", "web", 2, "queue");
    again.assert_status(200);
    assert_eq!(again.commit(), None);
    assert_eq!(s.local_head(), Some(head));
    // The overview shows it.
    let o = s.get("/api/overview");
    o.assert_status(200);
    let staging = o.json["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "staging")
        .expect("staging in overview")
        .clone();
    let web = staging["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["application"] == "web")
        .expect("web in staging")
        .clone();
    assert_eq!(web["version"], 1);
    assert_eq!(web["queued_version"], 2);
    assert_eq!(staging["locks"][0]["lockId"], "freeze");
}

#[test]
fn deploy_to_locked_env_with_ignore_deploys_and_clears_the_queue() {
    let s = setup();
    s.put_json("/api/environments/staging/locks/freeze", &json!({"message": "m"})).assert_status(200);
    s.deploy("staging", "web", 1, "queue").assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file(&format!("{APP_DIR}/queued_version")).as_deref(), Some("1"));
    let r = s.deploy("staging", "web", 2, "ignore");
    r.assert_status(200);
    assert_eq!(r.json["queued"], false);
    assert_eq!(s.wait_exported().to_string(), r.commit().unwrap());
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")).as_deref(), Some("2"));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/manifests/manifests.yaml")).as_deref(), Some("web-2-staging"));
    assert_eq!(s.remote_file(&format!("{APP_DIR}/queued_version")), None);
    // The lock is still there.
    assert!(s.remote_file("environments/staging/locks/freeze/message").is_some());
}

#[test]
fn app_lock_blocks_only_that_app_until_it_is_deleted() {
    let s = setup();
    let r = s.put_json("/api/environments/staging/applications/web/locks/hold", &json!({"message": "do not touch"}));
    r.assert_status(200);
    let head = s.wait_exported();
    assert_eq!(s.remote_file(&format!("{APP_DIR}/locks/hold/message")).as_deref(), Some("do not touch"));
    let blocked = s.deploy("staging", "web", 1, "fail");
    assert_locked(&s, &blocked, head, "application", "hold");
    // Another app in the same env deploys.
    s.deploy("staging", "api", 1, "fail").assert_status(200);
    // The same app in another env deploys.
    s.deploy("dev", "web", 1, "fail").assert_status(200);

    let list = s.get("/api/environments/staging/applications/web/locks");
    list.assert_status(200);
    assert_eq!(list.json["locks"][0]["lockId"], "hold");
    assert_eq!(list.json["locks"][0]["message"], "do not touch");
    let one = s.get("/api/environments/staging/applications/web/locks/hold");
    one.assert_status(200);
    assert_eq!(one.json["message"], "do not touch");

    let del = s.delete("/api/environments/staging/applications/web/locks/hold");
    del.assert_status(200);
    assert_eq!(del.json["changed"], true);
    s.wait_exported();
    assert!(!s.remote_paths().iter().any(|p| p.contains("/locks/hold/")));
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")).as_deref(), Some("1"));
    s.get("/api/environments/staging/applications/web/locks/hold").assert_error(404, "not_found", None);
}

#[test]
fn team_lock_blocks_the_apps_of_that_team_only() {
    let s = setup();
    let r =
        s.put_json("/api/environments/staging/teams/core/locks/team-freeze", &json!({"message": "core team freeze"}));
    r.assert_status(200);
    let head = s.wait_exported();
    assert_eq!(
        s.remote_file("environments/staging/teams/core/locks/team-freeze/message").as_deref(),
        Some("core team freeze")
    );
    let blocked = s.deploy("staging", "web", 1, "fail");
    assert_locked(&s, &blocked, head, "team", "team-freeze");
    // api belongs to team "other".
    s.deploy("staging", "api", 1, "fail").assert_status(200);

    let list = s.get("/api/environments/staging/teams/core/locks");
    list.assert_status(200);
    assert_eq!(list.json["locks"].as_array().map(Vec::len), Some(1));
    assert_eq!(list.json["locks"][0]["lockId"], "team-freeze");

    s.delete("/api/environments/staging/teams/core/locks/team-freeze").assert_status(200);
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")).as_deref(), Some("1"));
    assert!(!s.remote_paths().iter().any(|p| p.contains("team-freeze")));
}

#[test]
fn unlock_then_deploy_works_and_unlocking_again_changes_nothing() {
    let s = setup();
    s.put_json("/api/environments/staging/locks/freeze", &json!({"message": "m"})).assert_status(200);
    let head = s.wait_exported();
    assert_locked(&s, &s.deploy("staging", "web", 1, "fail"), head, "environment", "freeze");

    let del = s.delete("/api/environments/staging/locks/freeze");
    del.assert_status(200);
    assert_eq!(del.json["changed"], true);
    let commit = del.commit().expect("unlocking makes a commit");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert!(!s.remote_paths().iter().any(|p| p.starts_with("environments/staging/locks/")));

    let head = s.wait_exported();
    let again = s.delete("/api/environments/staging/locks/freeze");
    again.assert_status(200);
    assert_eq!(again.json["changed"], false);
    assert_eq!(again.commit(), None);
    assert_eq!(s.local_head(), Some(head));

    let r = s.deploy("staging", "web", 1, "fail");
    r.assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file(&format!("{APP_DIR}/version")).as_deref(), Some("1"));
}

#[test]
fn locking_twice_answers_200_and_makes_no_second_commit() {
    let s = setup();
    for path in [
        "/api/environments/staging/locks/l1",
        "/api/environments/staging/applications/web/locks/l1",
        "/api/environments/staging/teams/core/locks/l1",
    ] {
        let first = s.put_json(path, &json!({"message": "why"}));
        first.assert_status(200);
        assert_eq!(first.json["changed"], true, "{path}");
        let head = s.wait_exported();
        assert_eq!(first.commit(), Some(head.to_string()));
        let count = s.remote_commit_count();
        let created_at =
            s.remote_file(&format!("{}/l1/created_at", path.trim_start_matches("/api/").trim_end_matches("/l1")));
        assert!(created_at.is_some(), "{path}");

        let second = s.put_json(path, &json!({"message": "why"}));
        second.assert_status(200);
        assert_eq!(second.json["changed"], false, "{path}");
        assert_eq!(second.commit(), None, "{path}");
        assert_eq!(s.local_head(), Some(head), "{path}");
        assert_eq!(s.wait_exported(), head);
        assert_eq!(s.remote_commit_count(), count);
    }
    // Another message is a change.
    let r = s.put_json("/api/environments/staging/locks/l1", &json!({"message": "new reason"}));
    r.assert_status(200);
    assert_eq!(r.json["changed"], true);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/staging/locks/l1/message").as_deref(), Some("new reason"));
}

#[test]
fn lock_without_a_body_has_an_empty_message() {
    let s = setup();
    let r = s.send_raw_body("PUT", "/api/environments/staging/locks/nobody", "application/json", vec![]);
    r.assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/staging/locks/nobody/message").as_deref(), Some(""));
}

#[test]
fn group_lock_is_one_commit_that_locks_every_env_of_the_group() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("prod-de", json!({"environment": "dev"}), Some("prod"));
    s.create_env("prod-us", json!({"environment": "dev"}), Some("prod"));
    s.create_env("prod-eu", json!({"environment": "dev"}), Some("prod"));
    s.release("web", None, &[("dev", "d"), ("prod-de", "p"), ("prod-us", "p"), ("prod-eu", "p")]).assert_status(201);
    let head = s.wait_exported();
    let count = s.remote_commit_count();
    let config = s.remote_file("environments/prod-de/config.json").expect("config");
    let config: Value = serde_json::from_str(&config).expect("config.json is JSON");
    assert_eq!(config["environmentGroup"], "prod");

    let r = s.put_json("/api/environment-groups/prod/locks/maint", &json!({"message": "maintenance"}));
    r.assert_status(201);
    assert_eq!(r.json["environments"], json!(["prod-de", "prod-eu", "prod-us"]));
    assert_eq!(r.json["changed"], true);
    let commit = r.commit().expect("a group lock makes a commit");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_commit_count(), count + 1, "a group lock must be ONE commit");
    assert_eq!(s.remote_commit_parents(&commit), vec![head.to_string()]);
    for env in ["prod-de", "prod-us", "prod-eu"] {
        assert_eq!(
            s.remote_file(&format!("environments/{env}/locks/maint/message")).as_deref(),
            Some("maintenance"),
            "{env}"
        );
        let list = s.get(&format!("/api/environments/{env}/locks"));
        list.assert_status(200);
        assert_eq!(list.json["locks"][0]["lockId"], "maint", "{env}");
        assert_eq!(list.json["locks"][0]["message"], "maintenance", "{env}");
        let head = s.wait_exported();
        assert_locked(&s, &s.deploy(env, "web", 1, "fail"), head, "environment", "maint");
    }
    assert_eq!(s.remote_file("environments/dev/locks/maint/message"), None);

    // Again: already so, which answers 200 (SPEC 4.1), changes nothing, no commit.
    let head = s.wait_exported();
    let again = s.put_json("/api/environment-groups/prod/locks/maint", &json!({"message": "maintenance"}));
    again.assert_status(200);
    assert_eq!(again.json["changed"], false);
    assert_eq!(again.commit(), None);
    assert_eq!(s.local_head(), Some(head));

    // Unlocking the group is one commit too.
    let count = s.remote_commit_count();
    let del = s.delete("/api/environment-groups/prod/locks/maint");
    del.assert_status(200);
    assert_eq!(del.json["changed"], true);
    s.wait_exported();
    assert_eq!(s.remote_commit_count(), count + 1);
    assert!(!s.remote_paths().iter().any(|p| p.contains("/locks/maint/")));
    s.deploy("prod-de", "web", 1, "fail").assert_status(200);
}

#[test]
fn lock_lists_show_what_is_locked() {
    let s = setup();
    let empty = s.get("/api/environments/staging/locks");
    empty.assert_status(200);
    assert_eq!(empty.json["locks"], json!([]));
    s.put_json("/api/environments/staging/locks/b-lock", &json!({"message": "B"})).assert_status(200);
    s.put_json("/api/environments/staging/locks/a-lock", &json!({"message": "A"})).assert_status(200);
    let list = s.get("/api/environments/staging/locks");
    list.assert_status(200);
    let locks = list.json["locks"].as_array().expect("locks");
    let ids: Vec<&Value> = locks.iter().map(|l| &l["lockId"]).collect();
    assert_eq!(ids, [&json!("a-lock"), &json!("b-lock")]);
    for l in locks {
        assert_eq!(l["created_by_name"], "railyard");
        assert!(l["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let one = s.get("/api/environments/staging/locks/b-lock");
    one.assert_status(200);
    assert_eq!(one.json["lockId"], "b-lock");
    assert_eq!(one.json["message"], "B");
    s.get("/api/environments/staging/locks/c-lock").assert_error(404, "not_found", None);
    // dev has none.
    assert_eq!(s.get("/api/environments/dev/locks").json["locks"], json!([]));
}

#[test]
fn locks_on_unknown_things_are_404_and_write_nothing() {
    let s = setup();
    let head = s.wait_exported();
    s.put_json("/api/environments/prod/locks/l", &json!({"message": "m"})).assert_error(404, "not_found", None);
    s.put_json("/api/environments/staging/applications/ghost/locks/l", &json!({"message": "m"})).assert_error(
        404,
        "not_found",
        None,
    );
    s.put_json("/api/environments/prod/teams/core/locks/l", &json!({"message": "m"})).assert_error(
        404,
        "not_found",
        None,
    );
    s.put_json("/api/environment-groups/nope/locks/l", &json!({"message": "m"})).assert_error(404, "not_found", None);
    s.delete("/api/environments/prod/locks/l").assert_error(404, "not_found", None);
    s.get("/api/environments/prod/locks").assert_error(404, "not_found", None);
    assert_eq!(s.local_head(), Some(head));
    assert_eq!(s.wait_exported(), head);
}

#[test]
fn deploy_with_queue_or_ignore_to_an_unlocked_env_just_deploys() {
    let s = setup();
    for (version, behavior) in [(1, "queue"), (2, "ignore")] {
        let r = s.deploy("staging", "web", version, behavior);
        r.assert_status(200);
        assert_eq!(r.json["queued"], false, "{behavior}");
        s.wait_exported();
        assert_eq!(s.remote_file(&format!("{APP_DIR}/version")), Some(version.to_string()), "{behavior}");
        assert_eq!(s.remote_file(&format!("{APP_DIR}/queued_version")), None, "{behavior}");
    }
}

#[test]
fn folder_environment_is_addressed_url_encoded_in_paths() {
    let s = Server::start();
    s.create_env("review/fix-a", json!({"latest": true}), None);
    let r = s.release("web", None, &[("review/fix-a", "review manifest")]);
    r.assert_status(201);
    assert_eq!(r.json["deployed"], json!(["review/fix-a"]));
    s.wait_exported();
    assert_eq!(
        s.remote_file("applications/web/releases/1/environments/review/fix-a/manifests.yaml").as_deref(),
        Some("review manifest")
    );
    assert_eq!(s.remote_file("environments/review/fix-a/applications/web/version").as_deref(), Some("1"));

    let env = s.get("/api/environments/review%2Ffix-a");
    env.assert_status(200);
    assert_eq!(env.json["name"], "review/fix-a");
    s.put_json("/api/environments/review%2Ffix-a/locks/hold", &json!({"message": "m"})).assert_status(200);
    let head = s.wait_exported();
    assert_eq!(s.remote_file("environments/review/fix-a/locks/hold/message").as_deref(), Some("m"));
    s.release("web", None, &[("review/fix-a", "second")]).assert_status(201);
    let head2 = s.wait_exported();
    assert_ne!(head, head2);
    assert_eq!(s.remote_file("environments/review/fix-a/applications/web/queued_version").as_deref(), Some("2"));
    let blocked = s.deploy("review%2Ffix-a", "web", 2, "fail");
    assert_locked(&s, &blocked, head2, "environment", "hold");
    s.delete("/api/environments/review%2Ffix-a/locks/hold").assert_status(200);
    s.deploy("review%2Ffix-a", "web", 2, "fail").assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/review/fix-a/applications/web/version").as_deref(), Some("2"));
    s.assert_remote_layout();
}
