//! The OpenAPI 3 document of the native API (`GET /api/openapi.json`), built from one table of operations kept
//! beside the router; a test (`tests/tests/openapi.rs`) fails when a route of the router is missing from it.
//! The compatibility surfaces (Kuberpult, GitLab `/api/v4`, Northflank `/v1`) follow their vendors' documents.

use axum::Json;
use serde_json::{json, Map, Value};

/// How an operation takes its body.
enum Body {
    None,
    Json(fn() -> Value),
    Multipart(fn() -> Value),
    /// YAML (or JSON) text.
    Template,
}

const HISTORY_QUERY: &[(&str, &str)] = &[
    ("limit", "entries, 1-500 (default 50)"),
    ("before", "only entries older than this commit or entry id (next_before of the previous page)"),
];

struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    query: &'static [(&'static str, &'static str)],
    body: Body,
    ok: u16,
}

fn string() -> Value {
    json!({"type": "string"})
}

fn upstream() -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": {
        "latest": {"type": "boolean"}, "environment": {"type": "string"}}})
}

fn create_env() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["name"], "properties": {
        "name": string(), "external_url": string(),
        "tier": {"type": "string", "enum": ["production", "staging", "testing", "development", "other"]},
        "upstream": upstream(), "environmentGroup": string(), "argocd": argocd()}})
}

/// An environment's Argo CD settings (docs/manifest-repo.md); null in an update removes them.
fn argocd() -> Value {
    json!({"type": "object", "description": "destination, syncWindows, accessList, applicationAnnotations, ignoreDifferences, syncOptions",
        "properties": {"destination": {"type": "object"}, "syncWindows": {"type": "array"}, "accessList": {"type": "array"},
        "applicationAnnotations": {"type": "object"}, "ignoreDifferences": {"type": "array"}, "syncOptions": {"type": "array"}}})
}

fn update_env() -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": {
        "external_url": string(),
        "tier": {"type": "string", "enum": ["production", "staging", "testing", "development", "other"]},
        "upstream": upstream(), "environmentGroup": string(), "protected": {"type": "boolean"},
        "argocd": {"oneOf": [argocd(), {"type": "null"}]}}})
}

fn lock() -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": {"message": string()}})
}

fn deploy() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["version"], "properties": {
        "version": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]},
        "lockBehavior": {"type": "string", "enum": ["fail", "queue", "ignore"]}}})
}

fn rollback() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["message"], "properties": {
        "version": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]},
        "lockId": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,100}$"},
        "message": {"type": "string"}}})
}

fn application() -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": {"team": string(), "repository": string()}})
}

fn release() -> Value {
    json!({"type": "object", "required": ["application"], "properties": {
        "application": string(), "version": string(), "team": string(), "source_commit_id": string(),
        "source_author": string(), "source_message": string(), "display_version": string()},
        "description": "plus one part `manifests[<environment>]` per environment"})
}

fn candidate() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["repo", "commit"], "properties": {
        "repo": string(), "commit": string(), "trigger_build_workflow": {"type": "boolean"},
        "manifests": {"type": "object", "additionalProperties": string()}}})
}

fn deployment() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["release_candidate_version"],
        "properties": {"release_candidate_version": string()}})
}

fn deployment_status() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["release_candidate_version", "status"],
        "properties": {"release_candidate_version": string(), "status": {"type": "string",
            "enum": ["pending", "in_progress", "success", "failure", "canceling", "canceled", "unknown"]}}})
}

fn run() -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 39},
        "description": {"type": "string", "maxLength": 200},
        "arguments": {"type": "object"}, "overrides": {"type": "object"},
        "releaseNodeOverrides": {"type": "object"}, "dryRun": {"type": "boolean"}}})
}

const TRAIN_QUERY: &[(&str, &str)] = &[
    ("team", "only this team's applications"),
    ("sourceGitTag", "take the source versions from this tag"),
    ("gitTag", "tag the train's commit"),
    ("dryRun", "true: answer what would move, write nothing"),
];

