//! `GET /api/openapi.json` and the router agree: the router registers each documented route together with its
//! operation (utoipa-axum), and this test checks the served router against the document — every documented
//! operation is served, and on each documented path every other method is refused with 405 — and that the
//! schemas it names are there, derived from the request types.

use std::collections::BTreeSet;

use railyard_tests::Server;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys().filter(|m| METHODS.contains(&m.as_str())) {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

/// Every `$ref` under `v`.
fn refs(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => {
                        out.insert(r.to_owned());
                    }
                    _ => refs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

fn send(s: &Server, method: &str, path: &str) -> (u16, serde_json::Value) {
    let concrete =
        path.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect::<Vec<_>>().join("/");
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let resp = s.client().request(m, s.at(&concrete)).send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or_default())
}

#[test]
fn the_router_serves_exactly_the_documented_operations_on_each_documented_path() {
    let s = Server::start();
    let r = s.get("/api/openapi.json");
    r.assert_status(200);
    assert_eq!(r.json["openapi"], "3.1.0");
    let docs = documented(&r.json);
    assert!(docs.len() >= 64, "{} operations: {docs:?}", docs.len());
    for path in ["/api/environments/{env}/releasetrain", "/env/{env}", "/auth/token", "/healthz"] {
        assert!(docs.iter().any(|(_, p)| p == path), "{path} is not documented");
    }

    let paths: BTreeSet<&String> = docs.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            let (status, body) = send(&s, method, path);
            if docs.contains(&(method.to_owned(), path.clone())) {
                assert!(
                    !matches!(body["code"].as_str(), Some("no_route" | "method_not_allowed")),
                    "{method} {path} is documented but not served: {status} {body}"
                );
                assert!(status < 500, "{method} {path}: {status} {body}");
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented: {body}");
            }
        }
    }
}

#[test]
fn the_documents_schemas_are_derived_from_the_request_types() {
    let s = Server::start();
    let doc = s.get("/api/openapi.json").json;
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut named = BTreeSet::new();
    refs(&doc, &mut named);
    for r in &named {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r} is not a component"));
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }
    // One schema per request type: two types of the same Rust name do not overwrite each other.
    let body = |method: &str, path: &str| {
        let r = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str();
        let name = r.unwrap_or_else(|| panic!("{method} {path} has no JSON body")).rsplit('/').next().unwrap();
        schemas[name].clone()
    };
    let deploy = body("put", "/api/environments/{env}/applications/{app}/deploy");
    assert_eq!(deploy["required"], serde_json::json!(["version"]), "{deploy}");
    assert!(deploy["properties"]["lockBehavior"].is_object(), "{deploy}");
    assert_eq!(deploy["additionalProperties"], false, "deny_unknown_fields: {deploy}");
    let candidate_deploy = body("post", "/api/releases/{project}/environments/{env}/deployments");
    assert!(candidate_deploy["properties"]["release_candidate_version"].is_object(), "{candidate_deploy}");
    let env_update = body("put", "/api/environments/{env}");
    assert!(env_update["properties"]["protected"].is_object(), "{env_update}");
    let app_update = body("put", "/api/applications/{app}");
    assert!(app_update["properties"]["repository"].is_object(), "{app_update}");
    let create = body("post", "/api/environments");
    assert_eq!(create["required"], serde_json::json!(["name"]), "{create}");
    // An error answer has the documented shape.
    let (status, err) = send(&s, "get", "/api/environments/{env}");
    assert_eq!(status, 404);
    for key in schemas["ErrorBody"]["required"].as_array().expect("required") {
        assert!(err[key.as_str().unwrap()].is_string(), "{key} missing in {err}");
    }
}
