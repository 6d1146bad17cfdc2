//! railyard-wire's answer types against the real server's answers: each answer reads into its wire type, and every
//! member the wire type names (written back out) is one the server sent, at the same place. An answer type whose
//! field the server renamed or dropped would otherwise read as a silent default (they tolerate absent fields).

use railyard_tests::Server;
use railyard_wire::{ArgoCdObjects, Environment, EnvironmentList, FlowRuns, HistoryPage, Overview, Train};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// The members of `ours` missing from `theirs`, as paths (arrays: every element of ours against the same index).
fn missing(ours: &Value, theirs: &Value, at: &str, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, v) in o {
                match t.get(k) {
                    Some(tv) => missing(v, tv, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}")),
                }
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, (ov, tv)) in o.iter().zip(t).enumerate() {
                missing(ov, tv, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Reads `answer` as `T` and checks that what `T` holds is what the server said.
fn agrees<T: DeserializeOwned + Serialize>(what: &str, answer: &Value) -> T {
    let typed: T = serde_json::from_value(answer.clone()).unwrap_or_else(|e| panic!("{what}: {e}: {answer}"));
    let back = serde_json::to_value(&typed).expect("serialise");
    let mut out = Vec::new();
    missing(&back, answer, what, &mut out);
    assert!(out.is_empty(), "{what}: the wire type names members the server did not send: {out:?}\n{answer}");
    typed
}

#[test]
fn the_wire_answer_types_read_what_the_server_answers() {
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    let argocd = json!({"destination": {"server": "https://k8s.example", "namespace": "web"}});
    s.post_json(
        "/api/environments",
        &json!({"name": "prod", "upstream": {"environment": "dev"}, "tier": "production", "argocd": argocd}),
    )
    .assert_status(201);
    s.release("web", Some("1"), &[("dev", "kind: A\n"), ("prod", "kind: A\n")]).assert_status(201);
    s.release("web", Some("2"), &[("dev", "kind: A\n"), ("prod", "kind: A\n")]).assert_status(201);
    s.put_json("/api/environments/dev/locks/freeze", &json!({"message": "hold"})).assert_status(200);
    let train = s.put_json("/api/environments/prod/releasetrain", &json!({}));
    train.assert_status(200);
    let t: Train = agrees("train", &train.json);
    assert_eq!(t.environments.len(), 1, "{}", train.json);
    assert_eq!(t.environments[0].deployed.len(), 1, "{}", train.json);
    let flow = "steps:\n  - ref: freeze\n    kind: lock\n    environment: prod\n    lockId: f\n    message: m\n";
    s.send_raw_body("PUT", "/api/release-flows/weekly", "application/yaml", flow.as_bytes().to_vec())
        .assert_status(201);
    s.post_json("/api/release-flows/weekly/runs", &json!({"name": "first"})).assert_status(201);

    let overview = s.get("/api/overview");
    let o: Overview = agrees("overview", &overview.json);
    assert_eq!(o.environments.len(), 2, "{}", overview.json);
    let list: EnvironmentList = agrees("environments", &s.get("/api/environments").json);
    assert_eq!(list.environments.len(), 2);
    let prod: Environment = agrees("environment", &s.get("/api/environments/prod").json);
    assert_eq!(
        (prod.config.tier.as_str(), prod.config.upstream.and_then(|u| u.environment)),
        ("production", Some("dev".into()))
    );
    let runs: FlowRuns = agrees("flow runs", &s.get("/api/release-flows/weekly/runs").json);
    assert_eq!(runs.runs.len(), 1);
    let history: HistoryPage = agrees("history", &s.get("/api/history").json);
    assert!(history.entries.iter().any(|e| e.action == "lock"), "{history:?}");
    agrees::<ArgoCdObjects>("argocd", &s.get("/api/environments/prod/argocd").json);
}
