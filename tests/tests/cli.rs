//! The `railyard` CLI: a subcommand for every API call, table and JSON output, exit codes 0/1/2, completions; tables
//! with their columns in the order people read them.

use std::process::Command;

use railyard_tests::{bin, Server};

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
    let json: serde_json::Value =
        serde_json::from_str(&ok(&s, &["--output", "json", "envs", "get", "prod"])).expect("json");
    assert_eq!(json["tier"], "production");

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
    let json: serde_json::Value =
        serde_json::from_str(&ok(&s, &["--output", "json", "environments", "list"])).expect("json");
    assert_eq!(json["environments"][1]["upstream"]["environment"], "dev", "json is the API's answer");
}
