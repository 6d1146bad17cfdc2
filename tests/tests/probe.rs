//! Every write operation of every surface (the native API as `/api/openapi.json` lists it, Kuberpult's paths,
//! GitLab's `/api/v4`, Northflank's `/v1`) sent with a valid body by callers who may not make it: no token and an
//! invalid token get 401, a token without roles and tokens whose roles do not cover the request get 403, and
//! none of them leaves anything behind: refs and object counts of the local repo and the remote are unchanged.

use std::collections::BTreeSet;
use std::time::Duration;

use railyard_tests::{call, object_count, refs_snapshot, release_parts, upload_as, write_tokens, Reply, Server};
use serde_json::{json, Value};

const GITLAB: &str = include_str!("../../crates/api/src/routes/compat/gitlab.rs");
const NORTHFLANK: &str = include_str!("../../crates/api/src/routes/compat/northflank.rs");
const KUBERPULT: &str = include_str!("../../crates/api/src/routes/compat/kuberpult.rs");

const ADMIN: &str = "probe-admin";
const NO_ROLES: &str = "probe-no-roles";
const NO_ROLES_2: &str = "probe-no-roles-2";
const LOCK_DEV: &str = "probe-lock-dev";
const RELEASE_PAYMENTS: &str = "probe-release-payments";
const FLOW_ONLY: &str = "probe-flow-only";
const LOCK_PAYMENTS: &str = "probe-lock-payments";

const PEOPLE: &[(&str, &str, &str)] = &[
    (ADMIN, "Root", "[{action: admin}]"),
    (NO_ROLES, "Nora", "[]"),
    (NO_ROLES_2, "Noel", "[]"),
    (LOCK_DEV, "Lod", "[{action: lock, environments: [dev]}]"),
    (RELEASE_PAYMENTS, "Pam", "[{action: release, teams: [payments]}]"),
    (FLOW_ONLY, "Flynn", "[{action: flow}]"),
    (LOCK_PAYMENTS, "Lip", "[{action: lock, environments: [\"*\"], teams: [payments]}]"),
];

const FLOW: &str = "steps:
  - ref: freeze
    kind: lock
    environment: dev
    lockId: flow-freeze
    message: frozen by the flow
";

