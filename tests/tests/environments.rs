//! Environments with GitLab semantics: filters, get by name or id, update, stop, delete, stop_stale, review-app
//! clean-up. Every write is a commit on the remote; every refusal a JSON error that writes nothing.

use railyard_tests::Server;
use serde_json::{json, Value};

fn names(r: &railyard_tests::Reply) -> Vec<String> {
    r.json["environments"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn setup() -> Server {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    s.create_env("staging", json!({"environment": "dev"}), None).assert_status(201);
    s.create_env("review/fix-login-button-colour", json!({"environment": "dev"}), None).assert_status(201);
    s
}

fn delete_req(s: &Server, path: &str) -> railyard_tests::Reply {
    s.delete(path)
}

fn post(s: &Server, path: &str) -> railyard_tests::Reply {
    s.post_json(path, &json!({}))
}

#[test]
fn list_filters_by_name_search_and_states() {
    let s = setup();
    assert_eq!(names(&s.get("/api/environments")), ["dev", "review/fix-login-button-colour", "staging"]);
    assert_eq!(names(&s.get("/api/environments?name=staging")), ["staging"]);
    assert_eq!(names(&s.get("/api/environments?name=stag")), Vec::<String>::new());
    assert_eq!(names(&s.get("/api/environments?search=fix-log")), ["review/fix-login-button-colour"]);
    post(&s, "/api/environments/staging/stop").assert_status(200);
    assert_eq!(names(&s.get("/api/environments?states=stopped")), ["staging"]);
    assert_eq!(names(&s.get("/api/environments?states=available")), ["dev", "review/fix-login-button-colour"]);
    assert_eq!(names(&s.get("/api/environments?states=available,stopped")).len(), 3);
    s.get("/api/environments?name=dev&search=dev").assert_error(400, "invalid_input", Some("search"));
    s.get("/api/environments?search=de").assert_error(400, "invalid_input", Some("search"));
    s.get("/api/environments?states=gone").assert_error(400, "invalid_input", Some("states"));
    s.get("/api/environments?colour=red").assert_error(400, "invalid_input", Some("colour"));
}

#[test]
fn get_by_name_url_encoded_folder_or_id_with_slug_and_last_deployment() {
    let s = setup();
    let by_name = s.get("/api/environments/review%2Ffix-login-button-colour");
    by_name.assert_status(200);
    let id = by_name.json["id"].as_u64().expect("id");
    assert_eq!(id, 3);
    let by_id = s.get(&format!("/api/environments/{id}"));
    by_id.assert_status(200);
    assert_eq!(by_id.json, by_name.json);
    // slugs: plain names stay; a name that had to change gets a stable suffix, 24 chars at most
    assert_eq!(s.get("/api/environments/dev").json["slug"], "dev");
    let slug = by_name.json["slug"].as_str().expect("slug").to_owned();
    assert!(slug.starts_with("review-fix-login") && slug.len() <= 24, "{slug}");
    assert_eq!(s.get(&format!("/api/environments/{id}")).json["slug"], slug.as_str(), "stable");
    assert_eq!(by_name.json["state"], "available");
    assert_eq!(by_name.json["tier"], "development");
    assert_eq!(by_name.json["last_deployment"], Value::Null);
    s.get("/api/environments/99").assert_error(404, "not_found", None);
    s.get("/api/environments/nope").assert_error(404, "not_found", None);

    s.release("web", None, &[("dev", "kind: A\n")]).assert_status(201);
    let dev = s.get("/api/environments/1");
    assert_eq!(dev.json["last_deployment"]["application"], "web", "{}", dev.text);
    assert_eq!(dev.json["last_deployment"]["version"], 1);
    assert_eq!(dev.json["last_deployment"]["status"], "success");
}

#[test]
fn update_changes_settings_in_the_repo_and_refuses_bad_input() {
    let s = setup();
    let r = s.put_json(
        "/api/environments/staging",
        &json!({"external_url": "https://staging.example.com", "tier": "staging", "protected": true, "environmentGroup": "pre"}),
    );
    r.assert_status(200);
    assert_eq!(r.json["external_url"], "https://staging.example.com");
    assert_eq!(r.json["protected"], true);
    assert_eq!(r.json["slug"], "staging");
    let commit = r.commit().expect("a commit");
    assert_eq!(s.wait_exported().to_string(), commit);
    let config: Value =
        serde_json::from_str(&s.remote_file("environments/staging/config.json").expect("config")).expect("json");
    assert_eq!(config["tier"], "staging");
    assert_eq!(config["environmentGroup"], "pre");
    assert_eq!(config["protected"], true);
    // by id too
    s.put_json("/api/environments/2", &json!({"external_url": ""})).assert_status(200);
    assert_eq!(s.get("/api/environments/staging").json.get("external_url"), None);

    let before = s.local_head();
    s.put_json("/api/environments/staging", &json!({})).assert_error(400, "invalid_input", Some("body"));
    s.put_json("/api/environments/staging", &json!({"tier": "space"})).assert_status(400);
    s.put_json("/api/environments/staging", &json!({"colour": "red"})).assert_status(400);
    s.put_json("/api/environments/staging", &json!({"upstream": {"environment": "staging"}})).assert_error(
        400,
        "invalid_input",
        Some("upstream"),
    );
    s.put_json("/api/environments/staging", &json!({"upstream": {"environment": "nope"}})).assert_status(404);
    s.put_json("/api/environments/nope", &json!({"tier": "staging"})).assert_status(404);
    assert_eq!(s.local_head(), before, "refusals write nothing");
}

#[test]
fn delete_needs_a_stopped_environment_and_removes_it_from_the_remote() {
    let s = setup();
    s.release("web", None, &[("dev", "kind: A\n"), ("staging", "kind: B\n")]).assert_status(201);
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    delete_req(&s, "/api/environments/staging").assert_error(409, "environment_not_stopped", None);
    delete_req(&s, "/api/environments/nope").assert_error(404, "not_found", None);
    let stopped = post(&s, "/api/environments/staging/stop?force=true");
    stopped.assert_status(200);
    assert_eq!(stopped.json["state"], "stopped");
    let again = post(&s, "/api/environments/staging/stop");
    again.assert_status(200);
    assert_eq!(again.json["commit"], Value::Null, "stopping a stopped environment changes nothing");
    post(&s, "/api/environments/staging/stop?force=maybe").assert_error(400, "invalid_input", Some("force"));

    let resp = s.client().delete(s.at("/api/environments/2")).send().expect("DELETE");
    assert_eq!(resp.status().as_u16(), 204);
    let commit = resp.headers()["x-railyard-commit"].to_str().expect("header").to_owned();
    assert_eq!(s.wait_exported().to_string(), commit);
    assert!(!s.remote_paths().iter().any(|p| p.starts_with("environments/staging/")), "{:?}", s.remote_paths());
    s.get("/api/environments/staging").assert_status(404);
    s.get("/api/environments/2").assert_status(404);
    // ids are never reused
    s.create_env("staging", json!({"environment": "dev"}), None).assert_status(201);
    assert_eq!(s.get("/api/environments/staging").json["id"], 4);
}

#[test]
fn stop_stale_validates_before_and_spares_recent_and_protected_environments() {
    let s = setup();
    for bad in ["yesterday", "2000-01-01T00:00:00Z", "2099-01-01T00:00:00Z"] {
        post(&s, &format!("/api/environments/stop_stale?before={bad}")).assert_error(
            400,
            "invalid_input",
            Some("before"),
        );
    }
    post(&s, "/api/environments/stop_stale").assert_error(400, "invalid_input", Some("before"));
    // everything here changed today: nothing is stale a week ago
    let week_ago = (time::OffsetDateTime::now_utc() - time::Duration::days(8)).date();
    let r = post(&s, &format!("/api/environments/stop_stale?before={week_ago}"));
    r.assert_status(200);
    assert_eq!(r.json["stopped"], json!([]));
    assert_eq!(r.json["commit"], Value::Null);
}

#[test]
fn review_app_cleanup_dry_run_by_default_then_deletes_only_stopped_review_apps() {
    let s = setup();
    s.create_env("review/keep-me", json!({"environment": "dev"}), None).assert_status(201);
    s.create_env("review/guarded", json!({"environment": "dev"}), None).assert_status(201);
    s.put_json("/api/environments/review%2Fguarded", &json!({"protected": true})).assert_status(200);
    for e in ["review%2Ffix-login-button-colour", "review%2Fguarded", "staging"] {
        post(&s, &format!("/api/environments/{e}/stop")).assert_status(200);
    }
    let future = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    let head = s.local_head();
    let dry = delete_req(&s, &format!("/api/environments/review_apps?before={future}"));
    dry.assert_status(200);
    let scheduled: Vec<&str> =
        dry.json["scheduled_entries"].as_array().expect("list").iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(scheduled, ["review/fix-login-button-colour"], "{}", dry.text);
    let unprocessable: Vec<&str> =
        dry.json["unprocessable_entries"].as_array().expect("list").iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(unprocessable, ["review/guarded"]);
    assert_eq!(dry.json["dry_run"], true);
    assert_eq!(s.local_head(), head, "a dry run writes nothing");
    // default `before` is 30 days ago: nothing that old
    let r = delete_req(&s, "/api/environments/review_apps?dry_run=false");
    r.assert_status(200);
    assert_eq!(r.json["scheduled_entries"], json!([]));

    let r = delete_req(&s, &format!("/api/environments/review_apps?before={future}&dry_run=false&limit=5"));
    r.assert_status(200);
    assert_eq!(r.json["scheduled_entries"][0]["name"], "review/fix-login-button-colour");
    s.wait_exported();
    let paths = s.remote_paths();
    assert!(!paths.iter().any(|p| p.starts_with("environments/review/fix-login-button-colour/")));
    assert!(paths.iter().any(|p| p.starts_with("environments/review/guarded/")));
    assert!(paths.iter().any(|p| p.starts_with("environments/review/keep-me/")), "running review apps stay");
    assert!(paths.iter().any(|p| p.starts_with("environments/staging/")), "only review apps");
    for bad in ["limit=0", "limit=1001", "limit=x", "dry_run=perhaps", "before=soon", "page=2"] {
        delete_req(&s, &format!("/api/environments/review_apps?{bad}")).assert_status(400);
    }
}
