//! A deploy of an application already in an environment, in-process (transformer, Argo CD step and tree write into
//! memory; no HTTP, no pack, no fsync), in an environment of 10 and of 1,000 applications, with and without Argo CD
//! settings: the Argo CD step reads nothing for such a deploy, so what grows with the applications is git's tree of
//! the environment alone.
//!
//! `cargo bench -p railyard-manifest --bench deploy` (env `RAILYARD_BENCH_DEPLOYS`, default 2000).

use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use railyard_manifest::argocd::{ArgoCd, Source};
use railyard_manifest::request::{CreateEnvironment, CreateRelease, Deploy, ReleaseTrain, SetArgoCdSource};
use railyard_manifest::{AppName, EnvName, Envelope, Identity, LockBehavior, Request, Stage, TrainTarget, Upstream};

fn apply(stage: &mut Stage<'_>, request: Request) {
    let mut e = Envelope { author: Identity::default(), at: "2026-11-23T10:00:00Z".into(), request };
    railyard_manifest::apply(stage, &mut e).expect("applies");
}

fn env(name: &str) -> EnvName {
    EnvName::parse(name).expect("env")
}

fn app(i: usize) -> AppName {
    AppName::parse(&format!("app-{i:05}")).expect("app")
}

/// dev (latest) and staging (upstream dev, Argo CD settings if `argocd`), `apps` apps with releases 1 and 2, all
/// trained into staging.
fn build(repo: &Repository, apps: usize, argocd: bool) -> Oid {
    let mut stage = Stage::new(repo, None);
    let settings = ArgoCd::parse(&serde_json::json!({"destination": {"server": "https://kubernetes.default.svc"}}));
    for (name, upstream, cfg) in [
        ("dev", Upstream { latest: Some(true), environment: None }, None),
        (
            "staging",
            Upstream { latest: None, environment: Some(env("dev")) },
            argocd.then(|| settings.expect("settings")),
        ),
    ] {
        let source = Source { repo_url: "https://git.example/m.git".into(), target_revision: "main".into() };
        let r = CreateEnvironment {
            name: env(name),
            upstream: Some(upstream),
            environment_group: None,
            tier: None,
            external_url: None,
            argocd_source: cfg.as_ref().map(|_| source),
            argocd: cfg,
        };
        apply(&mut stage, Request::CreateEnvironment(r));
    }
    for version in 1..=2u64 {
        for i in 0..apps {
            let blob = repo.blob(format!("kind: ConfigMap # {i} {version}\n").as_bytes()).expect("blob").to_string();
            let manifests = [(env("dev"), blob.clone()), (env("staging"), blob)].into_iter().collect();
            let r = CreateRelease {
                application: app(i),
                version: None,
                team: None,
                source_commit_id: String::new(),
                source_author: String::new(),
                source_message: String::new(),
                display_version: String::new(),
                manifests,
                retention: None,
            };
            apply(&mut stage, Request::CreateRelease(r));
        }
    }
    let train = ReleaseTrain {
        target: TrainTarget::Environment { environment: env("staging") },
        team: None,
        source_git_tag: None,
        source_commit: None,
        git_tag: None,
        minimize: false,
    };
    apply(&mut stage, Request::ReleaseTrain(train));
    let source = Source { repo_url: "https://git.example/m.git".into(), target_revision: "main".into() };
    apply(&mut stage, Request::SetArgoCdSource(SetArgoCdSource { source }));
    railyard_manifest::finish(&mut stage).expect("finish");
    stage.write_tree().expect("tree")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// libgit2 as the binaries set it up (`railyard_export::transport::init_libgit2`): no re-hashing of every object
/// read, and trees up to 4 MiB in the object cache.
#[allow(unsafe_code)]
fn init_libgit2() {
    git2::opts::strict_hash_verification(false);
    // SAFETY: called first thing in `main`, before any other thread exists, as git2 documents.
    unsafe { git2::opts::set_cache_object_limit(git2::ObjectType::Tree, 4 << 20) }.expect("cache limit");
}

fn main() {
    init_libgit2();
    let deploys: usize = std::env::var("RAILYARD_BENCH_DEPLOYS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    println!("| apps in the environment | Argo CD settings | deploy median (µs) | vs 10 apps | of it the Argo CD step (µs) |");
    println!("|---|---|---|---|---|");
    let mut base = [Duration::ZERO; 2];
    for argocd in [true, false] {
        for apps in [10, 1_000] {
            let dir = tempfile::tempdir().expect("dir");
            let repo = Repository::init_bare(dir.path()).expect("repo");
            // Objects go to memory, as the writer's batch does until it packs them: the figures are the CPU cost of
            // the transformer, the Argo CD step and the tree build, not the creation of loose object files (whose
            // cost in the filesystem varied more between runs than the whole deploy does with its applications).
            let odb = repo.odb().expect("odb");
            let _memory = odb.add_new_mempack_backend(1000).expect("mempack");
            let tree = repo.find_tree(build(&repo, apps, argocd)).expect("tree");
            let (mut total, mut step) = (Vec::new(), Vec::new());
            for i in 0..deploys {
                let started = Instant::now();
                let mut stage = Stage::new(&repo, Some(tree.clone()));
                let r = Deploy {
                    environment: env("staging"),
                    application: app(i % apps),
                    version: railyard_manifest::Version::new(1).expect("version"),
                    lock_behavior: LockBehavior::Fail,
                };
                apply(&mut stage, Request::Deploy(r));
                let before = Instant::now();
                let regenerated = railyard_manifest::finish(&mut stage).expect("finish");
                step.push(before.elapsed());
                assert!(regenerated.is_empty(), "a redeploy regenerates nothing");
                stage.write_tree().expect("tree");
                total.push(started.elapsed());
            }
            let (t, s) = (median(total), median(step));
            if apps == 10 {
                base[usize::from(argocd)] = t;
            }
            println!(
                "| {apps} | {argocd} | {:.0} | {:.2} | {:.1} |",
                t.as_secs_f64() * 1e6,
                t.as_secs_f64() / base[usize::from(argocd)].as_secs_f64(),
                s.as_secs_f64() * 1e6
            );
        }
    }
}
