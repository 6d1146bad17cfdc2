//! Bad input: every refusal is a 4xx with a JSON `{"error", "code"}` (and `field` where the server names one),
//! writes nothing (no new commit, no file outside the layout), and leaves the server answering.

use railyard_tests::{multipart_body, release_parts, Reply, Server};
use serde_json::json;

/// dev (latest), staging (from dev), and release 1 of `web` (team core) for both: every well-formed request in
/// these tests would write something.
fn setup() -> Server {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s.release("web", None, &[("dev", "d1"), ("staging", "s1")]).assert_status(201);
    s.wait_exported();
    s
}

/// Asserts the refusal and that nothing was written and the server lives on.
fn assert_refused(s: &Server, head: git2::Oid, r: &Reply, status: u16, code: &str, field: Option<&str>, what: &str) {
    assert_eq!(r.status, status, "{what}: unexpected status; body: {}", r.text);
    r.assert_error(status, code, field);
    assert_eq!(s.local_head(), Some(head), "{what}: a refused request made a commit");
    assert_eq!(s.wait_exported(), head, "{what}");
    s.assert_remote_layout();
    s.assert_healthy();
}

/// Invalid names as they are sent in a multipart value or part name.
fn bad_names() -> Vec<(&'static str, String)> {
    vec![
        ("traversal", "../x".to_owned()),
        ("two folders", "a/b/c".to_owned()),
        ("upper case", "Web".to_owned()),
        ("empty", String::new()),
        ("300 chars", "a".repeat(300)),
        ("NUL byte", "a\0b".to_owned()),
        ("leading dash", "-web".to_owned()),
        ("space", "we b".to_owned()),
    ]
}

/// Invalid names as URL path segments (percent-encoded; each decodes to an invalid name).
fn bad_path_segments() -> Vec<(&'static str, String)> {
    vec![
        ("traversal", "%2E%2E%2Fx".to_owned()),
        ("two folders", "a%2Fb%2Fc".to_owned()),
        ("upper case", "Web".to_owned()),
        ("300 chars", "a".repeat(300)),
        ("NUL byte", "a%00b".to_owned()),
        ("dot dot", "%2E%2E".to_owned()),
        ("space", "we%20b".to_owned()),
    ]
}

#[test]
fn invalid_application_names_in_a_release_upload_are_400_invalid_name() {
    let s = setup();
    let head = s.wait_exported();
    for (what, name) in bad_names() {
        let r = s.release(&name, None, &[("dev", "x")]);
        assert_refused(&s, head, &r, 400, "invalid_name", Some("application"), what);
    }
    // 40 characters is one too many; 39 is fine.
    let r = s.release(&"a".repeat(40), None, &[("dev", "x")]);
    assert_refused(&s, head, &r, 400, "invalid_name", Some("application"), "40 chars");
    s.release(&"a".repeat(39), None, &[("dev", "x")]).assert_status(201);
}

#[test]
fn invalid_environment_names_in_manifest_parts_are_400_naming_the_part() {
    let s = setup();
    let head = s.wait_exported();
    for (what, name) in bad_names() {
        let part = format!("manifests[{name}]");
        let r = s.upload(&[("application".to_owned(), b"web".to_vec()), (part.clone(), b"kind: x".to_vec())]);
        if name.contains('\0') {
            // A NUL byte in a part header makes the multipart body itself malformed.
            assert_refused(&s, head, &r, 400, "invalid_input", Some("body"), what);
        } else {
            assert_refused(&s, head, &r, 400, "invalid_name", Some(&part), what);
        }
    }
    // A bad env next to a good one refuses the whole upload.
    let mut parts = release_parts("web", None, &[("dev", "ok")]);
    parts.push(("manifests[../../etc]".to_owned(), b"x".to_vec()));
    let r = s.upload(&parts);
    assert_refused(&s, head, &r, 400, "invalid_name", Some("manifests[../../etc]"), "mixed");
}

#[test]
fn invalid_team_in_a_release_upload_is_400() {
    let s = setup();
    let head = s.wait_exported();
    for team in ["Core", "../x", "a/b", "t234567890123456789012"] {
        let mut parts = release_parts("web", None, &[("dev", "x")]);
        for (n, v) in &mut parts {
            if n == "team" {
                *v = team.as_bytes().to_vec();
            }
        }
        let r = s.upload(&parts);
        assert_refused(&s, head, &r, 400, "invalid_name", Some("team"), team);
    }
}

