//! Authentication and roles (`--auth-tokens`): 401 without a valid token (reads too), 403 outside a role's actions,
//! environments and teams, the caller as commit author and `created_by_*`.

use railyard_tests::{release_parts, Reply, Server};
use serde_json::{json, Value};

fn sha256_hex(token: &str) -> String {
    // sha256 via the system's coreutils, so the test does not share code with the server.
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(token.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8(out.stdout).expect("hex").split_whitespace().next().expect("digest").to_owned()
}

const PEOPLE: &[(&str, &str, &str)] = &[
    ("admin-token", "Root", "- action: admin"),
    ("deploy-token", "Dee", "- {action: deploy, environments: [\"staging-*\"], teams: [\"pay\"]}"),
    ("lock-token", "Lou", "- {action: lock, environments: [prod]}"),
    ("release-token", "Rita", "- {action: release, teams: [pay]}"),
    ("train-token", "Tess", "- {action: train, environments: [prod], teams: [pay]}"),
    ("env-token", "Eve", "- {action: environment, environments: [\"review/*\"]}"),
    (
        "flow-token",
        "Flo",
        "- {action: flow}\n    - {action: lock, environments: [prod]}\n    - {action: train, environments: [prod]}",
    ),
    ("flowonly-token", "Flynn", "- {action: flow}"),
    ("rollback-token", "Rob", "- {action: deploy, environments: [dev]}\n    - {action: lock, environments: [dev]}"),
    ("read-token", "Reed", ""),
];

fn start() -> Server {
    let dir = tempfile::tempdir().expect("dir");
    let mut yaml = String::new();
    for (token, name, roles) in PEOPLE {
        yaml.push_str(&format!(
            "- token_sha256: {}\n  name: {name}\n  email: {}@example.com\n  roles:\n    {}\n",
            sha256_hex(token),
            name.to_lowercase(),
            if roles.is_empty() { "[]" } else { roles }
        ));
    }
    let file = dir.path().join("tokens.yaml");
    std::fs::write(&file, yaml.replace("roles:\n    []", "roles: []")).expect("tokens");
    let s = Server::start_in(dir, &["--auth-tokens", file.to_str().expect("path")]);
    // setup as admin
    call(&s, "POST", "/api/environments", "admin-token", Some(json!({"name": "dev", "upstream": {"latest": true}})))
        .assert_status(201);
    for (name, up) in [("staging-eu", "dev"), ("prod", "staging-eu")] {
        call(
            &s,
            "POST",
            "/api/environments",
            "admin-token",
            Some(json!({"name": name, "upstream": {"environment": up}})),
        )
        .assert_status(201);
    }
    upload(&s, "admin-token", "web", "pay").assert_status(201);
    upload(&s, "admin-token", "api", "core").assert_status(201);
    s
}

fn call(s: &Server, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
    let mut req = s.client().request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), s.at(path));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Reply::from_response(req.send().expect("request"))
}

fn upload(s: &Server, token: &str, app: &str, team: &str) -> Reply {
    let manifests = [("dev", "kind: A\n"), ("staging-eu", "kind: A\n"), ("prod", "kind: A\n")];
    let mut parts = release_parts(app, None, &manifests);
    for p in &mut parts {
        if p.0 == "team" {
            p.1 = team.as_bytes().to_vec();
        }
    }
    let parts: Vec<(&str, &[u8])> = parts.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let (ct, body) = railyard_tests::multipart_body(&parts);
    Reply::from_response(
        s.client()
            .post(s.at("/api/release"))
            .bearer_auth(token)
            .header("content-type", ct)
            .body(body)
            .send()
            .expect("POST"),
    )
}

