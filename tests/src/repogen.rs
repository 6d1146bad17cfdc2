//! Large manifest repos for benchmarks and load tests: N applications × M environments × K releases of history,
//! padded with small commits to a given history length. Written with Railyard's own transformers and commit format,
//! so the layout is exactly what the API writes, and the API can be started on it.

use std::path::Path;

use git2::{Oid, Repository};
use railyard_manifest::{commit, Envelope, Identity, Stage};
use serde_json::json;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct RepoSpec {
    /// Applications `app-00000`, `app-00001`, …
    pub apps: usize,
    /// Environments `env-0` (upstream `latest`), `env-1` (upstream `env-0`), …
    pub envs: usize,
    /// Release commits, spread round-robin over the applications (each with a manifest for every environment).
    pub releases: usize,
    /// Further release commits, all of `app-00000` (an application with a long release history).
    pub hot_releases: usize,
    /// Total commits; beyond the releases, lock/unlock commits on `env-0` (lock id `filler`) pad the history.
    pub commits: usize,
    /// Every environment but `env-0` has Argo CD settings (in-cluster, namespace `apps`), so
    /// `argocd/v1alpha1/<env>.yaml` lists its applications (none until a train or deploy moves them there).
    pub argocd: bool,
}

/// The Argo CD source the generated repo records (what `--git-url` of the benches' servers is not: Argo CD reads
/// a URL of its own).
pub const ARGOCD_REPO_URL: &str = "https://git.example/manifests.git";

pub fn app(i: usize) -> String {
    format!("app-{i:05}")
}

pub fn env(i: usize) -> String {
    format!("env-{i}")
}

fn envelope(request: serde_json::Value) -> Envelope {
    serde_json::from_value(json!({"author": {"name": "repogen", "email": "repogen@localhost"}, "at": "2026-11-23T10:00:00Z", "request": request}))
        .expect("envelope")
}

/// Creates (or extends) the bare repo at `repo_dir` per `spec`; moves `refs/heads/main` once at the end and returns it.
pub fn generate(repo_dir: &Path, spec: &RepoSpec) -> Oid {
    let repo = Repository::open_bare(repo_dir).or_else(|_| Repository::init_bare(repo_dir)).expect("repo");
    let mut head: Option<Oid> = None;
    let mut commits = 0;
    let step = |head: &mut Option<Oid>, requests: Vec<serde_json::Value>| {
        let base = head.map(|h| repo.find_commit(h).and_then(|c| c.tree()).expect("tree"));
        let mut stage = Stage::new(&repo, base);
        let mut applied = Vec::with_capacity(requests.len());
        for r in requests {
            let mut e = envelope(r);
            railyard_manifest::apply(&mut stage, &mut e).expect("generated request applies");
            applied.push(e);
        }
        railyard_manifest::finish(&mut stage).expect("Argo CD files");
        let tree = stage.write_tree().expect("tree");
        let refs: Vec<&Envelope> = applied.iter().collect();
        *head = Some(
            commit::write_commit(&repo, *head, tree, &Identity::default(), &commit::message(&refs)).expect("commit"),
        );
    };
    let mut envs: Vec<serde_json::Value> = (0..spec.envs)
        .map(|i| {
            let upstream = if i == 0 { json!({"latest": true}) } else { json!({"environment": env(i - 1)}) };
            let mut r = json!({"kind": "create-environment", "name": env(i), "upstream": upstream});
            if spec.argocd && i > 0 {
                r["argocd"] = json!({"destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"}});
            }
            r
        })
        .collect();
    if spec.argocd {
        let source = json!({"repoURL": ARGOCD_REPO_URL, "targetRevision": "main"});
        envs.push(json!({"kind": "set-argo-cd-source", "source": source}));
    }
    step(&mut head, envs);
    commits += 1;
    for r in 0..spec.releases + spec.hot_releases {
        let a = if r < spec.releases { app(r % spec.apps.max(1)) } else { app(0) };
        let manifests: serde_json::Map<String, serde_json::Value> = (0..spec.envs)
            .map(|e| {
                let text = format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {a}\n  namespace: {}\n  annotations:\n    release: \"{r}\"\n", env(e));
                (env(e), json!(repo.blob(text.as_bytes()).expect("blob").to_string()))
            })
            .collect();
        step(
            &mut head,
            vec![
                json!({"kind": "create-release", "application": a, "team": "team-a", "source_commit_id": format!("{r:040x}"), "manifests": manifests}),
            ],
        );
        commits += 1;
    }
    let mut locked = false;
    while commits < spec.commits {
        let target = json!({"scope": "environment", "environment": env(0)});
        let r = if locked {
            json!({"kind": "delete-lock", "target": target, "lock_id": "filler"})
        } else {
            json!({"kind": "create-lock", "target": target, "lock_id": "filler", "message": "history"})
        };
        locked = !locked;
        step(&mut head, vec![r]);
        commits += 1;
    }
    let head = head.expect("at least one commit");
    repo.reference("refs/heads/main", head, true, "repogen").expect("branch");
    head
}
