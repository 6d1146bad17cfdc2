//! Release train over N applications (default 1,000) from dev into staging, against a baseline measured in the
//! same run: `git fast-import` writing the same tree change as one commit on the same repo.
//!
//! `cargo bench -p railyard-manifest --bench train` (env `RAILYARD_BENCH_APPS`, `RAILYARD_BENCH_RUNS`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use railyard_manifest::request::{CreateEnvironment, CreateRelease, ReleaseTrain};
use railyard_manifest::{commit, AppName, EnvName, Envelope, Identity, Outcome, Request, Stage, TrainTarget, Upstream};

const AT: &str = "2026-11-23T10:00:00Z";

fn envelope(request: Request) -> Envelope {
    Envelope { author: Identity::default(), at: AT.into(), request }
}

fn env(name: &str) -> EnvName {
    EnvName::parse(name).expect("env name")
}

/// A repo with dev (latest) and staging (upstream dev) and `apps` applications released into dev.
fn build_repo(repo: &Repository, apps: usize) -> Oid {
    let mut stage = Stage::new(repo, None);
    for (name, upstream) in [
        ("dev", Upstream { latest: Some(true), environment: None }),
        ("staging", Upstream { latest: None, environment: Some(env("dev")) }),
    ] {
        let r = CreateEnvironment {
            name: env(name),
            upstream: Some(upstream),
            environment_group: None,
            tier: None,
            external_url: None,
            argocd: None,
            argocd_source: None,
        };
        railyard_manifest::apply(&mut stage, &mut envelope(Request::CreateEnvironment(r))).expect("create env");
    }
    for i in 0..apps {
        let app = format!("app-{i:05}");
        let manifest = |e: &str| {
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\n  namespace: {e}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: {app}\n        image: registry.example/{app}:1\n")
        };
        let manifests = ["dev", "staging"]
            .iter()
            .map(|e| (env(e), repo.blob(manifest(e).as_bytes()).expect("blob").to_string()))
            .collect();
        let r = CreateRelease {
            retention: None,
            application: AppName::parse(&app).expect("app"),
            version: None,
            team: None,
            source_commit_id: "0123456789abcdef".into(),
            source_author: "bench".into(),
            source_message: "bench".into(),
            display_version: String::new(),
            manifests,
        };
        railyard_manifest::apply(&mut stage, &mut envelope(Request::CreateRelease(r))).expect("release");
    }
    let tree = stage.write_tree().expect("tree");
    commit::write_commit(repo, None, tree, &Identity::default(), "setup").expect("commit")
}

/// One train into staging on top of `base`; returns the new commit, the number of apps moved, and the time
/// spent planning and staging the edits (the rest is writing trees and the commit).
fn train(repo: &Repository, base: Oid) -> (Oid, usize, Duration) {
    let started = Instant::now();
    let tree = repo.find_commit(base).and_then(|c| c.tree()).expect("tree");
    let mut stage = Stage::new(repo, Some(tree));
    let r = ReleaseTrain {
        target: TrainTarget::Environment { environment: env("staging") },
        team: None,
        source_git_tag: None,
        source_commit: None,
        git_tag: None,
        minimize: false,
    };
    let mut e = envelope(Request::ReleaseTrain(r));
    let Ok(Outcome::Train(out)) = railyard_manifest::apply(&mut stage, &mut e) else { panic!("train failed") };
    let planned = started.elapsed();
    let tree = stage.write_tree().expect("tree");
    let c =
        commit::write_commit(repo, Some(base), tree, &Identity::default(), &commit::message(&[&e])).expect("commit");
    (c, out.environments[0].deployed.len(), planned)
}

/// The same change written by `git fast-import` as one commit on `base`.
fn fast_import(dir: &std::path::Path, base: Oid, apps: usize, manifests: &[Oid]) -> Duration {
    let mut stream = String::with_capacity(apps * 400);
    stream.push_str(&format!(
        "commit refs/heads/fast-import\ncommitter Bench <b@b> 1700000000 +0000\ndata 5\ntrain\nfrom {base}\n"
    ));
    for (i, m) in manifests.iter().enumerate().take(apps) {
        let p = format!("environments/staging/applications/app-{i:05}");
        for (file, content) in [
            ("version", "1"),
            ("deployed_by", "railyard"),
            ("deployed_by_email", "railyard@localhost"),
            ("deployed_at_utc", AT),
        ] {
            stream.push_str(&format!("M 100644 inline {p}/{file}\ndata {}\n{content}\n", content.len()));
        }
        stream.push_str(&format!("M 100644 {m} {p}/manifests/manifests.yaml\n"));
    }
    stream.push_str("done\n");
    let started = Instant::now();
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet", "--done", "--force"])
        .env("GIT_DIR", dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child.stdin.take().expect("stdin").write_all(stream.as_bytes()).expect("write stream");
    assert!(child.wait().expect("wait").success(), "fast-import failed");
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let apps: usize = std::env::var("RAILYARD_BENCH_APPS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let runs: usize = std::env::var("RAILYARD_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::init_bare(dir.path()).expect("repo");
    let base = build_repo(&repo, apps);
    let stage = Stage::new(&repo, Some(repo.find_commit(base).and_then(|c| c.tree()).expect("tree")));
    let manifests: Vec<Oid> = (0..apps)
        .map(|i| {
            let path = format!("applications/app-{i:05}/releases/1/environments/staging/manifests.yaml");
            stage.blob_id(&path).expect("read").expect("manifest")
        })
        .collect();

    let mut ours = Vec::new();
    let mut plans = Vec::new();
    let mut theirs = Vec::new();
    let mut trees = (None, None);
    for _ in 0..runs {
        let started = Instant::now();
        let (c, moved, planned) = train(&repo, base);
        ours.push(started.elapsed());
        plans.push(planned);
        assert_eq!(moved, apps, "every app moves");
        theirs.push(fast_import(dir.path(), base, apps, &manifests));
        trees = (
            Some(repo.find_commit(c).and_then(|c| c.tree()).expect("tree").id()),
            Some(repo.find_reference("refs/heads/fast-import").and_then(|r| r.peel_to_tree()).expect("tree").id()),
        );
    }
    // Same inputs, same tree: the comparison is of like with like.
    let (a, b) = trees;
    let ours_staging = repo
        .find_tree(a.expect("tree"))
        .and_then(|t| t.get_path(std::path::Path::new("environments/staging")).map(|e| e.id()));
    let theirs_staging = repo
        .find_tree(b.expect("tree"))
        .and_then(|t| t.get_path(std::path::Path::new("environments/staging")).map(|e| e.id()));
    assert_eq!(ours_staging.ok(), theirs_staging.ok(), "both write the same environments/staging tree");

    let (o, t, p) = (median(ours), median(theirs), median(plans));
    println!("release train, {apps} apps dev → staging ({runs} runs, median)");
    println!("  railyard train (plan + tree + commit): {:>8.1} ms", o.as_secs_f64() * 1e3);
    println!("    of which plan + staged edits:        {:>8.1} ms", p.as_secs_f64() * 1e3);
    println!("  git fast-import, same change:          {:>8.1} ms", t.as_secs_f64() * 1e3);
    println!("  ratio railyard / fast-import:          {:>8.2}", o.as_secs_f64() / t.as_secs_f64());
}
