//! Kuberpult's paths, as kuberpult-client and curl scripts call them, with Kuberpult's status codes.

use railyard_tests::{release_parts, Server};
use serde_json::json;

fn multipart_config(s: &Server, env: &str, config: serde_json::Value) -> railyard_tests::Reply {
    let body = config.to_string();
    let parts = [("config", body.as_bytes())];
    let (content_type, bytes) = railyard_tests::multipart_body(&parts);
    s.send_raw_body("POST", &format!("/api/environments/{env}/"), &content_type, bytes)
}

#[test]
fn kuberpult_paths_work_unchanged() {
    let s = Server::start();
    // environments, with Kuberpult's EnvironmentConfig in a multipart `config` part
    multipart_config(
        &s,
        "development",
        json!({"upstream": {"latest": true}, "argocd": {"destination": {"server": "https://kubernetes.default.svc"}}}),
    )
    .assert_status(201);
    multipart_config(&s, "staging", json!({"upstream": {"environment": "development"}, "environmentGroup": "staging"}))
        .assert_status(201);
    multipart_config(
        &s,
        "production",
        json!({"upstream": {"environment": "staging"}, "environmentGroup": "production"}),
    )
    .assert_status(201);
    multipart_config(&s, "broken", json!({"upstream": "yes"})).assert_status(400);

    // POST /release: 201, the same again 200, other content 409
    let manifests = [("development", "kind: A\n"), ("staging", "kind: A\n"), ("production", "kind: A\n")];
    let parts = release_parts("shop", Some("1"), &manifests);
    let (ct, body) =
        railyard_tests::multipart_body(&parts.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect::<Vec<_>>());
    s.send_raw_body("POST", "/release", &ct, body.clone()).assert_status(201);
    s.send_raw_body("POST", "/release", &ct, body).assert_status(200);
    let other = release_parts("shop", Some("1"), &[("development", "kind: B\n")]);
    let (ct, body) =
        railyard_tests::multipart_body(&other.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect::<Vec<_>>());
    s.send_raw_body("POST", "/release", &ct, body).assert_status(409);

    // locks: environment and application PUT 200, group PUT 201, team under /api/…/lock/team/…
    let msg = json!({"message": "maintenance", "ciLink": "https://ci.example.com/1", "suggestedLifeTime": "2h"});
    s.put_json("/environments/production/locks/maint", &msg).assert_status(200);
    s.put_json("/environments/staging/applications/shop/locks/hold", &json!({"message": "hold"})).assert_status(200);
    s.put_json("/environment-groups/production/locks/freeze", &json!({"message": "freeze"})).assert_status(201);
    s.put_json("/api/environments/staging/lock/team/core/t1", &json!({"message": "team"})).assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/production/locks/maint/message").as_deref(), Some("maintenance"));
    assert_eq!(s.remote_file("environments/staging/applications/shop/locks/hold/message").as_deref(), Some("hold"));
    assert_eq!(s.remote_file("environments/production/locks/freeze/message").as_deref(), Some("freeze"));
    assert_eq!(s.remote_file("environments/staging/teams/core/locks/t1/message").as_deref(), Some("team"));
    for path in [
        "/environments/production/locks/maint",
        "/environments/staging/applications/shop/locks/hold",
        "/environment-groups/production/locks/freeze",
        "/api/environments/staging/lock/team/core/t1",
    ] {
        s.delete(path).assert_status(200);
    }
    s.wait_exported();
    assert!(!s.remote_paths().iter().any(|p| p.contains("/locks/")), "{:?}", s.remote_paths());

    // release trains on Kuberpult's paths, with team and gitTag
    let r = s.put_json("/environments/staging/releasetrain?team=core&gitTag=kp-1", &json!({}));
    r.assert_status(200);
    assert_eq!(r.json["environments"][0]["deployed"][0]["application"], "shop", "{}", r.text);
    s.put_json("/environment-groups/production/releasetrain?team=core", &json!({})).assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/production/applications/shop/version").as_deref(), Some("1"));
}

#[test]
fn rfc_5987_part_names_are_decoded_and_nameless_parts_refused() {
    let s = Server::start();
    s.create_env("review/fix-a", json!({"latest": true}), None).assert_status(201);
    // reqwest sends a name with `/` as `name*=utf-8''manifests%5Breview%2Ffix-a%5D`
    let form = reqwest::blocking::multipart::Form::new()
        .text("application", "web")
        .text("manifests[review/fix-a]", "kind: Review\n");
    let resp = s.client().post(s.at("/api/release")).multipart(form).send().expect("POST");
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap_or_default());
    s.wait_exported();
    assert_eq!(
        s.remote_file("environments/review/fix-a/applications/web/manifests/manifests.yaml").as_deref(),
        Some("kind: Review\n")
    );
    let head = s.local_head();
    let body = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nweb\r\n--XyZ--\r\n".to_vec();
    s.send_raw_body("POST", "/api/release", "multipart/form-data; boundary=XyZ", body).assert_error(
        400,
        "invalid_input",
        Some("body"),
    );
    assert_eq!(s.local_head(), head);
}
