//! Release flows: a template stored in the repo, runs with arguments, overrides and release-node overrides, applied
//! as one commit (all steps or none, the run record either way), and Northflank's body rules.

use railyard_tests::{release_parts, Server};
use serde_json::{json, Value};

const WEEKLY: &str = "steps:
  - ref: freeze
    kind: lock
    environment: ${args.TARGET:-prod}
    lockId: release-flow
    message: release ${args.RELEASE}
  - ref: train
    kind: release-train
    environment: ${args.TARGET:-prod}
    team: ${args.TEAM}
  - ref: mark
    kind: tag
    tag: release-${args.RELEASE}
  - ref: thaw
    kind: unlock
    environment: ${args.TARGET:-prod}
    lockId: release-flow
";

fn upload(s: &Server, app: &str, team: &str, version: &str) {
    let manifests = [("dev", "kind: A\n"), ("staging", "kind: A\n"), ("prod", "kind: A\n"), ("qa", "kind: A\n")];
    let mut parts = release_parts(app, Some(version), &manifests);
    for p in &mut parts {
        if p.0 == "team" {
            p.1 = team.as_bytes().to_vec();
        }
    }
    s.upload(&parts).assert_status(201);
}

/// dev (latest) → staging → prod, and qa after staging; web (team pay) and api (team core) at 1 in staging; web 2
/// released (in dev).
fn setup() -> Server {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    s.create_env("staging", json!({"environment": "dev"}), None).assert_status(201);
    s.create_env("prod", json!({"environment": "staging"}), None).assert_status(201);
    s.create_env("qa", json!({"environment": "staging"}), None).assert_status(201);
    upload(&s, "web", "pay", "1");
    upload(&s, "api", "core", "1");
    s.deploy("staging", "web", 1, "fail").assert_status(200);
    s.deploy("staging", "api", 1, "fail").assert_status(200);
    upload(&s, "web", "pay", "2");
    s
}

fn put_template(s: &Server, flow: &str, yaml: &str) -> railyard_tests::Reply {
    s.send_raw_body("PUT", &format!("/api/release-flows/{flow}"), "application/yaml", yaml.as_bytes().to_vec())
}

fn run(s: &Server, flow: &str, body: Value) -> railyard_tests::Reply {
    s.post_json(&format!("/api/release-flows/{flow}/runs"), &body)
}

fn remote_tag(s: &Server, tag: &str) -> Option<String> {
    let repo = git2::Repository::open_bare(&s.remote_dir).ok()?;
    let id = repo.find_reference(&format!("refs/tags/{tag}")).ok()?.peel_to_commit().ok()?.id();
    Some(id.to_string())
}