/// Every operation of the native API, in the router's order.
fn ops() -> Vec<Op> {
    use Body::*;
    let op = |method, path, summary, query, body, ok| Op { method, path, summary, query, body, ok };
    vec![
        op("get", "/healthz", "Liveness", &[], None, 200),
        op("get", "/readyz", "Readiness and export status", &[], None, 200),
        op("get", "/metrics", "Prometheus metrics", &[], None, 200),
        op("get", "/api/openapi.json", "This document", &[], None, 200),
        op("post", "/api/release", "Upload a release (Kuberpult's multipart form)", &[], Multipart(release), 201),
        op("put", "/api/applications/{app}", "Set an application's team or repository", &[], Json(application), 200),
        op("get", "/api/applications/{app}/releases", "An application's releases", &[], None, 200),
        op(
            "delete",
            "/api/applications/{app}",
            "Delete an application that runs its undeploy release everywhere",
            &[],
            None,
            200,
        ),
        op("post", "/api/applications/{app}/undeploy", "Create an undeploy release", &[], None, 201),
        op(
            "delete",
            "/api/environments/{env}/applications/{app}",
            "Remove an application from an environment",
            &[],
            None,
            200,
        ),
        op(
            "post",
            "/api/environments/{env}/applications/{app}/rollback",
            "Deploy an older release and lock it (deploy and lock)",
            &[],
            Json(rollback),
            200,
        ),
        op("get", "/api/overview", "Every environment with what runs there and its locks", &[], None, 200),
        op(
            "get",
            "/api/environments",
            "List environments",
            &[
                ("name", "exactly this name"),
                ("search", "names containing this (3+ characters)"),
                ("states", "available, stopping, stopped (comma-separated)"),
            ],
            None,
            200,
        ),
        op("post", "/api/environments", "Create an environment", &[], Json(create_env), 201),
        op(
            "post",
            "/api/environments/stop_stale",
            "Stop environments unchanged since `before`",
            &[("before", "ISO 8601, between 10 years and 1 week ago")],
            None,
            200,
        ),
        op(
            "delete",
            "/api/environments/review_apps",
            "Delete stopped review apps",
            &[
                ("before", "ISO 8601 (default 30 days ago)"),
                ("limit", "1 to 1000 (default 100)"),
                ("dry_run", "default true"),
            ],
            None,
            200,
        ),
        op("get", "/api/environments/{env}", "An environment (name or id)", &[], None, 200),
        op("put", "/api/environments/{env}", "Update an environment", &[], Json(update_env), 200),
        op("delete", "/api/environments/{env}", "Delete a stopped environment", &[], None, 204),
        op(
            "post",
            "/api/environments/{env}/stop",
            "Stop an environment",
            &[("force", "accepted, changes nothing")],
            None,
            200,
        ),
        op("get", "/api/history", "Deployment history, newest first", HISTORY_QUERY, None, 200),
        op("get", "/api/environments/{env}/history", "An environment's history", HISTORY_QUERY, None, 200),
        op("get", "/api/applications/{app}/history", "An application's history", HISTORY_QUERY, None, 200),
        op(
            "get",
            "/api/environments/{env}/applications/{app}/history",
            "An application's history in one environment",
            HISTORY_QUERY,
            None,
            200,
        ),
        op(
            "get",
            "/api/commit-deployments/{commit}",
            "Where the release of a source commit (or a newer one) is deployed",
            &[],
            None,
            200,
        ),
        op(
            "get",
            "/api/webhooks/deliveries",
            "Webhook subscribers and their newest deliveries",
            &[("limit", "deliveries to show, 1-1000 (default 100)")],
            None,
            200,
        ),
        op("get", "/api/environments/{env}/argocd", "The Argo CD objects generated for an environment", &[], None, 200),
        op("put", "/api/environments/{env}/applications/{app}/deploy", "Deploy a release", &[], Json(deploy), 200),
        op("get", "/api/environments/{env}/locks", "An environment's locks", &[], None, 200),
        op("get", "/api/environments/{env}/locks/{lock}", "An environment lock", &[], None, 200),
        op("put", "/api/environments/{env}/locks/{lock}", "Lock an environment", &[], Json(lock), 200),
        op("delete", "/api/environments/{env}/locks/{lock}", "Unlock an environment", &[], None, 200),
        op(
            "get",
            "/api/environments/{env}/applications/{app}/locks",
            "An application's locks in an environment",
            &[],
            None,
            200,
        ),
        op("get", "/api/environments/{env}/applications/{app}/locks/{lock}", "An application lock", &[], None, 200),
        op(
            "put",
            "/api/environments/{env}/applications/{app}/locks/{lock}",
            "Lock an application in an environment",
            &[],
            Json(lock),
            200,
        ),
        op(
            "delete",
            "/api/environments/{env}/applications/{app}/locks/{lock}",
            "Unlock an application",
            &[],
            None,
            200,
        ),
        op("get", "/api/environments/{env}/teams/{team}/locks", "A team's locks in an environment", &[], None, 200),
        op("get", "/api/environments/{env}/teams/{team}/locks/{lock}", "A team lock", &[], None, 200),
        op(
            "put",
            "/api/environments/{env}/teams/{team}/locks/{lock}",
            "Lock a team in an environment",
            &[],
            Json(lock),
            200,
        ),
        op("delete", "/api/environments/{env}/teams/{team}/locks/{lock}", "Unlock a team", &[], None, 200),
        op(
            "put",
            "/api/environment-groups/{group}/locks/{lock}",
            "Lock every environment of a group",
            &[],
            Json(lock),
            201,
        ),
        op("delete", "/api/environment-groups/{group}/locks/{lock}", "Unlock a group", &[], None, 200),
        op("get", "/api/release-flows/{flow}", "A release-flow template", &[], None, 200),
        op("put", "/api/release-flows/{flow}", "Store a release-flow template (YAML or JSON)", &[], Template, 201),
        op("get", "/api/release-flows/{flow}/runs", "A flow's runs", &[], None, 200),
        op("post", "/api/release-flows/{flow}/runs", "Run a flow (one commit, all steps or none)", &[], Json(run), 201),
        op("get", "/api/release-flows/{flow}/runs/{id}", "One run", &[], None, 200),
        op("post", "/api/releases/{project}/releases/{rc}", "Create a release candidate", &[], Json(candidate), 201),
        op(
            "post",
            "/api/releases/{project}/environments/{env}/deployments",
            "Deploy a release candidate",
            &[],
            Json(deployment),
            201,
        ),
        op(
            "patch",
            "/api/releases/{project}/environments/{env}/deployments",
            "Set a deployment's status",
            &[],
            Json(deployment_status),
            200,
        ),
        op("put", "/api/environments/{env}/releasetrain", "Release train into an environment", TRAIN_QUERY, None, 200),
        op(
            "get",
            "/api/environments/{env}/releasetrain/prognosis",
            "What a release train would move",
            TRAIN_QUERY,
            None,
            200,
        ),
        op(
            "put",
            "/api/environment-groups/{group}/releasetrain",
            "Release train into every environment of a group",
            TRAIN_QUERY,
            None,
            200,
        ),
    ]
}

