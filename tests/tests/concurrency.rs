//! Many clients at once: the single writer folds concurrent requests into batches; every acknowledged write
//! must land in the remote, with the number it was answered with.

use std::collections::BTreeMap;
use std::sync::Barrier;

use railyard_tests::{Reply, Server};
use serde_json::json;

const N: usize = 50;

/// Runs `f(i)` for `i` in `0..n` on `n` threads released together; returns the answers in order of `i`.
fn all_at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    })
}

#[test]
fn fifty_concurrent_uploads_of_different_apps_all_land_in_the_remote() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    let answers =
        all_at_once(N, |i| s.release(&format!("app-{i}"), None, &[("dev", &format!("manifest of app {i}\n"))]));
    let mut commits = Vec::new();
    for (i, r) in answers.iter().enumerate() {
        r.assert_status(201);
        assert_eq!(r.json["application"], format!("app-{i}"));
        assert_eq!(r.json["version"], 1, "app-{i}");
        assert_eq!(r.json["deployed"], json!(["dev"]), "app-{i}");
        commits.push(r.commit().expect("every upload answers with its commit"));
    }
    s.wait_exported();
    for (i, c) in commits.iter().enumerate() {
        assert!(s.remote_contains(c), "commit of app-{i} is not on the remote");
        // The commit the upload was answered with already holds it.
        assert_eq!(
            s.remote_file_at(c, &format!("applications/app-{i}/releases/1/environments/dev/manifests.yaml")),
            Some(format!("manifest of app {i}\n")),
            "app-{i} at its answered commit"
        );
        assert_eq!(
            s.remote_file(&format!("applications/app-{i}/releases/1/environments/dev/manifests.yaml")),
            Some(format!("manifest of app {i}\n")),
            "app-{i}"
        );
        assert_eq!(
            s.remote_file(&format!("environments/dev/applications/app-{i}/version")).as_deref(),
            Some("1"),
            "app-{i}"
        );
        assert_eq!(
            s.remote_file(&format!("environments/dev/applications/app-{i}/manifests/manifests.yaml")),
            Some(format!("manifest of app {i}\n")),
            "app-{i}"
        );
    }
    let releases = s.remote_paths().into_iter().filter(|p| p.ends_with("/releases/1/created_at")).count();
    assert_eq!(releases, N);
    // Batching may fold them into fewer commits, never more than one each.
    assert!(s.remote_commit_count() <= N + 1);
    s.assert_remote_layout();
}

#[test]
fn fifty_concurrent_uploads_of_one_app_without_version_get_versions_1_to_50() {
    // Every release is checked afterwards: retention (default 20) would delete the oldest.
    let s = Server::start_with(&["--release-versions-limit", "0"]);
    s.create_env("dev", json!({"latest": true}), None);
    let answers = all_at_once(N, |i| s.release("web", None, &[("dev", &format!("build {i}\n"))]));
    let mut by_version = BTreeMap::new();
    for (i, r) in answers.iter().enumerate() {
        r.assert_status(201);
        let commit = r.commit().expect("every upload answers with its commit");
        let v = r.json["version"].as_u64().expect("version");
        assert!(by_version.insert(v, (i, commit)).is_none(), "version {v} given twice");
    }
    let versions: Vec<u64> = by_version.keys().copied().collect();
    assert_eq!(versions, (1..=N as u64).collect::<Vec<_>>());
    s.wait_exported();
    for (v, (i, commit)) in &by_version {
        let path = format!("applications/web/releases/{v}/environments/dev/manifests.yaml");
        assert_eq!(s.remote_file(&path), Some(format!("build {i}\n")), "release {v}");
        assert_eq!(s.remote_file_at(commit, &path), Some(format!("build {i}\n")), "release {v} at its commit");
        assert!(s.remote_contains(commit));
    }
    // dev runs the newest.
    let (newest, _) = by_version[&(N as u64)];
    assert_eq!(s.remote_file("environments/dev/applications/web/version"), Some(N.to_string()));
    assert_eq!(
        s.remote_file("environments/dev/applications/web/manifests/manifests.yaml"),
        Some(format!("build {newest}\n"))
    );
    let listed = s.get("/api/applications/web/releases");
    assert_eq!(listed.json["releases"].as_array().map(Vec::len), Some(N));
}

#[test]
fn concurrent_identical_uploads_create_the_release_once() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    let before = s.wait_exported();
    let answers = all_at_once(10, |_| s.release("web", Some("7"), &[("dev", "same\n")]));
    let created: Vec<&Reply> = answers.iter().filter(|r| r.status == 201).collect();
    let existing: Vec<&Reply> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(created.len(), 1, "exactly one upload creates it: {answers:?}");
    assert_eq!(existing.len(), 9, "{answers:?}");
    assert!(existing.iter().all(|r| r.json["created"] == false && r.json["version"] == 7));
    let head = s.wait_exported();
    assert_eq!(s.remote_commit_parents(&head.to_string()), vec![before.to_string()]);
    assert_eq!(created[0].commit(), Some(head.to_string()));
    assert_eq!(s.remote_file("applications/web/releases/7/environments/dev/manifests.yaml").as_deref(), Some("same\n"));
}