#[test]
fn without_a_valid_token_everything_but_the_probes_is_401() {
    let s = start();
    let r = call(&s, "GET", "/api/environments", "", None);
    r.assert_error(401, "unauthorized", None);
    let raw = s.client().get(s.at("/api/environments")).send().expect("GET");
    assert_eq!(raw.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    call(&s, "GET", "/api/environments", "wrong", None).assert_status(401);
    call(&s, "PUT", "/api/environments/prod/locks/x", "", Some(json!({}))).assert_status(401);
    let basic = s
        .client()
        .get(s.at("/api/environments"))
        .header("authorization", "Basic YWRtaW4tdG9rZW4=")
        .send()
        .expect("GET");
    assert_eq!(basic.status().as_u16(), 401);
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(s.client().get(s.at(probe)).send().expect("probe").status().as_u16(), 200, "{probe}");
    }
    // GitLab's header works too; a token with no roles may read and nothing else
    let gl = s
        .client()
        .get(s.at("/api/v4/projects/1/environments"))
        .header("PRIVATE-TOKEN", "read-token")
        .send()
        .expect("GET");
    assert_eq!(gl.status().as_u16(), 200);
    // the compatibility surfaces answer 401 in their vendors' shapes
    let r = call(&s, "GET", "/api/v4/projects/1/environments", "", None);
    r.assert_status(401);
    assert_eq!(r.json, json!({"message": "401 Unauthorized"}));
    let r = call(&s, "GET", "/v1/projects/railyard/pipelines/main/release-flows/Production", "wrong", None);
    r.assert_status(401);
    assert_eq!(r.json["error"]["status"], 401, "{}", r.text);
    call(&s, "GET", "/api/environments/prod", "read-token", None).assert_status(200);
    call(&s, "PUT", "/api/environments/prod/locks/x", "read-token", Some(json!({}))).assert_error(
        403,
        "forbidden",
        None,
    );
}

#[test]
fn roles_allow_their_action_on_their_environments_and_teams_only() {
    let s = start();
    let head = s.local_head();
    // deploy: staging-* for team pay
    call(
        &s,
        "PUT",
        "/api/environments/staging-eu/applications/web/deploy",
        "deploy-token",
        Some(json!({"version": 1})),
    )
    .assert_status(200);
    call(&s, "PUT", "/api/environments/prod/applications/web/deploy", "deploy-token", Some(json!({"version": 1})))
        .assert_status(403);
    call(
        &s,
        "PUT",
        "/api/environments/staging-eu/applications/api/deploy",
        "deploy-token",
        Some(json!({"version": 1})),
    )
    .assert_status(403);
    call(&s, "PUT", "/api/environments/staging-eu/locks/x", "deploy-token", Some(json!({}))).assert_status(403);
    // lock: prod only (any team)
    call(&s, "PUT", "/api/environments/prod/locks/freeze", "lock-token", Some(json!({"message": "m"})))
        .assert_status(200);
    call(&s, "PUT", "/api/environments/prod/applications/api/locks/a", "lock-token", Some(json!({})))
        .assert_status(200);
    call(&s, "PUT", "/api/environments/dev/locks/freeze", "lock-token", Some(json!({}))).assert_status(403);
    call(&s, "DELETE", "/api/environments/prod/locks/freeze", "lock-token", None).assert_status(200);
    // release: team pay
    upload(&s, "release-token", "web", "pay").assert_status(201);
    upload(&s, "release-token", "api", "core").assert_status(403);
    upload(&s, "release-token", "newapp", "core").assert_status(403);
    // train: prod for team pay only; a train of every team needs teams "*"
    call(&s, "PUT", "/api/environments/prod/releasetrain?team=pay", "train-token", Some(json!({}))).assert_status(200);
    call(&s, "PUT", "/api/environments/prod/releasetrain", "train-token", Some(json!({}))).assert_status(403);
    call(&s, "PUT", "/api/environments/prod/releasetrain?team=core", "train-token", Some(json!({}))).assert_status(403);
    call(&s, "PUT", "/api/environments/staging-eu/releasetrain?team=pay", "train-token", Some(json!({})))
        .assert_status(403);
    // environment: review/* only
    call(
        &s,
        "POST",
        "/api/environments",
        "env-token",
        Some(json!({"name": "review/fix-a", "upstream": {"environment": "dev"}})),
    )
    .assert_status(201);
    call(&s, "POST", "/api/environments", "env-token", Some(json!({"name": "qa"}))).assert_status(403);
    call(&s, "POST", "/api/environments/prod/stop", "env-token", None).assert_status(403);
    call(&s, "POST", "/api/environments/review%2Ffix-a/stop", "env-token", None).assert_status(200);
    // a 403 writes nothing: count the commits the allowed requests made
    assert_ne!(s.local_head(), head);
    let repo = git2::Repository::open_bare(&s.repo_dir).expect("repo");
    let mut walk = repo.revwalk().expect("walk");
    walk.push_ref("refs/heads/main").expect("head");
    assert_eq!(walk.count(), 5 + 8, "5 setup commits and 8 allowed writes; no refused one wrote");
}

