//! Boolean flags of both servers: the bare form (`--minimize-exported-data`) means true, and `=true`, `=false`,
//! `--flag false` and the `RAILYARD_*` variable still work.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use railyard_tests::{bin, Server};
use serde_json::json;

/// Two environments and a release, trained once (the head after it), then a second train to `staging` that moves
/// nothing (its answer).
fn noop_train(s: &Server) -> (Option<git2::Oid>, railyard_tests::Reply) {
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s.release("web", Some("1"), &[("dev", "kind: A\n"), ("staging", "kind: A\n")]).assert_status(201);
    let first = s.put_json("/api/environments/staging/releasetrain", &json!({}));
    first.assert_status(200);
    assert!(first.commit().is_some(), "the first train moves web: {}", first.text);
    let head = s.local_head();
    let r = s.put_json("/api/environments/staging/releasetrain", &json!({}));
    r.assert_status(200);
    (head, r)
}

#[test]
fn bare_minimize_exported_data_means_true() {
    let s = Server::start_with(&["--minimize-exported-data"]);
    let (head, r) = noop_train(&s);
    assert_eq!(r.commit(), None, "a no-op train with bare --minimize-exported-data makes no commit: {}", r.text);
    assert_eq!(s.local_head(), head);
    assert_eq!(Some(s.wait_exported()), head, "nothing new on the remote");
}

#[test]
fn minimize_exported_data_takes_equals_false_and_the_environment() {
    let s = Server::start_with(&["--minimize-exported-data=false"]);
    let (_, r) = noop_train(&s);
    assert!(r.commit().is_some(), "=false keeps Kuberpult's marking commit: {}", r.text);

    let dir = tempfile::tempdir().expect("dir");
    let remote = dir.path().join("remote.git");
    let s = Server::start_in_with_git_url_env(dir, &remote, &[], &[("RAILYARD_MINIMIZE_EXPORTED_DATA", "true")]);
    assert_eq!(noop_train(&s).1.commit(), None, "RAILYARD_MINIMIZE_EXPORTED_DATA=true");
}

/// Starts `railyard-api` on a non-loopback address without tokens; Ok(address) once it listens, Err(what it
/// printed) when it exits.
fn start_unauthenticated(flags: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(bin("railyard-api"))
        .args(["--listen", "0.0.0.0:0", "--log-format", "json"])
        .arg("--repo-dir")
        .arg(dir.path().join("repo.git"))
        .arg("--git-url")
        .arg(dir.path().join("remote.git"))
        .args(flags)
        .env_remove("RAILYARD_INSECURE_NO_AUTH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start railyard-api");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let listening = stdout.lines().map_while(Result::ok).find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        v["fields"]["listen"].as_str().map(str::to_owned)
    });
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    listening.ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn insecure_no_auth_takes_the_bare_form_and_a_value() {
    for flags in [&["--insecure-no-auth"][..], &["--insecure-no-auth=true"], &["--insecure-no-auth", "true"]] {
        let addr = start_unauthenticated(flags).unwrap_or_else(|e| panic!("{flags:?} refused: {e}"));
        assert!(addr.starts_with("0.0.0.0:"), "{addr}");
    }
    for flags in [&[][..], &["--insecure-no-auth=false"]] {
        let err = start_unauthenticated(flags).expect_err("listening on 0.0.0.0 without auth");
        assert!(err.contains("refusing to listen"), "{flags:?}: {err}");
    }
}
