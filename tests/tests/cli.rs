//! The `railyard` CLI: a subcommand for every API call, table and JSON output, exit codes 0/1/2, completions; tables
//! with their columns in the order people read them; `railyard status`, the environment × application matrix.

use std::process::Command;

use railyard_tests::{bin, Server};
use railyard_wire::{Environment, EnvironmentList, Overview};

fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("railyard")).arg("--url").arg(&s.url).args(args).output().expect("run railyard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(s: &Server, args: &[&str]) -> String {
    let (code, out, err) = cli(s, args);
    assert_eq!(code, 0, "railyard {args:?}: {out}{err}");
    out
}

#[test]
fn every_call_has_a_subcommand() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("dir");
    let manifest = dir.path().join("m.yaml");
    std::fs::write(&manifest, "kind: Deployment\n").expect("write");
    let m = manifest.to_str().expect("path");

    ok(&s, &["envs", "create", "dev", "--upstream-latest"]);
    ok(&s, &["envs", "create", "prod", "--upstream", "dev", "--tier", "production"]);
    ok(&s, &["envs", "create", "review/fix-a", "--upstream", "dev"]);
    let table = ok(&s, &["envs", "list"]);
    assert!(table.contains("review/fix-a") && table.contains("production"), "{table}");
    let prod: Environment =
        serde_json::from_str(&ok(&s, &["--output", "json", "envs", "get", "prod"])).expect("environment");
    assert_eq!(prod.config.tier, "production");

    let out = ok(
        &s,
        &[
            "release",
            "--application",
            "web",
            "--team",
            "pay",
            "--manifest",
            &format!("dev={m}"),
            "--manifest",
            &format!("prod={m}"),
        ],
    );
    assert!(out.contains("version") && out.contains('1'), "{out}");
    ok(&s, &["deploy", "--environment", "prod", "--application", "web", "--version", "1"]);
    ok(&s, &["lock", "--environment", "prod", "--lock-id", "freeze", "--message", "hold on"]);
    ok(&s, &["lock", "--environment", "prod", "--application", "web", "--lock-id", "a1"]);
    s.wait_exported();
    assert_eq!(s.remote_file("environments/prod/applications/web/version").as_deref(), Some("1"));
    assert_eq!(s.remote_file("environments/prod/locks/freeze/message").as_deref(), Some("hold on"));
    ok(&s, &["unlock", "--environment", "prod", "--lock-id", "freeze"]);
    ok(&s, &["unlock", "--environment", "prod", "--application", "web", "--lock-id", "a1"]);

    ok(
        &s,
        &[
            "release-candidate",
            "--project",
            "web",
            "--rc",
            "2.0.0-rc1",
            "--repo",
            "acme/web",
            "--commit",
            "abcdef0",
            "--manifest",
            &format!("prod={m}"),
        ],
    );
    let d = ok(
        &s,
        &["--output", "json", "deployment", "create", "--project", "web", "--environment", "prod", "--rc", "2.0.0-rc1"],
    );
    assert!(d.contains("\"pending\""), "{d}");
    ok(
        &s,
        &[
            "deployment",
            "status",
            "--project",
            "web",
            "--environment",
            "prod",
            "--rc",
            "2.0.0-rc1",
            "--status",
            "success",
        ],
    );

    let flow = dir.path().join("flow.yaml");
    std::fs::write(&flow, "steps:\n  - ref: t\n    kind: tag\n    tag: cli-${args.N}\n").expect("write");
    ok(&s, &["flow", "put", "tagger", flow.to_str().expect("path")]);
    assert!(ok(&s, &["flow", "get", "tagger"]).contains("cli-${args.N}"));
    let run = ok(&s, &["--output", "json", "flow", "run", "tagger", "--arg", "N=7", "--name", "From the CLI"]);
    assert!(run.contains("\"succeeded\""), "{run}");
    assert!(ok(&s, &["flow", "runs", "tagger"]).contains("From the CLI"));

    ok(&s, &["envs", "stop", "review/fix-a"]);
    ok(&s, &["envs", "delete", "review/fix-a"]);
    s.wait_exported();
    assert!(!s.remote_paths().iter().any(|p| p.starts_with("environments/review/")));
    assert_eq!(
        s.remote_file("environments/prod/applications/web/version").as_deref(),
        Some("2"),
        "the candidate's release"
    );

    // exit codes: 1 when the API refuses, 2 for bad usage; completions
    let (code, _, err) = cli(&s, &["envs", "delete", "prod"]);
    assert_eq!(code, 1);
    assert!(err.contains("409"), "{err}");
    assert_eq!(cli(&s, &["deploy", "--environment", "prod"]).0, 2);
    let (code, script, _) = cli(&s, &["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(script.contains("railyard") && script.contains("release-candidate"));
}

/// The cells of each line of a table (columns are separated by two or more spaces).
fn cells(table: &str) -> Vec<Vec<String>> {
    table.lines().map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()).collect()
}

