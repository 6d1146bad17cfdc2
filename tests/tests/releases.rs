//! Release uploads (`POST /api/release`): what lands in the remote, auto-deploys to `upstream.latest`
//! environments, version numbering, idempotent and conflicting re-uploads.

use railyard_tests::Server;
use serde_json::{json, Value};

/// dev takes the newest release of everything; staging takes what dev runs.
fn dev_and_staging() -> Server {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s
}

/// A timestamp as written by the server: RFC 3339 UTC, whole seconds (`2026-11-23T10:00:00Z`).
fn assert_utc_timestamp(t: &str) {
    let b = t.as_bytes();
    assert_eq!(b.len(), 20, "not a whole-second UTC timestamp: {t:?}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{t:?}"),
            10 => assert_eq!(*c, b'T', "{t:?}"),
            13 | 16 => assert_eq!(*c, b':', "{t:?}"),
            19 => assert_eq!(*c, b'Z', "{t:?}"),
            _ => assert!(c.is_ascii_digit(), "{t:?}"),
        }
    }
}

#[test]
fn release_with_two_envs_is_stored_and_deployed_only_to_the_latest_env() {
    let s = dev_and_staging();
    let before = s.wait_exported().to_string();
    let commits_before = s.remote_commit_count();

    let r = s.release("web", None, &[("dev", "kind: Deployment # dev\n"), ("staging", "kind: Deployment # staging\n")]);
    r.assert_status(201);
    assert_eq!(r.json["application"], "web");
    assert_eq!(r.json["version"], 1);
    assert_eq!(r.json["created"], true);
    assert_eq!(r.json["deployed"], json!(["dev"]));
    assert_eq!(r.json["queued"], json!([]));
    let commit = r.commit().expect("a new release makes a commit");

    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_commit_count(), commits_before + 1);
    assert_eq!(s.remote_commit_parents(&commit), vec![before]);

    // The release itself.
    let rel = "applications/web/releases/1";
    for (file, want) in [
        ("source_commit_id", "0123abc"),
        ("source_author", "Dev <dev@example.com>"),
        ("source_message", "fix the thing"),
        ("display_version", "1.2.3"),
        ("environments/dev/manifests.yaml", "kind: Deployment # dev\n"),
        ("environments/staging/manifests.yaml", "kind: Deployment # staging\n"),
    ] {
        assert_eq!(s.remote_file(&format!("{rel}/{file}")).as_deref(), Some(want), "{rel}/{file}");
    }
    assert_utc_timestamp(&s.remote_file(&format!("{rel}/created_at")).expect("created_at"));
    assert_eq!(s.remote_file("applications/web/team").as_deref(), Some("core"));

    // dev (upstream latest) runs it at once.
    let dev = "environments/dev/applications/web";
    assert_eq!(s.remote_file(&format!("{dev}/version")).as_deref(), Some("1"));
    assert_eq!(s.remote_file(&format!("{dev}/manifests/manifests.yaml")).as_deref(), Some("kind: Deployment # dev\n"));
    assert_eq!(s.remote_file(&format!("{dev}/deployed_by")).as_deref(), Some("railyard"));
    assert_utc_timestamp(&s.remote_file(&format!("{dev}/deployed_at_utc")).expect("deployed_at_utc"));
    assert_eq!(s.remote_file(&format!("{dev}/queued_version")), None);

    // staging (upstream dev) does not.
    assert!(
        !s.remote_paths().iter().any(|p| p.starts_with("environments/staging/applications/")),
        "staging got files: {:?}",
        s.remote_paths()
    );

    // The commit message: a readable first line and the request as a trailer.
    let msg = s.remote_commit_message(&commit);
    let first = msg.lines().next().unwrap_or_default();
    assert!(first.contains("web") && first.contains('1'), "first line: {first:?}");
    let trailer = msg.lines().find_map(|l| l.strip_prefix("Railyard-Request: ")).expect("Railyard-Request trailer");
    let req: Value = serde_json::from_str(trailer).expect("trailer is JSON");
    assert_eq!(req["request"]["application"], "web");
    assert!(!trailer.contains("kind: Deployment"), "manifests must be referenced by blob id, not inlined: {trailer}");
    s.assert_remote_layout();
}

#[test]
fn release_without_version_gets_the_next_number_after_the_highest() {
    let s = dev_and_staging();
    let r = s.release("web", Some("5"), &[("dev", "v5")]);
    r.assert_status(201);
    assert_eq!(r.json["version"], 5);
    let r = s.release("web", None, &[("dev", "v6")]);
    r.assert_status(201);
    assert_eq!(r.json["version"], 6);
    s.wait_exported();
    assert_eq!(s.remote_file("applications/web/releases/6/environments/dev/manifests.yaml").as_deref(), Some("v6"));
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("6"));
    // No release 1..4 was invented.
    assert!(s.remote_file("applications/web/releases/1/created_at").is_none());
}