fn wait_tag(s: &Server, tag: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(t) = remote_tag(s, tag) {
            return t;
        }
        assert!(std::time::Instant::now() < deadline, "tag {tag} never reached the remote");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn lock_train_for_a_team_tag_and_unlock_is_one_commit_with_a_run_record() {
    let s = setup();
    let r = put_template(&s, "weekly", WEEKLY);
    r.assert_status(201);
    put_template(&s, "weekly", WEEKLY).assert_status(200);
    let t = s.get("/api/release-flows/weekly");
    t.assert_status(200);
    assert_eq!(t.json["steps"].as_array().map(Vec::len), Some(4));
    assert_eq!(t.json["steps"][1]["kind"], "release-train");
    let before = s.wait_exported();

    let r = run(
        &s,
        "weekly",
        json!({"name": "Release 42", "description": "Weekly release, team pay.", "arguments": {"RELEASE": 42, "TEAM": "pay"}}),
    );
    r.assert_status(201);
    assert_eq!(r.json["status"], "succeeded", "{}", r.text);
    assert_eq!(r.json["id"], 1);
    let steps: Vec<(&str, &str)> = r.json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["ref"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(steps, [("freeze", "applied"), ("train", "applied"), ("mark", "applied"), ("thaw", "applied")]);
    let commit = r.commit().expect("commit");
    let head = s.wait_exported();
    assert_eq!(head.to_string(), commit);
    assert_eq!(s.remote_commit_parents(&commit), [before.to_string()], "one commit for the whole run");
    // the train moved team pay's web (not api), past the run's own lock, which is gone again
    assert_eq!(s.remote_file("environments/prod/applications/web/version").as_deref(), Some("1"));
    assert_eq!(s.remote_file("environments/prod/applications/api/version"), None);
    assert!(!s.remote_paths().iter().any(|p| p.starts_with("environments/prod/locks/")), "{:?}", s.remote_paths());
    assert_eq!(wait_tag(&s, "release-42"), commit);
    let record: Value =
        serde_json::from_str(&s.remote_file("release-flows/weekly/runs/1.json").expect("record")).expect("json");
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["arguments"]["RELEASE"], "42");
    assert!(s.remote_file("release-flows/weekly.yaml").expect("template").contains("release-train"));
    // read back
    let runs = s.get("/api/release-flows/weekly/runs");
    assert_eq!(runs.json["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(s.get("/api/release-flows/weekly/runs/1").json["name"], "Release 42");
    s.get("/api/release-flows/weekly/runs/2").assert_error(404, "not_found", None);
    s.get("/api/release-flows/nope").assert_error(404, "not_found", None);
    s.get("/api/release-flows/nope/runs").assert_error(404, "not_found", None);
    // the same tag again: the whole run is refused, nothing written
    let again = run(&s, "weekly", json!({"arguments": {"RELEASE": 42, "TEAM": "pay"}}));
    again.assert_error(409, "tag_exists", None);
    assert_eq!(s.local_head(), Some(head));
}

#[test]
fn overrides_change_a_steps_environment_and_node_overrides_what_it_deploys() {
    let s = setup();
    put_template(&s, "weekly", WEEKLY).assert_status(201);
    let r = run(
        &s,
        "weekly",
        json!({"arguments": {"RELEASE": "7", "TEAM": "pay"}, "overrides": {"train": {"environment": "qa"}}, "releaseNodeOverrides": {"web": {"version": 2}}}),
    );
    r.assert_status(201);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/prod/applications/web/version"), None, "the train went to qa instead");
    assert_eq!(
        s.remote_file("environments/qa/applications/web/version").as_deref(),
        Some("2"),
        "web 2, not staging's 1"
    );
    assert_eq!(r.json["steps"][1]["result"]["release_node_overrides"][0]["version"], 2, "{}", r.text);
    // an override for a ref that does not exist, or a key the step does not take
    run(
        &s,
        "weekly",
        json!({"arguments": {"RELEASE": "8", "TEAM": "pay"}, "overrides": {"nope": {"environment": "qa"}}}),
    )
    .assert_error(400, "invalid_input", Some("overrides"));
    run(&s, "weekly", json!({"arguments": {"RELEASE": "8", "TEAM": "pay"}, "overrides": {"train": {"colour": "red"}}}))
        .assert_error(400, "invalid_input", Some("overrides"));
    run(
        &s,
        "weekly",
        json!({"arguments": {"RELEASE": "8", "TEAM": "pay"}, "releaseNodeOverrides": {"web": {"image": "x"}}}),
    )
    .assert_error(400, "invalid_input", Some("releaseNodeOverrides"));
}

#[test]
fn a_failing_middle_step_writes_nothing_but_the_failed_run_record() {
    let s = setup();
    let template = "steps:
  - ref: freeze
    kind: lock
    environment: prod
    lockId: flow
  - ref: web
    kind: deploy
    application: web
    environment: prod
    version: ${args.VERSION}
  - ref: mark
    kind: tag
    tag: shipped-${args.VERSION}
  - ref: thaw
    kind: unlock
    environment: prod
    lockId: flow
";
    put_template(&s, "hotfix", template).assert_status(201);
    let before = s.wait_exported();
    let paths_before = s.remote_paths();
    let r = run(&s, "hotfix", json!({"arguments": {"VERSION": 9}}));
    r.assert_status(409);
    assert_eq!(r.json["code"], "flow_run_failed");
    assert_eq!(r.json["status"], "failed");
    assert_eq!(r.json["failed_step"], "web");
    let statuses: Vec<&str> =
        r.json["steps"].as_array().expect("steps").iter().filter_map(|s| s["status"].as_str()).collect();
    assert_eq!(statuses, ["applied", "failed", "not_run", "not_run"]);
    assert!(r.json["steps"][1]["error"].as_str().is_some_and(|e| e.contains("not found")), "{}", r.text);
    let commit = r.commit().expect("the record is committed");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_commit_parents(&commit), [before.to_string()]);
    let mut added: Vec<String> = s.remote_paths().into_iter().filter(|p| !paths_before.contains(p)).collect();
    added.sort();
    assert_eq!(added, ["release-flows/hotfix/runs/1.json"], "no lock, no deploy");
    assert_eq!(remote_tag(&s, "shipped-9"), None);
    // and with a version that exists, the same flow goes through
    let r = run(&s, "hotfix", json!({"arguments": {"VERSION": 2}}));
    r.assert_status(201);
    assert_eq!(r.json["id"], 2);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/prod/applications/web/version").as_deref(), Some("2"));
}

#[test]
fn dry_run_answers_step_results_without_writing() {
    let s = setup();
    put_template(&s, "weekly", WEEKLY).assert_status(201);
    let head = s.local_head();
    let r = run(&s, "weekly", json!({"arguments": {"RELEASE": "1", "TEAM": "pay"}, "dryRun": true}));
    r.assert_status(200);
    assert_eq!(r.json["dryRun"], true);
    assert_eq!(r.json["status"], "succeeded");
    assert_eq!(r.json["commit"], Value::Null);
    assert_eq!(r.json["steps"][1]["result"]["environments"][0]["deployed"][0]["application"], "web", "{}", r.text);
    assert_eq!(s.local_head(), head);
}

#[test]
fn template_errors_name_the_place_and_store_nothing() {
    let s = setup();
    let head = s.local_head();
    let cases = [
        ("steps:\n  - kind: tag\n    tag: x\n", "steps[0]: `ref` is required"),
        (
            "steps:\n  - ref: a\n    kind: tag\n    tag: x\n  - ref: a\n    kind: tag\n    tag: y\n",
            "steps[1].ref: `a` is used by an earlier step",
        ),
        ("steps:\n  - ref: a\n    kind: launch\n", "steps[0] (a).kind: unknown step kind `launch`"),
        ("steps:\n  - ref: a\n    kind: tag\n    tag: ${vars.X}\n", "steps[0] (a).tag"),
        ("steps:\n  - ref: a\n    kind: deploy\n    application: web\n", "needs `environment`"),
        ("steps: [", "not YAML"),
    ];
    for (yaml, message) in cases {
        let r = put_template(&s, "broken", yaml);
        r.assert_status(400);
        assert!(r.json["error"].as_str().is_some_and(|e| e.contains(message)), "{message}: {}", r.text);
    }
    s.send_raw_body("PUT", "/api/release-flows/broken", "application/json", br#"{"steps": {}}"#.to_vec())
        .assert_status(400);
    s.send_raw_body("PUT", "/api/release-flows/Bad_Name", "application/yaml", WEEKLY.as_bytes().to_vec())
        .assert_status(400);
    assert_eq!(s.local_head(), head);
    // a JSON template, and a pipeline/stage name
    let json_template = br#"{"steps": [{"ref": "t", "kind": "tag", "tag": "${args.T:-fallback}"}]}"#.to_vec();
    s.send_raw_body("PUT", "/api/release-flows/main%2Fproduction", "application/json", json_template)
        .assert_status(201);
    assert_eq!(s.get("/api/release-flows/main%2Fproduction").json["flow"], "main/production");
    // an argument with no value and no default: at run time, naming the place
    put_template(&s, "weekly", WEEKLY).assert_status(201);
    let r = run(&s, "weekly", json!({"arguments": {"TEAM": "pay"}}));
    r.assert_status(400);
    assert!(r.text.contains("steps[0] (freeze).message") && r.text.contains("RELEASE"), "{}", r.text);
}

#[test]
fn run_names_and_descriptions_follow_northflanks_patterns_at_their_boundaries() {
    let s = setup();
    put_template(&s, "weekly", WEEKLY).assert_status(201);
    let head = s.local_head();
    let dry = |name: Option<String>, description: Option<String>| {
        let mut body = json!({"arguments": {"RELEASE": "1", "TEAM": "pay"}, "dryRun": true});
        if let Some(n) = name {
            body["name"] = json!(n);
        }
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        run(&s, "weekly", body).status
    };
    let name = |n: usize| Some(format!("R{}", "a".repeat(n - 1)));
    assert_eq!(dry(name(2), None), 400);
    assert_eq!(dry(name(3), None), 200);
    assert_eq!(dry(name(39), None), 200);
    assert_eq!(dry(name(40), None), 400);
    for ok in ["Example Run", "release-42", "A1 b2-c3"] {
        assert_eq!(dry(Some(ok.into()), None), 200, "{ok}");
    }
    for bad in ["1abc", "ab--c", "abc-", "ab  c", "ab_c", "abc!"] {
        assert_eq!(dry(Some(bad.into()), None), 400, "{bad}");
    }
    let description = |n: usize| Some("d".repeat(n));
    assert_eq!(dry(None, description(200)), 200);
    assert_eq!(dry(None, description(201)), 400);
    assert_eq!(dry(None, Some("This is a description for the release-flow run.".into())), 200);
    assert_eq!(dry(None, Some("emoji 🚀".into())), 400);
    assert_eq!(dry(None, Some("<script>".into())), 400);
    let r = run(&s, "weekly", json!({"name": "x", "dryRun": true}));
    r.assert_error(400, "invalid_input", Some("name"));
    run(&s, "weekly", json!({"colour": "red"})).assert_status(400);
    assert_eq!(s.local_head(), head, "dry runs and refusals write nothing");
}