#[test]
fn environment_tables_lead_with_what_people_look_for() {
    let s = Server::start();
    ok(&s, &["envs", "create", "dev", "--upstream-latest"]);
    ok(&s, &["environments", "create", "prod", "--upstream", "dev", "--tier", "production", "--group", "live"]);
    ok(&s, &["lock", "--environment", "prod", "--lock-id", "freeze", "--message", "hold on"]);
    for cmd in ["envs", "environments"] {
        let rows = cells(&ok(&s, &[cmd, "list"]));
        assert_eq!(rows[0], ["NAME", "STATE", "TIER", "UPSTREAM", "GROUP", "LOCKS", "UPDATED_AT"], "{cmd}: {rows:?}");
        assert_eq!(rows[1][..6], ["dev", "available", "development", "latest", "-", "-"], "{rows:?}");
        assert_eq!(rows[2][..6], ["prod", "available", "production", "dev", "live", "freeze"], "{rows:?}");
    }
    let one = ok(&s, &["environments", "get", "prod"]);
    let keys: Vec<&str> = one.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(keys[..6], ["name", "id", "state", "tier", "upstream", "environmentGroup"], "{one}");
    assert_eq!(keys.last(), Some(&"updated_at"), "{one}");
    let list: EnvironmentList =
        serde_json::from_str(&ok(&s, &["--output", "json", "environments", "list"])).expect("environments");
    let upstream = list.environments[1].config.upstream.as_ref().and_then(|u| u.environment.as_deref());
    assert_eq!(upstream, Some("dev"), "json is the API's answer");
}

#[test]
fn status_shows_versions_queues_and_locks_per_environment_and_application() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("dir");
    let manifest = dir.path().join("m.yaml");
    std::fs::write(&manifest, "kind: Deployment\n").expect("write");
    let m = manifest.to_str().expect("path");
    ok(&s, &["envs", "create", "dev", "--upstream-latest"]);
    ok(&s, &["envs", "create", "staging", "--upstream", "dev"]);
    ok(&s, &["envs", "create", "prod", "--upstream", "staging"]);
    let manifests = [format!("dev={m}"), format!("staging={m}"), format!("prod={m}")];
    for (app, team) in [("web", "pay"), ("api", "core")] {
        let mut args = vec!["release", "--application", app, "--team", team];
        for spec in &manifests {
            args.extend(["--manifest", spec.as_str()]);
        }
        ok(&s, &args);
        ok(&s, &args);
    }
    ok(&s, &["deploy", "--environment", "staging", "--application", "web", "--version", "1"]);
    ok(&s, &["deploy", "--environment", "staging", "--application", "api", "--version", "2"]);
    ok(&s, &["lock", "--environment", "staging", "--application", "web", "--lock-id", "a1", "--message", "flaky"]);
    ok(
        &s,
        &["deploy", "--environment", "staging", "--application", "web", "--version", "2", "--lock-behavior", "queue"],
    );
    ok(&s, &["lock", "--environment", "staging", "--team", "core", "--lock-id", "t1", "--message", "core on call"]);
    ok(&s, &["lock", "--environment", "prod", "--lock-id", "freeze", "--message", "release freeze"]);

    let out = ok(&s, &["status"]);
    let rows = cells(&out);
    // environments in the order releases flow (not by name: prod before staging)
    assert_eq!(rows[0], ["APPLICATION", "TEAM", "dev", "staging", "prod [E]"], "{out}");
    assert_eq!(rows[1], ["api", "core", "2", "2 [T]", "-"], "{out}");
    assert_eq!(rows[2], ["web", "pay", "2", "1 >2 [A]", "-"], "{out}");
    let locks: Vec<&Vec<String>> = rows.iter().filter(|r| r.len() == 6 && r[0] != "LOCK").collect();
    let kinds: Vec<(&str, &str, &str, &str)> =
        locks.iter().map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("team", "staging/core", "t1", "core on call"),
            ("application", "staging/web", "a1", "flaky"),
            ("environment", "prod", "freeze", "release freeze"),
        ],
        "{out}"
    );

    let core = cells(&ok(&s, &["status", "--team", "core"]));
    assert_eq!(core[1], ["api", "core", "2", "2 [T]", "-"], "{core:?}");
    assert!(!core.iter().any(|r| r.first().is_some_and(|c| c == "web")), "{core:?}");
    assert!(!core.iter().any(|r| r.contains(&"a1".to_owned())), "another team's app lock: {core:?}");
    let overview: Overview =
        serde_json::from_str(&ok(&s, &["status", "--team", "pay", "--output", "json"])).expect("overview");
    let apps: Vec<&str> =
        overview.environments.iter().flat_map(|e| &e.applications).map(|a| a.application.as_str()).collect();
    assert_eq!(apps, ["web", "web"], "{overview:?}");

    let help = ok(&s, &["status", "--help"]);
    for mark in [">13", "[A]", "[T]", "[E]"] {
        assert!(help.contains(mark), "status --help explains {mark}: {help}");
    }
}