/// The web UI's pages (HTML; with auth on and no token, a sign-in page) and its assets.
type Query = &'static [(&'static str, &'static str)];

const PAGES: &[(&str, &str, Query)] = &[
    (
        "/",
        "Web UI: the environment × application overview",
        &[("team", "only this team"), ("app", "application name contains")],
    ),
    ("/app/{app}", "Web UI: an application", &[]),
    ("/env/{*env}", "Web UI: an environment (its name may hold `/`)", &[]),
    (
        "/train",
        "Web UI: a release train with its dry run",
        &[("target", "environment:<env> or group:<group>"), ("team", "only this team")],
    ),
    ("/locks", "Web UI: every lock", &[]),
    ("/flows", "Web UI: release-flow runs", &[]),
    ("/flow-run", "Web UI: one release-flow run", &[("flow", "the flow"), ("id", "the run")]),
    ("/assets/{file}", "Web UI: the script and the style sheet", &[]),
    ("/auth/callback", "Web UI: where the OIDC issuer sends a person back after sign-in", &[]),
];

fn token_exchange() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["code", "code_verifier", "redirect_uri"],
        "properties": {"code": string(), "code_verifier": {"type": "string", "minLength": 43, "maxLength": 128},
            "redirect_uri": string()}})
}

fn page_operation(path: &str, summary: &str, query: &[(&str, &str)]) -> Value {
    let mut parameters: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name.trim_start_matches('*'), "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(query.iter().map(|(name, d)| {
        json!({"name": name, "in": "query", "required": false, "description": d, "schema": {"type": "string"}})
    }));
    let html = json!({"text/html": {"schema": {"type": "string"}}});
    json!({
        "operationId": format!("page{}", path.replace(['/', '{', '}', '.', '-', '*'], "_")),
        "summary": summary,
        "tags": ["web UI"],
        "parameters": parameters,
        "responses": {
            "200": {"description": "the page", "content": html},
            "304": {"description": "the head commit has not moved since the page named in If-None-Match"},
            "400": {"description": "an invalid name", "content": html},
            "404": {"description": "no such application, environment or run", "content": html},
        },
    })
}

