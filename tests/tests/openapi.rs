//! `GET /api/openapi.json` documents every route of the native router (read from its source, so a route added
//! without documenting it fails here), and every documented operation is served.

use std::collections::BTreeSet;

use railyard_tests::Server;

const UI_ROUTES: &str = include_str!("../../crates/api/src/routes/ui.rs");
const ROUTER: &str = include_str!("../../crates/api/src/routes/mod.rs");

/// (method, path) of each `.route(..)` in `text`, with `prefix` before the path.
fn routes(text: &str, prefix: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let parts: Vec<&str> = text.split(".route(").skip(1).collect();
    for part in parts {
        let Some(start) = part.find('"') else { continue };
        let rest = &part[start + 1..];
        let Some(end) = rest.find('"') else { continue };
        let path = &rest[..end];
        let handlers = &rest[end..];
        for method in ["get", "post", "put", "delete", "patch"] {
            let found = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric() && handlers.as_bytes()[i - 1] != b'_'
            });
            if found {
                // OpenAPI has no catch-all: `{*env}` is documented as `{env}`.
                out.insert((method.to_owned(), format!("{prefix}{path}").replace("{*", "{")));
            }
        }
    }
    out
}

fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys() {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

#[test]
fn every_native_route_is_documented_and_every_documented_operation_is_served() {
    let api_block = ROUTER.split("let api = Router::new()").nth(1).expect("api router").split(';').next().expect("end");
    let mut in_router = routes(api_block, "/api");
    let root = ROUTER.split("Router::new()\n        .nest(\"/api/v4\"").nth(1).expect("root router");
    in_router.extend(routes(root, ""));
    // The web UI's OIDC sign-in routes live beside their handlers.
    let signin =
        UI_ROUTES.split("pub fn router").nth(1).expect("sign-in router").split(".with_state").next().expect("end");
    in_router.extend(routes(signin, ""));
    assert!(in_router.len() > 40, "parsed {} routes: {in_router:?}", in_router.len());

    let s = Server::start();
    let r = s.get("/api/openapi.json");
    r.assert_status(200);
    assert_eq!(r.json["openapi"], "3.0.3");
    let docs = documented(&r.json);
    let missing: Vec<_> = in_router.difference(&docs).collect();
    assert!(missing.is_empty(), "routes not in /api/openapi.json: {missing:?}");
    let stale: Vec<_> = docs.difference(&in_router).collect();
    assert!(stale.is_empty(), "documented but not routed: {stale:?}");

    for (method, path) in &docs {
        let concrete =
            path.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect::<Vec<_>>().join("/");
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let resp = s.client().request(m, s.at(&concrete)).send().expect("request");
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().unwrap_or_default();
        assert!(
            !matches!(body["code"].as_str(), Some("no_route" | "method_not_allowed")),
            "{method} {path}: {status} {body}"
        );
        assert!(status < 500, "{method} {path}: {status} {body}");
    }
}
