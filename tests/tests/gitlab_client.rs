//! python-gitlab (the real client, installed from PyPI into tests/clients/.venv by the test setup or .ci/run)
//! manages environments through `/api/v4`: create, list across pages with `get_all=True`, get, update, stop,
//! delete, stop_stale and the review-app clean-up. The script asserts GitLab's behaviour; this test checks it ran to
//! the end and that its writes are on the remote. A second script reads `last_deployment` and its `sha`.

use std::path::PathBuf;
use std::process::Command;

use railyard_tests::{release_parts, Server};
use serde_json::json;

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// The venv with python-gitlab, created on first use (pip from PyPI; .ci/run does the same up front).
fn python() -> PathBuf {
    let dir = clients_dir();
    let venv = dir.join(".venv");
    let py = venv.join("bin").join("python");
    let ready = || Command::new(&py).args(["-c", "import gitlab"]).status().is_ok_and(|s| s.success());
    railyard_tests::install_once(ready, || {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 -m venv");
        assert!(ok.success(), "python3 -m venv failed (Debian: apt-get install python3-venv)");
        let ok = Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "-r"])
            .arg(dir.join("requirements.txt"))
            .status()
            .expect("pip");
        assert!(ok.success(), "pip install -r tests/clients/requirements.txt failed");
    });
    py
}

#[test]
fn python_gitlab_manages_environments_across_pages() {
    let py = python();
    let mut s = Server::start();
    let out = Command::new(py).arg(clients_dir().join("gitlab_envs.py")).arg(&s.url).output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        panic!("python-gitlab script failed:\n{stdout}\n{}\n{}", String::from_utf8_lossy(&out.stderr), s.report());
    }
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("summary");
    assert_eq!(summary["listed"], 24);
    assert_eq!(summary["left"].as_array().map(Vec::len), Some(18));
    s.wait_exported();
    let paths = s.remote_paths();
    assert!(paths.iter().any(|p| p == "environments/review/app-22/config.json"));
    assert!(!paths.iter().any(|p| p.starts_with("environments/review/app-00/")), "cleaned up");
    assert!(!paths.iter().any(|p| p.starts_with("environments/dev/")), "deleted");
}

#[test]
fn gitlab_surface_takes_form_bodies_and_answers_gitlab_headers_and_errors() {
    let s = Server::start();
    let form = |method: &str, path: &str, body: &str| {
        s.send_raw_body(method, path, "application/x-www-form-urlencoded", body.as_bytes().to_vec())
    };
    for i in 0..5 {
        let r = form(
            "POST",
            "/api/v4/projects/railyard/environments",
            &format!("name=env-{i}&external_url=https%3A%2F%2Fe{i}.example.com&tier=staging&unknown_gitlab_field=x"),
        );
        r.assert_status(201);
        assert_eq!(r.json["tier"], "staging");
        assert_eq!(r.json.get("commit"), None, "GitLab's shape");
    }
    let r =
        form("PUT", "/api/v4/projects/1/environments/2", "external_url=https%3A%2F%2Fnew.example.com&protected=true");
    r.assert_status(200);
    assert_eq!(
        (r.json["external_url"].as_str(), r.json["protected"].as_bool()),
        (Some("https://new.example.com"), Some(true))
    );

    let resp =
        s.client().get(s.at("/api/v4/projects/1/environments?per_page=2&page=2&search=env")).send().expect("GET");
    let h = resp.headers().clone();
    let names: Vec<String> = resp
        .json::<serde_json::Value>()
        .expect("json")
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(names, ["env-2", "env-3"]);
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(
        (header("x-total"), header("x-total-pages"), header("x-page"), header("x-per-page")),
        ("5".into(), "3".into(), "2".into(), "2".into())
    );
    assert_eq!((header("x-next-page"), header("x-prev-page")), ("3".into(), "1".into()));
    let link = header("link");
    assert!(
        link.contains(&format!(
            "<{}/api/v4/projects/1/environments?search=env&page=3&per_page=2>; rel=\"next\"",
            s.url
        )),
        "{link}"
    );
    assert!(link.contains("rel=\"prev\"") && link.contains("rel=\"first\"") && link.contains("rel=\"last\""), "{link}");

    let r = s.get("/api/v4/projects/1/environments/99");
    r.assert_status(404);
    assert_eq!(r.json, serde_json::json!({"message": "404 Environment Not Found"}));
    let r = s.get("/api/v4/projects/2/environments");
    r.assert_status(404);
    assert_eq!(r.json["message"], "404 Project Not Found");
    let r = s.get("/api/v4/projects/1/environments?per_page=0");
    r.assert_status(400);
    assert!(r.json["message"].is_string());

    // what is not served: GitLab's shape, not Railyard's {"error", "code"}
    for path in ["/api/v4/projects/1/merge_requests", "/api/v4/version", "/api/v4"] {
        let r = s.get(path);
        r.assert_status(404);
        assert_eq!(r.json, serde_json::json!({"message": "404 Not Found"}), "{path}");
        assert!(r.content_type.starts_with("application/json"), "{path}: {:?}", r.content_type);
    }
    for (method, path) in [("DELETE", "/api/v4/projects/1"), ("PATCH", "/api/v4/projects/1/environments/2/stop")] {
        let r = s.send_raw_body(method, path, "application/json", b"{}".to_vec());
        r.assert_status(405);
        assert_eq!(r.json, serde_json::json!({"message": "405 Method Not Allowed"}), "{method} {path}");
    }
    let r = s.raw_http("GET", "/api/v4/projects/1/environments/%FF", None, b"");
    r.assert_status(400);
    assert!(r.json["message"].as_str().is_some_and(|m| !m.is_empty()) && r.json.get("code").is_none(), "{}", r.text);
}