/// The document.
pub fn document() -> Value {
    let error = json!({"type": "object", "required": ["error", "code"], "properties": {
        "error": {"type": "string"}, "code": {"type": "string"}, "field": {"type": "string"}}});
    let mut paths = Map::new();
    for op in ops() {
        let mut parameters: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(op.query.iter().map(|(name, d)| {
            json!({"name": name, "in": "query", "required": false, "description": d, "schema": {"type": "string"}})
        }));
        let mut operation = json!({
            "operationId": format!("{}{}", op.method, op.path.replace(['/', '{', '}', '.', '-'], "_")),
            "summary": op.summary,
            "parameters": parameters,
            "responses": {
                op.ok.to_string(): {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"description": "invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "no valid token (with --auth-tokens)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "403": {"description": "no role allows it", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "404": {"description": "not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "409": {"description": "conflicts with the current state (locked, exists, not stopped, …)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if op.ok == 204 {
            operation["responses"]["204"] = json!({"description": "deleted"});
        }
        let body = match op.body {
            Body::None => None,
            Body::Json(schema) => {
                Some(json!({"required": true, "content": {"application/json": {"schema": schema()}}}))
            }
            Body::Multipart(schema) => {
                Some(json!({"required": true, "content": {"multipart/form-data": {"schema": schema()}}}))
            }
            Body::Template => Some(json!({"required": true, "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object", "required": ["steps"], "properties": {
                    "steps": {"type": "array", "items": {"type": "object"}}}}}}})),
        };
        if let Some(b) = body {
            operation["requestBody"] = b;
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    for (path, summary, query) in PAGES {
        paths.insert(path.replace("{*", "{"), json!({"get": page_operation(path, summary, query)}));
    }
    let sign_in_error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
    paths.insert("/auth/config".into(), json!({"get": {
        "operationId": "get_auth_config", "summary": "Where the web UI sends a person to sign in (OIDC)", "tags": ["web UI"],
        "responses": {"200": {"description": "authorization_endpoint, client_id, scope", "content": {"application/json": {"schema": {"type": "object"}}}},
            "404": {"description": "OIDC sign-in is not configured", "content": sign_in_error},
            "502": {"description": "the issuer cannot be reached", "content": sign_in_error}}}}));
    paths.insert("/auth/token".into(), json!({"post": {
        "operationId": "post_auth_token", "summary": "Trade an authorization code and its PKCE verifier for an ID token", "tags": ["web UI"],
        "requestBody": {"required": true, "content": {"application/json": {"schema": token_exchange()}}},
        "responses": {"200": {"description": "id_token", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"description": "invalid input", "content": sign_in_error},
            "401": {"description": "the issuer refused the code", "content": sign_in_error},
            "404": {"description": "OIDC sign-in is not configured", "content": sign_in_error},
            "502": {"description": "the issuer cannot be reached", "content": sign_in_error}}}}));
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Railyard", "version": env!("CARGO_PKG_VERSION"),
            "description": "GitOps release controller: every accepted write is a commit in the manifest repo."},
        "paths": paths,
        "components": {
            "schemas": {"Error": error},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "privateToken": {"type": "apiKey", "in": "header", "name": "PRIVATE-TOKEN"}
            }
        },
        "security": [{"bearer": []}, {"privateToken": []}, {}],
    })
}

/// `GET /api/openapi.json`
pub async fn serve() -> Json<Value> {
    Json(document())
}