#[test]
fn invalid_environment_names_in_paths_are_400_invalid_name() {
    let s = setup();
    let head = s.wait_exported();
    let mut segments = bad_path_segments();
    segments.push(("empty", String::new()));
    for (what, env) in segments {
        for (method, target, body) in [
            ("PUT", format!("/api/environments/{env}/locks/l1"), r#"{"message":"m"}"#),
            ("DELETE", format!("/api/environments/{env}/locks/l1"), ""),
            ("GET", format!("/api/environments/{env}/locks"), ""),
            ("GET", format!("/api/environments/{env}"), ""),
            (
                "PUT",
                format!("/api/environments/{env}/applications/web/deploy"),
                r#"{"version":1,"lockBehavior":"ignore"}"#,
            ),
            ("PUT", format!("/api/environments/{env}/applications/web/locks/l1"), r#"{"message":"m"}"#),
            ("PUT", format!("/api/environments/{env}/teams/core/locks/l1"), r#"{"message":"m"}"#),
        ] {
            if env.is_empty() && target == "/api/environments/" {
                continue; // that is the list of environments
            }
            let r = s.raw_http(method, &target, Some("application/json"), body.as_bytes());
            assert_refused(
                &s,
                head,
                &r,
                400,
                "invalid_name",
                Some("environment"),
                &format!("{what}: {method} {target}"),
            );
        }
    }
}

#[test]
fn invalid_application_names_in_paths_are_400_invalid_name() {
    let s = setup();
    let head = s.wait_exported();
    let mut segments = bad_path_segments();
    segments.push(("empty", String::new()));
    segments.push(("40 chars", "a".repeat(40)));
    for (what, app) in segments {
        for (method, target, body) in [
            (
                "PUT",
                format!("/api/environments/staging/applications/{app}/deploy"),
                r#"{"version":1,"lockBehavior":"ignore"}"#,
            ),
            ("PUT", format!("/api/environments/staging/applications/{app}/locks/l1"), r#"{"message":"m"}"#),
            ("DELETE", format!("/api/environments/staging/applications/{app}/locks/l1"), ""),
            ("GET", format!("/api/environments/staging/applications/{app}/locks"), ""),
            ("GET", format!("/api/applications/{app}/releases"), ""),
            ("PUT", format!("/api/applications/{app}"), r#"{"team":"core"}"#),
        ] {
            if app.is_empty() && target == "/api/applications/" {
                continue;
            }
            let r = s.raw_http(method, &target, Some("application/json"), body.as_bytes());
            assert_refused(
                &s,
                head,
                &r,
                400,
                "invalid_name",
                Some("application"),
                &format!("{what}: {method} {target}"),
            );
        }
    }
}

#[test]
fn invalid_lock_ids_team_and_group_names_in_paths_are_400_invalid_name() {
    let s = setup();
    let head = s.wait_exported();
    let long = "l".repeat(101);
    for id in ["..", ".", "%2E%2E", "%2E%2E%2Fx", "a%2Fb%2Fc", "a%00b", "a%20b", "a~1", long.as_str()] {
        for (method, target) in [
            ("PUT", format!("/api/environments/staging/locks/{id}")),
            ("DELETE", format!("/api/environments/staging/locks/{id}")),
            ("GET", format!("/api/environments/staging/locks/{id}")),
            ("PUT", format!("/api/environments/staging/applications/web/locks/{id}")),
            ("PUT", format!("/api/environments/staging/teams/core/locks/{id}")),
            ("PUT", format!("/api/environment-groups/pre/locks/{id}")),
        ] {
            // Sent over a raw connection so that `.` and `..` are not folded away by URL normalisation.
            let r = s.raw_http(method, &target, Some("application/json"), br#"{"message":"m"}"#);
            assert_refused(&s, head, &r, 400, "invalid_name", Some("lock id"), &format!("{method} {target}"));
        }
    }
    for team in ["Core", "%2E%2E%2Fx", "a%00b", "t234567890123456789012"] {
        let target = format!("/api/environments/staging/teams/{team}/locks/l1");
        let r = s.raw_http("PUT", &target, Some("application/json"), br#"{"message":"m"}"#);
        assert_refused(&s, head, &r, 400, "invalid_name", Some("team"), &target);
    }
    for group in ["Pre", "%2E%2E%2Fx", "a%2Fb", "a%00b"] {
        let target = format!("/api/environment-groups/{group}/locks/l1");
        let r = s.raw_http("PUT", &target, Some("application/json"), br#"{"message":"m"}"#);
        assert_refused(&s, head, &r, 400, "invalid_name", Some("environment group"), &target);
    }
    // An empty lock id is no route at all.
    let r = s.raw_http("PUT", "/api/environments/staging/locks/", Some("application/json"), b"{}");
    assert_refused(&s, head, &r, 404, "no_route", None, "empty lock id");
}

#[test]
fn invalid_versions_in_a_release_upload_are_400_naming_version() {
    let s = setup();
    let head = s.wait_exported();
    for v in ["abc", "0", "-1", "1.5", "1e3", "0x10", "99999999999999999999999", "1 2"] {
        let r = s.release("web", Some(v), &[("dev", "x")]);
        assert_refused(&s, head, &r, 400, "invalid_name", Some("version"), v);
    }
}

#[test]
fn invalid_versions_in_a_deploy_are_400_naming_version() {
    let s = setup();
    let head = s.wait_exported();
    for v in [
        json!("abc"),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(null),
        json!(true),
        json!(""),
        json!([1]),
        json!({"n": 1}),
    ] {
        let r = s.put_json(
            "/api/environments/staging/applications/web/deploy",
            &json!({"version": v, "lockBehavior": "ignore"}),
        );
        assert_eq!(r.status, 400, "{v}: {}", r.text);
        assert!(r.json["code"] == "invalid_name" || r.json["code"] == "invalid_input", "{v}: {}", r.text);
        assert_refused(&s, head, &r, 400, r.json["code"].as_str().unwrap_or_default(), Some("version"), &v.to_string());
    }
}

#[test]
fn malformed_multipart_bodies_are_400() {
    let s = setup();
    let head = s.wait_exported();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("garbage", "multipart/form-data; boundary=XYZ", b"this is not multipart".to_vec()),
        ("no boundary", "multipart/form-data", b"--XYZ\r\n".to_vec()),
        ("json", "application/json", br#"{"application":"web"}"#.to_vec()),
        ("empty", "multipart/form-data; boundary=XYZ", vec![]),
        (
            "truncated",
            "multipart/form-data; boundary=XYZ",
            b"--XYZ\r\nContent-Disposition: form-data; name=\"application\"\r\n\r\nweb\r\n--XYZ\r\nContent-Disposition: form-data; name=\"manifests[dev]\"\r\n\r\nkind: half".to_vec(),
        ),
        (
            "part without headers",
            "multipart/form-data; boundary=XYZ",
            b"--XYZ\r\n\r\nweb\r\n--XYZ--\r\n".to_vec(),
        ),
    ];
    for (what, ct, body) in cases {
        let r = s.send_raw_body("POST", "/api/release", ct, body);
        assert!(r.status == 400 || r.status == 415, "{what}: {} {}", r.status, r.text);
        let code = r.json["code"].as_str().unwrap_or_default().to_owned();
        assert_refused(&s, head, &r, r.status, &code, None, what);
    }
    // Text parts that are not UTF-8.
    let r =
        s.upload(&[("application".to_owned(), vec![0xff, 0xfe, b'w']), ("manifests[dev]".to_owned(), b"x".to_vec())]);
    assert_refused(&s, head, &r, 400, "invalid_input", Some("application"), "non-UTF-8 application");
}

#[test]
fn release_without_application_or_manifests_or_with_a_part_twice_is_400() {
    let s = setup();
    let head = s.wait_exported();
    let mut no_app = release_parts("web", None, &[("dev", "x")]);
    no_app.retain(|(n, _)| n != "application");
    let r = s.upload(&no_app);
    assert_refused(&s, head, &r, 400, "invalid_input", Some("application"), "no application");

    let r = s.upload(&release_parts("web", None, &[]));
    assert_refused(&s, head, &r, 400, "invalid_input", Some("manifests"), "no manifests");

    let r = s.upload(&release_parts("web", None, &[("dev", "a"), ("dev", "b")]));
    assert_refused(&s, head, &r, 400, "invalid_input", Some("manifests[dev]"), "twice");

    // A form with no parts at all.
    let (ct, body) = multipart_body(&[]);
    let r = s.send_raw_body("POST", "/api/release", &ct, body);
    assert_refused(&s, head, &r, 400, "invalid_input", None, "no parts");
}

#[test]
fn unknown_environment_application_and_release_are_404_and_write_nothing() {
    let s = setup();
    let head = s.wait_exported();
    let cases: Vec<(&str, Reply)> = vec![
        ("release for unknown env", s.release("web", None, &[("dev", "x"), ("prod", "y")])),
        ("release for unknown folder env", s.release("web", None, &[("review/fix-a", "y")])),
        ("deploy to unknown env", s.deploy("prod", "web", 1, "ignore")),
        ("deploy unknown app", s.deploy("staging", "ghost", 1, "ignore")),
        ("deploy unknown release", s.deploy("staging", "web", 9, "ignore")),
        ("get unknown env", s.get("/api/environments/prod")),
        ("releases of unknown app", s.get("/api/applications/ghost/releases")),
        ("lock unknown env", s.put_json("/api/environments/prod/locks/l", &json!({}))),
        ("lock unknown app", s.put_json("/api/environments/staging/applications/ghost/locks/l", &json!({}))),
        ("lock unknown group", s.put_json("/api/environment-groups/ghost/locks/l", &json!({}))),
        ("get unknown lock", s.get("/api/environments/staging/locks/ghost")),
    ];
    for (what, r) in &cases {
        assert_refused(&s, head, r, 404, "not_found", None, what);
    }
    assert_eq!(cases[2].1.json["what"], "environment");
    assert_eq!(cases[3].1.json["what"], "application");
    assert_eq!(cases[4].1.json["what"], "release");
    // No route and wrong method are JSON too.
    let r = s.get("/api/nothing-here");
    assert_refused(&s, head, &r, 404, "no_route", None, "no route");
    let r = s.delete("/api/release");
    assert_refused(&s, head, &r, 405, "method_not_allowed", None, "wrong method");
}

#[test]
fn malformed_json_bodies_are_400_naming_the_body() {
    let s = setup();
    let head = s.wait_exported();
    let deploy = "/api/environments/staging/applications/web/deploy";
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("PUT", deploy, r#"{"version":"#, "truncated"),
        ("PUT", deploy, "not json", "not json"),
        ("PUT", deploy, r#""1""#, "a string"),
        ("PUT", deploy, r#"{"lockBehavior":"ignore"}"#, "no version"),
        ("PUT", deploy, r#"{"version":1,"lockBehavior":"maybe"}"#, "bad lockBehavior"),
        ("PUT", deploy, r#"{"version":1,"extra":true}"#, "unknown member"),
        ("PUT", "/api/environments/staging/locks/l1", r#"{"message":"#, "lock truncated"),
        ("PUT", "/api/environments/staging/locks/l1", r#"{"message":5}"#, "lock message not text"),
        ("PUT", "/api/environments/staging/locks/l1", r#"{"msg":"x"}"#, "lock unknown member"),
        ("PUT", "/api/environment-groups/pre/locks/l1", "[", "group lock truncated"),
        ("POST", "/api/environments", r#"{"name":"qa","upstream":"#, "env truncated"),
        ("POST", "/api/environments", r#"{"name":"qa","tier":"heaven"}"#, "env bad tier"),
        ("POST", "/api/environments", r#"{"name":"qa","upstream":{"environment":"../x"}}"#, "env bad upstream"),
        ("PUT", "/api/applications/web", r#"{"team":"#, "app truncated"),
    ];
    for (method, path, body, what) in cases {
        let r = s.send_raw_body(method, path, "application/json", body.as_bytes().to_vec());
        assert_refused(&s, head, &r, 400, "invalid_input", None, what);
        assert!(r.json["field"] == "body" || r.json["field"] == "version", "{what}: {}", r.text);
    }
    // Not UTF-8.
    let r = s.send_raw_body("PUT", deploy, "application/json", vec![b'{', 0xff, b'}']);
    assert_refused(&s, head, &r, 400, "invalid_input", Some("body"), "not UTF-8");
    // JSON without a JSON content type.
    let r = s.send_raw_body("PUT", deploy, "text/plain", br#"{"version":1}"#.to_vec());
    assert!(r.status == 400 || r.status == 415, "{}", r.text);
    let code = r.json["code"].as_str().unwrap_or_default().to_owned();
    assert_refused(&s, head, &r, r.status, &code, None, "text/plain");
}

#[test]
fn invalid_environment_creation_is_400_or_409_and_writes_nothing() {
    let s = setup();
    let head = s.wait_exported();
    for (what, name) in bad_names() {
        let r = s.post_json("/api/environments", &json!({"name": name}));
        assert_refused(&s, head, &r, 400, "invalid_name", Some("environment"), what);
    }
    let r = s.post_json("/api/environments", &json!({"name": "qa", "upstream": {"environment": "qa"}}));
    assert_refused(&s, head, &r, 400, "invalid_input", Some("upstream"), "own upstream");
    let r = s.post_json("/api/environments", &json!({"name": "qa", "upstream": {"environment": "nope"}}));
    assert_refused(&s, head, &r, 404, "not_found", None, "unknown upstream");
    let r =
        s.post_json("/api/environments", &json!({"name": "qa", "upstream": {"latest": true, "environment": "dev"}}));
    assert_refused(&s, head, &r, 400, "invalid_input", Some("upstream"), "both upstreams");
    let r = s.post_json("/api/environments", &json!({"name": "dev"}));
    assert_refused(&s, head, &r, 409, "environment_exists", None, "exists");
    let r = s.post_json("/api/environments", &json!({"name": "dev/x"}));
    assert_refused(&s, head, &r, 409, "environment_exists", None, "inside an env");
}

#[test]
fn creating_an_existing_environment_is_409_with_a_readable_message() {
    let s = setup();
    let r = s.post_json("/api/environments", &json!({"name": "dev"}));
    r.assert_error(409, "environment_exists", None);
    let msg = r.json["error"].as_str().unwrap_or_default();
    assert!(msg.contains("dev"), "{msg}");
    assert!(!msg.contains("EnvName("), "Rust debug output in the message: {msg}");
    let r = s.post_json("/api/environments", &json!({"name": "dev/x"}));
    r.assert_error(409, "environment_exists", None);
    let msg = r.json["error"].as_str().unwrap_or_default();
    assert!(!msg.contains("EnvName("), "Rust debug output in the message: {msg}");
}

#[test]
fn lock_id_that_git_refuses_as_a_path_is_400_not_500() {
    let s = setup();
    let head = s.wait_exported();
    for id in [".git", ".GIT", ".Git", ".git."] {
        for target in [
            format!("/api/environments/staging/locks/{id}"),
            format!("/api/environments/staging/applications/web/locks/{id}"),
            format!("/api/environments/staging/teams/core/locks/{id}"),
        ] {
            let r = s.raw_http("PUT", &target, Some("application/json"), br#"{"message":"m"}"#);
            assert_refused(&s, head, &r, 400, "invalid_name", Some("lock id"), &target);
        }
    }
}

#[test]
fn body_over_the_limit_is_413_json_and_writes_nothing() {
    let s = Server::start_with(&["--max-body-bytes", "1000"]);
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s.release("web", None, &[("dev", "d"), ("staging", "s")]).assert_status(201);
    let head = s.wait_exported();
    let big = "x".repeat(2000);

    let r = s.release("web", None, &[("dev", &big)]);
    assert_refused(&s, head, &r, 413, "body_too_large", None, "one big manifest");
    // Many small parts that add up to more than the limit.
    let small = "y".repeat(150);
    let many: Vec<(&str, &str)> = vec![("dev", small.as_str()), ("staging", small.as_str())];
    let mut parts = release_parts("web", None, &many);
    for i in 0..10 {
        parts.push((format!("signature{i}"), small.as_bytes().to_vec()));
    }
    let r = s.upload(&parts);
    assert_refused(&s, head, &r, 413, "body_too_large", None, "many parts");

    let r = s.put_json("/api/environments/staging/locks/l1", &json!({"message": big}));
    assert_refused(&s, head, &r, 413, "body_too_large", None, "lock");
    let r = s.put_json("/api/environment-groups/pre/locks/l1", &json!({"message": big}));
    assert_refused(&s, head, &r, 413, "body_too_large", None, "group lock");
    let r = s.put_json(
        "/api/environments/staging/applications/web/deploy",
        &json!({"version": 1, "lockBehavior": "fail", "pad": big}),
    );
    assert_refused(&s, head, &r, 413, "body_too_large", None, "deploy");
    let r = s.post_json("/api/environments", &json!({"name": "qa", "external_url": big}));
    assert_refused(&s, head, &r, 413, "body_too_large", None, "env");

    // Under the limit still works.
    let r = s.put_json("/api/environments/staging/locks/l1", &json!({"message": "m".repeat(500)}));
    r.assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/staging/locks/l1/message").map(|m| m.len()), Some(500));
}

#[test]
fn release_without_version_after_the_highest_possible_version_is_400_not_a_wrap() {
    let s = setup();
    let max = u64::MAX.to_string();
    s.release("web", Some(&max), &[("dev", "max")]).assert_status(201);
    let head = s.wait_exported();
    assert_eq!(
        s.remote_file(&format!("applications/web/releases/{max}/environments/dev/manifests.yaml")).as_deref(),
        Some("max")
    );
    let r = s.release("web", None, &[("dev", "next")]);
    assert_refused(&s, head, &r, 400, "invalid_input", Some("version"), "after u64::MAX");
}
