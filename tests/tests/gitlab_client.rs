//! python-gitlab (the real client, installed from PyPI into tests/clients/.venv by the test setup or .ci/run)
//! manages environments through `/api/v4`: create, list across pages with `get_all=True`, get, update, stop,
//! delete, stop_stale and the review-app clean-up. The script asserts GitLab's behaviour; this test checks it ran to
//! the end and that its writes are on the remote.

use std::path::PathBuf;
use std::process::Command;

use railyard_tests::Server;

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// The venv with python-gitlab, created on first use (pip from PyPI; .ci/run does the same up front).
fn python() -> PathBuf {
    let dir = clients_dir();
    let venv = dir.join(".venv");
    let py = venv.join("bin").join("python");
    let ready = Command::new(&py).args(["-c", "import gitlab"]).status().is_ok_and(|s| s.success());
    if !ready {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 -m venv");
        assert!(ok.success(), "python3 -m venv failed (Debian: apt-get install python3-venv)");
        let ok = Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "-r"])
            .arg(dir.join("requirements.txt"))
            .status()
            .expect("pip");
        assert!(ok.success(), "pip install -r tests/clients/requirements.txt failed");
    }
    py
}

#[test]
fn python_gitlab_manages_environments_across_pages() {
    let py = python();
    let s = Server::start();
    let out = Command::new(py).arg(clients_dir().join("gitlab_envs.py")).arg(&s.url).output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python-gitlab script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("summary");
    assert_eq!(summary["listed"], 24);
    assert_eq!(summary["left"].as_array().map(Vec::len), Some(18));
    s.wait_exported();
    let paths = s.remote_paths();
    assert!(paths.iter().any(|p| p == "environments/review/app-22/config.json"));
    assert!(!paths.iter().any(|p| p.starts_with("environments/review/app-00/")), "cleaned up");
    assert!(!paths.iter().any(|p| p.starts_with("environments/dev/")), "deleted");
}