#[test]
fn older_release_uploaded_later_does_not_replace_the_newer_one_in_a_latest_env() {
    let s = dev_and_staging();
    s.release("web", Some("5"), &[("dev", "v5")]).assert_status(201);
    let r = s.release("web", Some("3"), &[("dev", "v3")]);
    r.assert_status(201);
    assert_eq!(r.json["deployed"], json!([]));
    s.wait_exported();
    assert_eq!(s.remote_file("environments/dev/applications/web/version").as_deref(), Some("5"));
    assert_eq!(s.remote_file("environments/dev/applications/web/manifests/manifests.yaml").as_deref(), Some("v5"));
    assert_eq!(s.remote_file("applications/web/releases/3/environments/dev/manifests.yaml").as_deref(), Some("v3"));
}

#[test]
fn identical_reupload_answers_200_and_makes_no_commit() {
    let s = dev_and_staging();
    let first = s.release("web", Some("1"), &[("dev", "a: 1\n"), ("staging", "b: 1\n")]);
    first.assert_status(201);
    let head = s.wait_exported();
    let count = s.remote_commit_count();
    let created_at = s.remote_file("applications/web/releases/1/created_at");

    let again = s.release("web", Some("1"), &[("dev", "a: 1\n"), ("staging", "b: 1\n")]);
    again.assert_status(200);
    assert_eq!(again.json["created"], false);
    assert_eq!(again.json["version"], 1);
    assert_eq!(again.commit(), None);

    assert_eq!(s.wait_exported(), head);
    assert_eq!(s.local_head(), Some(head));
    assert_eq!(s.remote_commit_count(), count);
    assert_eq!(s.remote_file("applications/web/releases/1/created_at"), created_at);
}

#[test]
fn conflicting_reupload_answers_409_release_exists_and_writes_nothing() {
    let s = dev_and_staging();
    s.release("web", Some("1"), &[("dev", "a: 1\n"), ("staging", "b: 1\n")]).assert_status(201);
    let head = s.wait_exported();

    // Same number, other manifest.
    s.release("web", Some("1"), &[("dev", "a: OTHER\n"), ("staging", "b: 1\n")]).assert_error(
        409,
        "release_exists",
        None,
    );
    // Same number, a manifest fewer.
    s.release("web", Some("1"), &[("dev", "a: 1\n")]).assert_error(409, "release_exists", None);
    // Same number and manifests, other source metadata.
    let mut parts = railyard_tests::release_parts("web", Some("1"), &[("dev", "a: 1\n"), ("staging", "b: 1\n")]);
    for (name, value) in &mut parts {
        if name == "source_commit_id" {
            *value = b"fffffff".to_vec();
        }
    }
    s.upload(&parts).assert_error(409, "release_exists", None);

    assert_eq!(s.wait_exported(), head);
    assert_eq!(s.local_head(), Some(head));
    assert_eq!(s.remote_file("applications/web/releases/1/environments/dev/manifests.yaml").as_deref(), Some("a: 1\n"));
    assert_eq!(s.remote_file("applications/web/releases/1/source_commit_id").as_deref(), Some("0123abc"));
}

#[test]
fn release_to_a_locked_latest_env_is_queued_not_deployed() {
    let s = dev_and_staging();
    s.put_json("/api/environments/dev/locks/freeze", &json!({"message": "release freeze"})).assert_status(200);
    let r = s.release("web", None, &[("dev", "a: 1\n")]);
    r.assert_status(201);
    assert_eq!(r.json["deployed"], json!([]));
    assert_eq!(r.json["queued"], json!(["dev"]));
    s.wait_exported();
    assert_eq!(s.remote_file("environments/dev/applications/web/queued_version").as_deref(), Some("1"));
    assert_eq!(s.remote_file("environments/dev/applications/web/version"), None);
    assert_eq!(s.remote_file("environments/dev/applications/web/manifests/manifests.yaml"), None);
    assert!(s.remote_file("applications/web/releases/1/environments/dev/manifests.yaml").is_some());
}

#[test]
fn releases_of_an_application_are_listed_newest_first() {
    let s = dev_and_staging();
    s.release("web", None, &[("dev", "1")]).assert_status(201);
    s.release("web", None, &[("dev", "2"), ("staging", "2")]).assert_status(201);
    let r = s.get("/api/applications/web/releases");
    r.assert_status(200);
    assert_eq!(r.json["application"], "web");
    assert_eq!(r.json["team"], "core");
    let releases = r.json["releases"].as_array().expect("releases");
    let versions: Vec<&Value> = releases.iter().map(|r| &r["version"]).collect();
    assert_eq!(versions, [&json!(2), &json!(1)]);
    assert_eq!(releases[0]["environments"], json!(["dev", "staging"]));
    assert_eq!(releases[1]["environments"], json!(["dev"]));
    assert_eq!(releases[0]["source_commit_id"], "0123abc");
    assert_eq!(releases[0]["display_version"], "1.2.3");
}