#[test]
fn last_deployment_carries_the_source_commit_sha() {
    let py = python();
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("prod", json!({"environment": "dev"}), None);
    s.create_env("qa", json!({"environment": "dev"}), None);
    // an upload with source_commit_id (0123abc), deployed to dev at once
    s.upload(&release_parts("web", Some("1"), &[("dev", "kind: A\n"), ("qa", "kind: A\n")])).assert_status(201);
    // a release candidate with its commit, deployed to prod
    let rc = json!({"repo": "acme/web", "commit": "fedcba9876543210", "manifests": {"prod": "kind: B\n"}});
    s.post_json("/api/releases/web/releases/2.0.0-rc1", &rc).assert_status(201);
    let d = s.post_json(
        "/api/releases/web/environments/prod/deployments",
        &json!({"release_candidate_version": "2.0.0-rc1"}),
    );
    d.assert_status(201);
    // a release without a source commit, deployed to qa: no sha
    let bare = vec![
        ("application".to_owned(), b"web".to_vec()),
        ("version".to_owned(), b"3".to_vec()),
        ("manifests[qa]".to_owned(), b"kind: C\n".to_vec()),
    ];
    s.upload(&bare).assert_status(201);
    s.deploy("qa", "web", 3, "fail").assert_status(200);

    let out = Command::new(py)
        .arg(clients_dir().join("gitlab_last_deployment.py"))
        .args([&s.url, "dev", "prod", "qa"])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python-gitlab script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("summary");
    assert_eq!((&seen["dev"]["sha"], &seen["dev"]["version"]), (&json!("0123abc"), &json!(1)), "{seen}");
    assert_eq!(seen["prod"]["sha"], "fedcba9876543210", "{seen}");
    assert_eq!(seen["prod"]["release_candidate_version"], "2.0.0-rc1", "{seen}");
    assert_eq!(seen["qa"]["version"], 3, "{seen}");
    assert!(seen["qa"].get("sha").is_none(), "a release without a source commit has no sha: {seen}");

    // the native answer carries it too
    let r = s.get("/api/environments/dev");
    r.assert_status(200);
    assert_eq!(r.json["last_deployment"]["sha"], "0123abc", "{}", r.text);
    let r = s.get("/api/environments?name=prod");
    assert_eq!(r.json["environments"][0]["last_deployment"]["sha"], "fedcba9876543210", "{}", r.text);
}
