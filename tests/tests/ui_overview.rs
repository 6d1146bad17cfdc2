//! The overview on a generated repo of 200 applications × 4 environments: `GET /api/overview` (its entity tag is the
//! head commit, `304` while the head has not moved, a new tag and the new version after a deploy) and the overview
//! page `/` (one row per application, the deployed version in its cell, the `app` filter, `304` for its entity tag).
//! Correctness only: the timings are the `ui` bench's (tests/benches/api.rs).

use railyard_tests::repogen::{self, RepoSpec};
use railyard_tests::{start_generated, Reply, Server};
use serde_json::{json, Value};

const APPS: usize = 200;
const ENVS: usize = 4;

/// `GET path` with `If-None-Match: etag`; the status, the `ETag` and the body.
fn get_if_none_match(s: &Server, path: &str, etag: &str) -> (u16, Option<String>, String) {
    let r = s.client().get(s.at(path)).header("If-None-Match", etag).send().expect("GET");
    let status = r.status().as_u16();
    let tag = r.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, tag, r.text().expect("body"))
}

/// `GET path`: the answer and its `ETag`.
fn get_tagged(s: &Server, path: &str) -> (Reply, String) {
    let r = s.client().get(s.at(path)).send().expect("GET");
    let tag = r.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned).unwrap_or_default();
    (Reply::from_response(r), tag)
}

fn head_tag(s: &Server) -> String {
    format!("\"{}\"", s.local_head().expect("local head"))
}

/// The version `app` runs in `env` per the overview JSON (None: not listed there, or no version).
fn version_in(overview: &Value, env: &str, app: &str) -> Option<u64> {
    let envs = overview["environments"].as_array()?;
    let e = envs.iter().find(|e| e["name"] == env)?;
    let a = e["applications"].as_array()?.iter().find(|a| a["application"] == app)?;
    a["version"].as_u64()
}

/// The `<td>` of `app` in `env` in the page's HTML.
fn cell<'a>(html: &'a str, env: &str, app: &str) -> &'a str {
    let open = format!("data-env=\"{env}\" data-app=\"{app}\"");
    let at = html.find(&open).unwrap_or_else(|| panic!("no cell for {app} in {env}"));
    let end = html[at..].find("</td>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

#[test]
fn overview_json_and_page_on_200_apps_by_4_environments() {
    // Releases 1 and 2 of every application (release r belongs to app r % APPS): env-0 (upstream latest) runs 2.
    let spec = RepoSpec { apps: APPS, envs: ENVS, releases: 2 * APPS, hot_releases: 0, commits: 0, argocd: false };
    let (s, _) = start_generated(&spec, &[]);

    // The generator deploys to env-0 alone; a train per environment moves release 2 down the chain.
    let (before, _) = get_tagged(&s, "/api/overview");
    before.assert_status(200);
    let listed = |o: &Value, i: usize| o["environments"][i]["applications"].as_array().map_or(0, Vec::len);
    assert_eq!(listed(&before.json, 0), APPS, "env-0 as generated");
    assert_eq!(listed(&before.json, 1), 0, "env-1 as generated");
    for i in 1..ENVS {
        let r = s.put_json(&format!("/api/environments/{}/releasetrain", repogen::env(i)), &json!({}));
        r.assert_status(200);
        let moved = r.json["environments"][0]["deployed"].as_array().map_or(0, Vec::len);
        assert_eq!(moved, APPS, "train into {}: {}", repogen::env(i), r.text);
    }

    // GET /api/overview: the head as entity tag, every environment with every application at release 2.
    let (r, etag) = get_tagged(&s, "/api/overview");
    r.assert_status(200);
    assert!(r.content_type.starts_with("application/json"), "{}", r.content_type);
    assert_eq!(etag, head_tag(&s));
    let envs = r.json["environments"].as_array().expect("environments");
    let names: Vec<&str> = envs.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, (0..ENVS).map(repogen::env).collect::<Vec<_>>());
    for e in envs {
        let apps = e["applications"].as_array().expect("applications");
        assert_eq!(apps.len(), APPS, "applications of {}", e["name"]);
        for (i, a) in apps.iter().enumerate() {
            assert_eq!(a["application"], repogen::app(i), "in {}", e["name"]);
            assert_eq!(a["version"], 2, "{} in {}", a["application"], e["name"]);
            assert_eq!(a["team"], "team-a");
        }
    }

    // Unchanged head: 304 with no body.
    let (status, tag, body) = get_if_none_match(&s, "/api/overview", &etag);
    assert_eq!(status, 304);
    assert_eq!(tag.as_deref(), Some(etag.as_str()));
    assert!(body.is_empty(), "a 304 with a body: {body:?}");

    // A deploy moves the head: the old tag no longer matches, the answer shows the new version under the new head.
    let (app, env) = (repogen::app(123), repogen::env(2));
    s.deploy(&env, &app, 1, "fail").assert_status(200);
    let (status, tag, body) = get_if_none_match(&s, "/api/overview", &etag);
    assert_eq!(status, 200, "{body}");
    let new_tag = tag.expect("ETag");
    assert_ne!(new_tag, etag);
    assert_eq!(new_tag, head_tag(&s));
    let after: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(version_in(&after, &env, &app), Some(1));
    assert_eq!(version_in(&after, &repogen::env(1), &app), Some(2), "other environments as they were");
    assert_eq!(version_in(&after, &env, &repogen::app(124)), Some(2), "other applications as they were");

    // The page: one row per application, the deployed version in the cell of its environment.
    let (page, page_tag) = get_tagged(&s, "/");
    page.assert_status(200);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    let html = &page.text;
    assert!(html.contains("<table class=\"matrix\" id=\"overview\""), "no table#overview");
    assert_eq!(html.matches("<tr data-app=").count(), APPS);
    assert_eq!(html.matches("<td ").count(), APPS * ENVS, "one cell per application and environment");
    assert!(cell(html, &env, &app).contains("<span class=\"version\">v1</span>"), "{}", cell(html, &env, &app));
    assert!(cell(html, &repogen::env(1), &app).contains("<span class=\"version\">v2</span>"));

    // The filter: `app` keeps the applications whose name contains it.
    let filtered = s.get(&format!("/?app={app}"));
    filtered.assert_status(200);
    assert_eq!(filtered.text.matches("<tr data-app=").count(), 1);
    assert!(filtered.text.contains(&format!("<tr data-app=\"{app}\"")));
    assert!(cell(&filtered.text, &env, &app).contains("v1"));
    let some = s.get("/?app=app-0012");
    assert_eq!(some.text.matches("<tr data-app=").count(), 10, "app-00120 … app-00129");

    // The page's entity tag while the head stays: 304.
    assert!(!page_tag.is_empty(), "the page has no ETag");
    let (status, _, body) = get_if_none_match(&s, "/", &page_tag);
    assert_eq!(status, 304);
    assert!(body.is_empty());
}