#[test]
fn concurrent_locks_and_deploys_all_land() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    for i in 0..5 {
        s.create_env(&format!("env-{i}"), json!({"environment": "dev"}), None);
    }
    let manifests: Vec<(String, String)> = (0..5).map(|i| (format!("env-{i}"), format!("m{i}"))).collect();
    let refs: Vec<(&str, &str)> = manifests.iter().map(|(e, m)| (e.as_str(), m.as_str())).collect();
    s.release("web", None, &refs).assert_status(201);
    // 5 deploys and 20 locks (on envs nobody deploys to) at once.
    let answers = all_at_once(25, |i| {
        if i < 5 {
            s.deploy(&format!("env-{i}"), "web", 1, "fail")
        } else {
            s.put_json(&format!("/api/environments/dev/locks/lock-{i}"), &json!({"message": format!("m{i}")}))
        }
    });
    for (i, r) in answers.iter().enumerate() {
        r.assert_status(200);
        assert!(r.commit().is_some(), "answer {i} has no commit: {}", r.text);
    }
    s.wait_exported();
    for i in 0..5 {
        assert_eq!(s.remote_file(&format!("environments/env-{i}/applications/web/version")).as_deref(), Some("1"));
        assert_eq!(
            s.remote_file(&format!("environments/env-{i}/applications/web/manifests/manifests.yaml")),
            Some(format!("m{i}"))
        );
    }
    for i in 5..25 {
        assert_eq!(s.remote_file(&format!("environments/dev/locks/lock-{i}/message")), Some(format!("m{i}")));
    }
}

#[test]
fn one_bad_request_in_a_batch_does_not_fail_the_requests_batched_with_it() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    for round in 0..3 {
        let answers = all_at_once(41, |i| {
            let id = if i == 20 { ".git".to_owned() } else { format!("r{round}-lock-{i}") };
            s.raw_http(
                "PUT",
                &format!("/api/environments/dev/locks/{id}"),
                Some("application/json"),
                br#"{"message":"m"}"#,
            )
        });
        for (i, r) in answers.iter().enumerate() {
            if i == 20 {
                assert!(r.status < 500, "the `.git` lock itself: {} {}", r.status, r.text);
            } else {
                assert_eq!(
                    r.status, 200,
                    "round {round}: an innocent lock request failed because of another one in its batch: {}",
                    r.text
                );
            }
        }
    }
    s.assert_healthy();
}

#[test]
fn full_writer_queue_answers_503_with_retry_after_and_keeps_what_it_acknowledged() {
    let s = Server::start_with(&["--queue-capacity", "1", "--batch-max", "1"]);
    s.create_env("dev", json!({"latest": true}), None);
    let answers = all_at_once(N, |i| {
        let (ct, body) = railyard_tests::multipart_body(&[
            ("application", format!("app-{i}").as_bytes()),
            ("manifests[dev]", format!("m{i}").as_bytes()),
        ]);
        let r = s.client().post(s.at("/api/release")).header("content-type", ct).body(body).send().expect("upload");
        let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
        let status = r.status().as_u16();
        let json: serde_json::Value = r.json().unwrap_or_default();
        (status, retry_after, json)
    });
    let mut accepted = 0;
    let mut refused = 0;
    for (i, (status, retry_after, body)) in answers.iter().enumerate() {
        match status {
            201 => {
                accepted += 1;
                assert!(body["commit"].is_string(), "app-{i}: {body}");
            }
            503 => {
                refused += 1;
                assert_eq!(body["code"], "queue_full", "app-{i}: {body}");
                assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "app-{i}: {body}");
                assert!(retry_after.is_some(), "503 without Retry-After for app-{i}");
            }
            other => panic!("app-{i}: unexpected {other}: {body}"),
        }
    }
    assert!(accepted >= 1, "nothing accepted");
    eprintln!("{accepted} accepted, {refused} refused with 503");
    s.wait_exported();
    for (i, (status, _, _)) in answers.iter().enumerate() {
        let on_remote = s.remote_file(&format!("applications/app-{i}/releases/1/environments/dev/manifests.yaml"));
        if *status == 201 {
            assert_eq!(on_remote, Some(format!("m{i}")), "acknowledged app-{i} lost");
        } else {
            assert_eq!(on_remote, None, "refused app-{i} was written");
        }
    }
    s.assert_healthy();
}