#[test]
fn a_flow_run_needs_the_flow_role_and_every_steps_own_role() {
    let s = start();
    let template = "steps:\n  - ref: l\n    kind: lock\n    environment: prod\n    lockId: f\n  - ref: t\n    kind: release-train\n    environment: prod\n  - ref: u\n    kind: unlock\n    environment: prod\n    lockId: f\n";
    let put = |token: &str| {
        Reply::from_response(
            s.client()
                .put(s.at("/api/release-flows/weekly"))
                .bearer_auth(token)
                .header("content-type", "application/yaml")
                .body(template)
                .send()
                .expect("PUT"),
        )
    };
    put("lock-token").assert_status(403);
    put("flow-token").assert_status(201);
    call(&s, "POST", "/api/release-flows/weekly/runs", "flow-token", Some(json!({}))).assert_status(201);
    // the train-token may train prod for team pay, but has no flow role
    call(&s, "POST", "/api/release-flows/weekly/runs", "train-token", Some(json!({}))).assert_status(403);
    // nor the release-token (no flow role); and a flow role alone does not lock or train prod
    call(&s, "POST", "/api/release-flows/weekly/runs", "release-token", Some(json!({}))).assert_status(403);
    let head = s.local_head();
    let r = call(&s, "POST", "/api/release-flows/weekly/runs", "flowonly-token", Some(json!({})));
    r.assert_error(403, "forbidden", None);
    assert!(r.text.contains("lock on prod"), "{}", r.text);
    assert_eq!(s.local_head(), head, "not even a run record");
}

#[test]
fn the_caller_is_the_commit_author_and_created_by() {
    let s = start();
    let r = call(&s, "PUT", "/api/environments/prod/locks/freeze", "lock-token", Some(json!({"message": "hold"})));
    r.assert_status(200);
    let commit = r.commit().expect("commit");
    s.wait_exported();
    let repo = git2::Repository::open_bare(&s.remote_dir).expect("remote");
    let c = repo.find_commit(git2::Oid::from_str(&commit).expect("oid")).expect("commit");
    assert_eq!((c.author().name().ok(), c.author().email().ok()), (Some("Lou"), Some("lou@example.com")));
    assert_eq!(s.remote_file("environments/prod/locks/freeze/created_by_name").as_deref(), Some("Lou"));
    assert_eq!(s.remote_file("environments/prod/locks/freeze/created_by_email").as_deref(), Some("lou@example.com"));
    let lock = call(&s, "GET", "/api/environments/prod/locks/freeze", "read-token", None);
    assert_eq!(lock.json["created_by_name"], "Lou", "{}", lock.text);
}

#[test]
fn lifecycle_requests_need_the_roles_kuberpult_asks_for() {
    let s = start();
    upload(&s, "admin-token", "web", "pay").assert_status(201);
    call(&s, "PUT", "/api/environments/staging-eu/releasetrain", "admin-token", Some(json!({}))).assert_status(200);
    // rollback: deploy and lock on the environment and the app's team
    let rollback = |env: &str, token: &str| {
        call(
            &s,
            "POST",
            &format!("/api/environments/{env}/applications/web/rollback"),
            token,
            Some(json!({"message": "m"})),
        )
    };
    let r = rollback("staging-eu", "deploy-token");
    r.assert_error(403, "forbidden", None);
    assert!(
        r.json["error"].as_str().unwrap_or_default().contains("lock on staging-eu (rollback of web)"),
        "{}",
        r.text
    );
    rollback("dev", "lock-token").assert_error(403, "forbidden", None);
    let r = rollback("dev", "rollback-token");
    r.assert_status(200);
    let lock = call(&s, "GET", "/api/environments/dev/applications/web/locks/rollback-1", "read-token", None);
    assert_eq!(lock.json["created_by_name"], "Rob", "{}", lock.text);
    // remove from an environment: deploy there for the team
    let remove = |env: &str, app: &str, token: &str| {
        call(&s, "DELETE", &format!("/api/environments/{env}/applications/{app}"), token, None)
    };
    remove("staging-eu", "api", "deploy-token").assert_error(403, "forbidden", None);
    remove("staging-eu", "web", "lock-token").assert_error(403, "forbidden", None);
    remove("staging-eu", "web", "deploy-token").assert_status(200);
    // undeploy and delete: release on the app's team
    call(&s, "POST", "/api/applications/web/undeploy", "deploy-token", None).assert_error(403, "forbidden", None);
    call(&s, "POST", "/api/applications/api/undeploy", "release-token", None).assert_error(403, "forbidden", None);
    call(&s, "POST", "/api/applications/web/undeploy", "release-token", None).assert_status(201);
    call(&s, "DELETE", "/api/applications/web", "deploy-token", None).assert_error(403, "forbidden", None);
    // allowed, and refused on the state: dev is held by the rollback's lock
    call(&s, "DELETE", "/api/applications/web", "release-token", None).assert_error(409, "application_in_use", None);
}