enum Body {
    None,
    Json(Value),
    Yaml(&'static str),
    Multipart(Vec<(String, Vec<u8>)>),
}

/// One request: the route it exercises (method and path template), the path sent, the body.
struct Req {
    method: &'static str,
    template: &'static str,
    path: String,
    body: Body,
}

fn req(method: &'static str, template: &'static str, path: impl Into<String>, body: Body) -> Req {
    Req { method, template, path: path.into(), body }
}

fn send(s: &Server, r: &Req, token: Option<&str>) -> Reply {
    match &r.body {
        Body::None => call(s, r.method, &r.path, token, None),
        Body::Json(v) => call(s, r.method, &r.path, token, Some(v)),
        Body::Multipart(parts) => upload_as(s, &r.path, token, parts),
        Body::Yaml(text) => {
            let m = reqwest::Method::from_bytes(r.method.as_bytes()).expect("method");
            let mut b = s.client().request(m, s.at(&r.path)).header("content-type", "application/yaml").body(*text);
            if let Some(t) = token {
                b = b.bearer_auth(t);
            }
            Reply::from_response(b.send().expect("request"))
        }
    }
}

/// Manifest content no other request sent: a blob written for it is a new object.
fn fresh_yaml() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!("kind: Probe\nn: {}\n", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// The parts of an upload of web with `team` (None: no team part).
fn web_upload(team: Option<&str>) -> Body {
    let yaml = fresh_yaml();
    let mut p = release_parts("web", None, &[("dev", &yaml), ("prod", &yaml)]);
    match team {
        Some(t) => p.iter_mut().filter(|(n, _)| n == "team").for_each(|(_, v)| *v = t.as_bytes().to_vec()),
        None => p.retain(|(n, _)| n != "team"),
    }
    Body::Multipart(p)
}

fn lock_body() -> Body {
    Body::Json(json!({"message": "probe"}))
}

fn a_month_ago() -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    t.replace_nanosecond(0)
        .expect("whole seconds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time")
}

/// One valid request for every write route; `gl_env` is the id of the env the GitLab surface names. Stops and
/// deletes come last, so that the table can be replayed in order by the admin.
fn every_write(gl_env: u64) -> Vec<Req> {
    use Body::{Json, Multipart, Yaml};
    let before = a_month_ago();
    let rc = json!({"repo": "acme/web", "commit": "0123abc", "manifests": {"dev": fresh_yaml(), "prod": fresh_yaml()}});
    let flow_json = json!({"steps": [{"ref": "freeze", "kind": "lock", "environment": "dev", "lockId": "flow-freeze",
        "message": "frozen by the flow"}]});
    let gl = |rest: &str| format!("/api/v4/projects/1/environments{rest}");
    vec![
        // native
        req("POST", "/api/release", "/api/release", web_upload(Some("core"))),
        req(
            "PUT",
            "/api/applications/{app}",
            "/api/applications/web",
            Json(json!({"team": "core", "repository": "acme/web"})),
        ),
        req(
            "POST",
            "/api/environments",
            "/api/environments",
            Json(json!({"name": "qa", "upstream": {"environment": "dev"}})),
        ),
        req(
            "POST",
            "/api/environments/stop_stale",
            format!("/api/environments/stop_stale?before={before}"),
            Body::None,
        ),
        req("DELETE", "/api/environments/review_apps", "/api/environments/review_apps?dry_run=false", Body::None),
        req("PUT", "/api/environments/{env}", "/api/environments/dev", Json(json!({"tier": "development"}))),
        req(
            "PUT",
            "/api/environments/{env}/applications/{app}/deploy",
            "/api/environments/dev/applications/web/deploy",
            Json(json!({"version": 1, "lockBehavior": "fail"})),
        ),
        req("PUT", "/api/environments/{env}/locks/{lock}", "/api/environments/dev/locks/probe", lock_body()),
        req("DELETE", "/api/environments/{env}/locks/{lock}", "/api/environments/dev/locks/probe", Body::None),
        req(
            "PUT",
            "/api/environments/{env}/applications/{app}/locks/{lock}",
            "/api/environments/dev/applications/web/locks/probe",
            lock_body(),
        ),
        req(
            "DELETE",
            "/api/environments/{env}/applications/{app}/locks/{lock}",
            "/api/environments/dev/applications/web/locks/probe",
            Body::None,
        ),
        req(
            "PUT",
            "/api/environments/{env}/teams/{team}/locks/{lock}",
            "/api/environments/dev/teams/core/locks/probe",
            lock_body(),
        ),
        req(
            "DELETE",
            "/api/environments/{env}/teams/{team}/locks/{lock}",
            "/api/environments/dev/teams/core/locks/probe",
            Body::None,
        ),
        req(
            "PUT",
            "/api/environment-groups/{group}/locks/{lock}",
            "/api/environment-groups/prodg/locks/probe",
            lock_body(),
        ),
        req(
            "DELETE",
            "/api/environment-groups/{group}/locks/{lock}",
            "/api/environment-groups/prodg/locks/probe",
            Body::None,
        ),
        req("PUT", "/api/release-flows/{flow}", "/api/release-flows/pipe%2Fprod", Yaml(FLOW)),
        req(
            "POST",
            "/api/release-flows/{flow}/runs",
            "/api/release-flows/pipe%2Fprod/runs",
            Json(json!({"name": "probe run"})),
        ),
        req("POST", "/api/releases/{project}/releases/{rc}", "/api/releases/web/releases/9.0.0-rc1", Json(rc)),
        req(
            "POST",
            "/api/releases/{project}/environments/{env}/deployments",
            "/api/releases/web/environments/dev/deployments",
            Json(json!({"release_candidate_version": "1.0.0-rc1"})),
        ),
        req(
            "PATCH",
            "/api/releases/{project}/environments/{env}/deployments",
            "/api/releases/web/environments/dev/deployments",
            Json(json!({"release_candidate_version": "1.0.0-rc1", "status": "success"})),
        ),
        req("PUT", "/api/environments/{env}/releasetrain", "/api/environments/prod/releasetrain", Body::None),
        req(
            "PUT",
            "/api/environment-groups/{group}/releasetrain",
            "/api/environment-groups/prodg/releasetrain",
            Body::None,
        ),
        // Kuberpult
        req("POST", "/release", "/release", web_upload(Some("core"))),
        req("PUT", "/environments/{env}/locks/{lock}", "/environments/dev/locks/probe", lock_body()),
        req("DELETE", "/environments/{env}/locks/{lock}", "/environments/dev/locks/probe", Body::None),
        req(
            "PUT",
            "/environments/{env}/applications/{app}/locks/{lock}",
            "/environments/dev/applications/web/locks/probe",
            lock_body(),
        ),
        req(
            "DELETE",
            "/environments/{env}/applications/{app}/locks/{lock}",
            "/environments/dev/applications/web/locks/probe",
            Body::None,
        ),
        req("PUT", "/environment-groups/{group}/locks/{lock}", "/environment-groups/prodg/locks/probe", lock_body()),
        req("DELETE", "/environment-groups/{group}/locks/{lock}", "/environment-groups/prodg/locks/probe", Body::None),
        req(
            "PUT",
            "/api/environments/{env}/lock/team/{team}/{lock}",
            "/api/environments/dev/lock/team/core/probe",
            lock_body(),
        ),
        req(
            "DELETE",
            "/api/environments/{env}/lock/team/{team}/{lock}",
            "/api/environments/dev/lock/team/core/probe",
            Body::None,
        ),
        req("PUT", "/environments/{env}/releasetrain", "/environments/prod/releasetrain?team=core", Body::None),
        req("PUT", "/environment-groups/{group}/releasetrain", "/environment-groups/prodg/releasetrain", Body::None),
        req(
            "POST",
            "/api/environments/{env}/",
            "/api/environments/qa2/",
            Multipart(vec![("config".into(), br#"{"upstream": {"environment": "dev"}}"#.to_vec())]),
        ),
        // GitLab
        req("POST", "/api/v4/projects/{project}/environments", gl(""), Json(json!({"name": "qa3", "tier": "testing"}))),
        req(
            "POST",
            "/api/v4/projects/{project}/environments/stop_stale",
            gl(&format!("/stop_stale?before={before}")),
            Body::None,
        ),
        req(
            "DELETE",
            "/api/v4/projects/{project}/environments/review_apps",
            gl("/review_apps?dry_run=false"),
            Body::None,
        ),
        req(
            "PUT",
            "/api/v4/projects/{project}/environments/{env}",
            gl(&format!("/{gl_env}")),
            Json(json!({"tier": "production"})),
        ),
        // Northflank
        req(
            "PUT",
            "/v1/projects/{project}/pipelines/{pipeline}/release-flows/{stage}",
            "/v1/projects/1/pipelines/pipe/release-flows/prod",
            Json(flow_json.clone()),
        ),
        req(
            "POST",
            "/v1/projects/{project}/pipelines/{pipeline}/release-flows/{stage}",
            "/v1/projects/1/pipelines/pipe/release-flows/Prod",
            Json(flow_json.clone()),
        ),
        req(
            "POST",
            "/v1/projects/{project}/pipelines/{pipeline}/release-flows/{stage}/runs",
            "/v1/projects/1/pipelines/pipe/release-flows/prod/runs",
            Json(json!({"name": "probe nf run"})),
        ),
        req(
            "POST",
            "/v1/projects/{project}/pipelines/{pipeline}/release-flows/{stage}/runs/{run}/abort",
            "/v1/projects/1/pipelines/pipe/release-flows/prod/runs/1/abort",
            Body::None,
        ),
        req(
            "PUT",
            "/v1/teams/{team}/projects/{project}/pipelines/{pipeline}/release-flows/{stage}",
            "/v1/teams/t1/projects/1/pipelines/pipe/release-flows/prod",
            Json(flow_json.clone()),
        ),
        req(
            "POST",
            "/v1/teams/{team}/projects/{project}/pipelines/{pipeline}/release-flows/{stage}",
            "/v1/teams/t1/projects/1/pipelines/pipe/release-flows/Prod",
            Json(flow_json),
        ),
        req(
            "POST",
            "/v1/teams/{team}/projects/{project}/pipelines/{pipeline}/release-flows/{stage}/runs",
            "/v1/teams/t1/projects/1/pipelines/pipe/release-flows/prod/runs",
            Json(json!({"name": "probe nf team run"})),
        ),
        req(
            "POST",
            "/v1/teams/{team}/projects/{project}/pipelines/{pipeline}/release-flows/{stage}/runs/{run}/abort",
            "/v1/teams/t1/projects/1/pipelines/pipe/release-flows/prod/runs/1/abort",
            Body::None,
        ),
        // the release lifecycle: rollback and removal from dev, then undeploy and delete (409 is fine for the admin)
        req(
            "POST",
            "/api/environments/{env}/applications/{app}/rollback",
            "/api/environments/dev/applications/web/rollback",
            Json(json!({"message": "probe rollback"})),
        ),
        req(
            "DELETE",
            "/api/environments/{env}/applications/{app}",
            "/api/environments/dev/applications/web",
            Body::None,
        ),
        req("POST", "/api/applications/{app}/undeploy", "/api/applications/web/undeploy", Body::None),
        req("DELETE", "/api/applications/{app}", "/api/applications/web", Body::None),
        // last: stop and delete (the env must be stopped before it can go)
        req("POST", "/api/environments/{env}/stop", "/api/environments/dev/stop", Body::None),
        req("DELETE", "/api/environments/{env}", "/api/environments/dev", Body::None),
        req("POST", "/api/v4/projects/{project}/environments/{env}/stop", gl(&format!("/{gl_env}/stop")), Body::None),
        req("DELETE", "/api/v4/projects/{project}/environments/{env}", gl(&format!("/{gl_env}")), Body::None),
    ]
}

/// Requests a role does not cover, with the token that holds that role.
fn outside_their_roles() -> Vec<(&'static str, Req)> {
    use Body::Json;
    let l = lock_body;
    let mut out = Vec::new();
    for (m, path) in [
        ("PUT", "/api/environments/prod/locks/probe"),
        ("DELETE", "/api/environments/prod/locks/probe"),
        ("PUT", "/api/environments/prod/applications/web/locks/probe"),
        ("DELETE", "/api/environments/prod/applications/web/locks/probe"),
        ("PUT", "/api/environments/prod/teams/core/locks/probe"),
        ("DELETE", "/api/environments/prod/teams/core/locks/probe"),
        ("PUT", "/api/environment-groups/prodg/locks/probe"),
        ("DELETE", "/api/environment-groups/prodg/locks/probe"),
        ("PUT", "/environments/prod/locks/probe"),
        ("PUT", "/environments/prod/applications/web/locks/probe"),
        ("PUT", "/environment-groups/prodg/locks/probe"),
        ("PUT", "/api/environments/prod/lock/team/core/probe"),
    ] {
        let body = if m == "PUT" { l() } else { Body::None };
        out.push((LOCK_DEV, req(m, "lock outside dev", path, body)));
    }
    for team in [Some("payments"), None, Some("core")] {
        out.push((RELEASE_PAYMENTS, req("POST", "upload of core's web", "/api/release", web_upload(team))));
        out.push((RELEASE_PAYMENTS, req("POST", "Kuberpult upload of core's web", "/release", web_upload(team))));
    }
    let rc = json!({"repo": "acme/web", "commit": "0123abc", "manifests": {"dev": fresh_yaml()}});
    out.push((
        RELEASE_PAYMENTS,
        req("POST", "candidate of core's web", "/api/releases/web/releases/9.0.0-rc1", Json(rc)),
    ));
    out.push((RELEASE_PAYMENTS, req("POST", "undeploy of core's web", "/api/applications/web/undeploy", Body::None)));
    out.push((RELEASE_PAYMENTS, req("DELETE", "delete of core's web", "/api/applications/web", Body::None)));
    let rollback = json!({"message": "m"});
    out.push((
        LOCK_DEV,
        req("POST", "rollback without deploy", "/api/environments/dev/applications/web/rollback", Json(rollback)),
    ));
    out.push((LOCK_DEV, req("DELETE", "removal without deploy", "/api/environments/dev/applications/web", Body::None)));
    for body in [json!({"team": "payments"}), json!({"repository": "acme/web"})] {
        out.push((RELEASE_PAYMENTS, req("PUT", "core's web", "/api/applications/web", Json(body))));
    }
    let flow_only: Vec<Req> = vec![
        req("PUT", "lock", "/api/environments/dev/locks/probe", l()),
        req("DELETE", "lock", "/api/environments/dev/locks/probe", Body::None),
        req("PUT", "lock", "/environments/dev/locks/probe", l()),
        req("PUT", "group lock", "/api/environment-groups/prodg/locks/probe", l()),
        req("PUT", "deploy", "/api/environments/dev/applications/web/deploy", Json(json!({"version": 1}))),
        req(
            "POST",
            "deployment",
            "/api/releases/web/environments/dev/deployments",
            Json(json!({"release_candidate_version": "1.0.0-rc1"})),
        ),
        req(
            "PATCH",
            "deployment status",
            "/api/releases/web/environments/dev/deployments",
            Json(json!({"release_candidate_version": "1.0.0-rc1", "status": "success"})),
        ),
        req("POST", "environment", "/api/environments", Json(json!({"name": "qa"}))),
        req("PUT", "environment", "/api/environments/dev", Json(json!({"tier": "development"}))),
        req("POST", "environment", "/api/environments/dev/stop", Body::None),
        req("DELETE", "environment", "/api/environments/dev", Body::None),
        req("POST", "environment", "/api/v4/projects/1/environments", Json(json!({"name": "qa3"}))),
        req("PUT", "train", "/api/environments/prod/releasetrain", Body::None),
        req("PUT", "train", "/environment-groups/prodg/releasetrain", Body::None),
        req(
            "POST",
            "run of a flow that locks",
            "/api/release-flows/pipe%2Fprod/runs",
            Json(json!({"name": "probe run"})),
        ),
        req(
            "POST",
            "run of a flow that locks",
            "/v1/projects/1/pipelines/pipe/release-flows/prod/runs",
            Json(json!({"name": "probe run"})),
        ),
    ];
    out.extend(flow_only.into_iter().map(|r| (FLOW_ONLY, r)));
    for (m, path) in [
        ("PUT", "/api/environments/dev/locks/probe"),
        ("DELETE", "/api/environments/dev/locks/probe"),
        ("PUT", "/api/environments/prod/locks/probe"),
        ("DELETE", "/api/environments/prod/locks/probe"),
        ("PUT", "/api/environment-groups/prodg/locks/probe"),
        ("DELETE", "/api/environment-groups/prodg/locks/probe"),
        ("PUT", "/environments/prod/locks/probe"),
        ("DELETE", "/environments/prod/locks/probe"),
        ("PUT", "/environment-groups/prodg/locks/probe"),
        ("PUT", "/api/environments/prod/applications/web/locks/probe"),
        ("PUT", "/api/environments/prod/teams/core/locks/probe"),
    ] {
        let body = if m == "PUT" { l() } else { Body::None };
        out.push((LOCK_PAYMENTS, req(m, "lock beyond team payments", path, body)));
    }
    out
}

/// (method, path) of each `.route(..)` in `text` with a write method, with `prefix` before the path.
fn write_routes(text: &str, prefix: &str) -> BTreeSet<(String, String)> {
    // Routes written as `&format!("{prefix}/…")` inside `for prefix in ["…", "…"]` stand for each of the prefixes.
    let loop_prefixes: Vec<String> = text
        .split("for prefix in [")
        .nth(1)
        .and_then(|t| t.split(']').next())
        .map(|list| list.split('"').skip(1).step_by(2).map(str::to_owned).collect())
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for (method, path) in literal_write_routes(text) {
        let path = path.replace("{{", "{").replace("}}", "}");
        match path.strip_prefix("{prefix}") {
            Some(rest) => {
                assert!(!loop_prefixes.is_empty(), "a route uses {{prefix}} outside a `for prefix in [..]` loop");
                out.extend(loop_prefixes.iter().map(|p| (method.clone(), format!("{prefix}{p}{rest}"))));
            }
            None => {
                out.insert((method, format!("{prefix}{path}")));
            }
        }
    }
    out
}

/// The (method, path) of each `.route("path", …)` in `text` whose handlers include a write method.
fn literal_write_routes(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for part in text.split(".route(").skip(1) {
        let Some(start) = part.find('"') else { continue };
        let rest = &part[start + 1..];
        let Some(end) = rest.find('"') else { continue };
        let handlers = &rest[end..];
        for method in ["post", "put", "delete", "patch"] {
            let found = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                let b = handlers.as_bytes()[i - 1];
                !b.is_ascii_alphanumeric() && b != b'_' && b != b':'
            });
            if found {
                out.insert((method.to_uppercase(), rest[..end].to_owned()));
            }
        }
    }
    out
}

/// The text of `fn router()` in a route module.
fn router_fn(text: &str) -> &str {
    text.split("pub fn router()").nth(1).and_then(|t| t.split("\n}\n").next()).expect("fn router")
}

/// Sends `r` as `token` and says what was wrong if the answer is not `status` (with Railyard's error code on the
/// native and Kuberpult surfaces; GitLab and Northflank answer in their own shapes).
fn refused(s: &Server, r: &Req, token: Option<&str>, who: &str, status: u16) -> Option<String> {
    let got = send(s, r, token);
    let code = if status == 401 { "unauthorized" } else { "forbidden" };
    let native = !r.path.starts_with("/api/v4/") && !r.path.starts_with("/v1/");
    (got.status != status || (native && got.json["code"] != code))
        .then(|| format!("{who}: {} {} ({}) answered {}: {}", r.method, r.path, r.template, got.status, got.text))
}

fn snapshot(s: &Server) -> Value {
    json!({
        "local_refs": refs_snapshot(&s.repo_dir),
        "remote_refs": refs_snapshot(&s.remote_dir),
        "local_objects": object_count(&s.repo_dir),
        "remote_objects": object_count(&s.remote_dir),
    })
}

fn start() -> (Server, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = write_tokens(dir.path(), PEOPLE);
    let s = Server::start_in(dir, &["--auth-tokens", tokens.to_str().expect("path")]);
    let admin = |m: &str, path: &str, body: Value| call(&s, m, path, Some(ADMIN), Some(&body));
    admin("POST", "/api/environments", json!({"name": "dev", "upstream": {"latest": true}})).assert_status(201);
    admin(
        "POST",
        "/api/environments",
        json!({"name": "prod", "upstream": {"environment": "dev"}, "environmentGroup": "prodg"}),
    )
    .assert_status(201);
    let Body::Multipart(parts) = web_upload(Some("core")) else { unreachable!() };
    upload_as(&s, "/api/release", Some(ADMIN), &parts).assert_status(201);
    let rc = json!({"repo": "acme/web", "commit": "0123abc", "manifests": {"dev": fresh_yaml(), "prod": fresh_yaml()}});
    admin("POST", "/api/releases/web/releases/1.0.0-rc1", rc).assert_status(201);
    send(&s, &req("PUT", "", "/api/release-flows/pipe%2Fprod", Body::Yaml(FLOW)), Some(ADMIN)).assert_status(201);
    let prod = call(&s, "GET", "/api/environments/prod", Some(ADMIN), None);
    prod.assert_status(200);
    let id = prod.json["id"].as_u64().expect("prod's id");
    (s, id)
}

#[test]
fn every_write_operation_refuses_callers_it_does_not_allow_and_leaves_nothing_behind() {
    let (s, gl_env) = start();
    let table = every_write(gl_env);

    // The table covers every write of the OpenAPI document and of the compatibility surfaces' routers.
    let doc = call(&s, "GET", "/api/openapi.json", Some(ADMIN), None);
    doc.assert_status(200);
    let mut writes = BTreeSet::new();
    for (path, ops) in doc.json["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            // `POST /auth/token` (the web UI's OIDC code exchange) writes nothing to the repo.
            if matches!(method.as_str(), "put" | "post" | "patch" | "delete") && !path.starts_with("/auth/") {
                writes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(writes.len() > 20, "parsed {} writes from the OpenAPI document", writes.len());
    let compat = write_routes(router_fn(KUBERPULT), "");
    assert!(compat.len() >= 10, "{compat:?}");
    writes.extend(compat);
    writes.extend(write_routes(router_fn(GITLAB), "/api/v4"));
    writes.extend(write_routes(router_fn(NORTHFLANK), "/v1"));
    let covered: BTreeSet<(String, String)> =
        table.iter().map(|r| (r.method.to_owned(), r.template.to_owned())).collect();
    let missing: Vec<_> = writes.difference(&covered).collect();
    assert!(missing.is_empty(), "write operations missing from the probe table: {missing:?}");
    let stale: Vec<_> = covered.difference(&writes).collect();
    assert!(stale.is_empty(), "the probe table has routes the server does not: {stale:?}");

    s.wait_exported();
    s.wait_reconciled();
    std::thread::sleep(Duration::from_millis(300));
    let before = snapshot(&s);

    let mut wrong = Vec::new();
    for r in &table {
        wrong.extend(refused(&s, r, None, "no token", 401));
        wrong.extend(refused(&s, r, Some("not-a-token"), "invalid token", 401));
        wrong.extend(refused(&s, r, Some(NO_ROLES), "token without roles", 403));
        wrong.extend(refused(&s, r, Some(NO_ROLES_2), "second token without roles", 403));
    }
    // Those callers are refused before anything is read or written: not even an object is left.
    let unchanged = snapshot(&s);
    if unchanged != before {
        wrong.push(format!("401/no-roles requests changed the repos: before {before}, after {unchanged}"));
    }
    for (token, r) in &outside_their_roles() {
        wrong.extend(refused(&s, r, Some(token), token, 403));
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = snapshot(&s);
    assert!(wrong.is_empty(), "{} requests were not refused as they should be:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(after, before, "refused requests changed the repos");

    // The bodies are valid: the admin may make every request of the table (a conflict with the state is fine).
    for r in &table {
        let got = send(&s, r, Some(ADMIN));
        assert!(
            got.status < 300 || got.status == 409,
            "{} {} as admin answered {}: {}",
            r.method,
            r.path,
            got.status,
            got.text
        );
    }
    s.assert_healthy();
}
