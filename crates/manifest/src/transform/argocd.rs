//! Keeping `argocd/v1alpha1/<env>.yaml` in step with the repo. The transformers mark an environment whose Argo CD
//! objects change (its settings, the first deploy of an app there, an app removed from it, an app's team), and
//! [`finish`] regenerates each marked file once before the tree is written: a train over 1,000 apps rewrites each
//! target environment's file once, and a deploy of an app already deployed marks nothing.

use std::collections::BTreeSet;

use crate::argocd::{self, ArgoCd, Deployed, Source};
use crate::error::{Error, Result};
use crate::layout;
use crate::names::{AppName, EnvName};
use crate::request::{ArgoCdSourceSet, SetArgoCdSource};
use crate::stage::Stage;
use crate::state;

const MARK: &str = "argocd:";

/// Marks `env`'s Argo CD file for regeneration by [`finish`] (for every change of what it lists, e.g. an app
/// removed from the environment).
pub fn mark_dirty(stage: &mut Stage<'_>, env: &EnvName) {
    stage.mark(format!("{MARK}{env}"));
}

/// Marks the Argo CD files of the environments where `app` is deployed (its team is on its Applications).
pub(crate) fn mark_app(stage: &mut Stage<'_>, app: &AppName) -> Result<()> {
    for (env, cfg) in state::environments(stage)? {
        if cfg.argocd.is_some() && state::deployed_version(stage, &env, app)?.is_some() {
            mark_dirty(stage, &env);
        }
    }
    Ok(())
}

/// Regenerates every marked Argo CD file, once each; returns the environments whose file it generated (marked
/// environments without Argo CD settings only lose a file they had). Call it once before writing the tree of a
/// batch (the writer and the exporter's replay do).
pub fn finish(stage: &mut Stage<'_>) -> Result<Vec<EnvName>> {
    let mut done = Vec::new();
    for raw in stage.take_marks(MARK) {
        let env = EnvName::parse(&raw)?;
        if regenerate(stage, &env)? {
            done.push(env);
        }
    }
    Ok(done)
}

/// Where Argo CD reads the repo, as recorded by the last [`set_source`].
pub fn source(stage: &Stage<'_>) -> Result<Option<Source>> {
    match stage.read(layout::ARGOCD_SOURCE)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt { path: layout::ARGOCD_SOURCE.into(), reason: e.to_string() }),
    }
}

/// The applications deployed in `env` (an app directory without a version, e.g. only queued, is not).
fn deployed(stage: &Stage<'_>, env: &EnvName) -> Result<Vec<Deployed>> {
    let mut out = Vec::new();
    for app in state::env_applications(stage, env)? {
        if stage.exists(&layout::env_app_version(env, &app))? {
            out.push(Deployed { team: state::app_team(stage, &app)?, application: app });
        }
    }
    Ok(out)
}

/// Writes `env`'s file from the state (unchanged bytes stay unchanged; true), or removes it when the environment is
/// gone or has no Argo CD settings (false).
fn regenerate(stage: &mut Stage<'_>, env: &EnvName) -> Result<bool> {
    let path = layout::argocd_env_file(env);
    let cfg = state::env_config(stage, env)?.and_then(|c| c.argocd);
    let (Some(cfg), Some(source)) = (cfg, source(stage)?) else {
        stage.remove(&path)?;
        return Ok(false);
    };
    let apps = deployed(stage, env)?;
    let text = argocd::render(env, &argocd::objects(env, &cfg, &source, &apps)?)?;
    stage.write_if_changed(&path, text.as_bytes())?;
    Ok(true)
}

/// Records the source in a repo that uses Argo CD (one with settings or a recorded source); when it changed, every
/// environment with Argo CD settings is regenerated.
pub(super) fn set_source(stage: &mut Stage<'_>, r: &SetArgoCdSource) -> Result<ArgoCdSourceSet> {
    let envs = argocd_envs(stage, None)?;
    let changed = if envs.is_empty() && source(stage)?.is_none() { false } else { record(stage, &r.source)? };
    Ok(ArgoCdSourceSet { source: r.source.clone(), changed })
}

/// Writes `source` unless the repo already has it; when it changed, marks every environment with settings.
pub(super) fn record(stage: &mut Stage<'_>, source: &Source) -> Result<bool> {
    if source.repo_url.trim().is_empty() || source.target_revision.trim().is_empty() {
        return Err(Error::invalid("source", "the Argo CD source needs a repo URL and a branch"));
    }
    let json = serde_json::to_vec_pretty(source).map_err(|e| Error::invalid("source", e.to_string()))?;
    let changed = stage.write_if_changed(layout::ARGOCD_SOURCE, &json)?;
    if changed {
        for (_, env) in argocd_envs(stage, None)? {
            mark_dirty(stage, &env);
        }
    }
    Ok(changed)
}

/// The environments with Argo CD settings, with the stems of their object names.
fn argocd_envs(stage: &Stage<'_>, except: Option<&EnvName>) -> Result<Vec<(String, EnvName)>> {
    Ok(state::environments(stage)?
        .into_iter()
        .filter(|(env, cfg)| cfg.argocd.is_some() && Some(env) != except)
        .map(|(env, _)| (argocd::name_stem(&env), env))
        .collect())
}

/// The (environment, application) whose Application would also be named `<stem>-<app>`.
fn clash(envs: &[(String, EnvName)], apps: &BTreeSet<String>, name: &str, env: &EnvName) -> Option<(EnvName, String)> {
    envs.iter().filter(|(_, other)| other != env).find_map(|(stem, other)| {
        let rest = name.strip_prefix(stem.as_str())?.strip_prefix('-')?;
        apps.contains(rest).then(|| (other.clone(), rest.to_owned()))
    })
}

fn taken(name: &str, env: &EnvName, app: &str, other: &(EnvName, String)) -> Error {
    Error::conflict(
        "argocd_name_taken",
        format!(
            "the Argo CD Application {name:?} of {app} in {env} would also be that of {} in {}; rename one",
            other.1, other.0
        ),
    )
}

/// Checks that `env` with Argo CD settings `cfg` gets object names of its own: valid for Kubernetes, its AppProject
/// not another environment's (`review/x` and `review-x` share one), no Application shared with another environment.
pub(super) fn check_env(stage: &Stage<'_>, env: &EnvName, cfg: &ArgoCd) -> Result<()> {
    cfg.validate()?;
    let stem = argocd::name_stem(env);
    let others = argocd_envs(stage, Some(env))?;
    if let Some((_, other)) = others.iter().find(|(s, _)| *s == stem) {
        return Err(Error::conflict(
            "argocd_name_taken",
            format!("environments {env} and {other} would both have the Argo CD AppProject {stem:?}; rename one"),
        ));
    }
    let apps: BTreeSet<String> = state::applications(stage)?.iter().map(ToString::to_string).collect();
    for app in state::applications(stage)? {
        let name = argocd::application_name(env, &app)?;
        if let Some(other) = clash(&others, &apps, &name, env) {
            return Err(taken(&name, env, app.as_str(), &other));
        }
    }
    Ok(())
}

/// Checks that a new application `app` gets Application names of its own in every environment with Argo CD
/// settings (`a` + `b-c` and `a-b` + `c` would share `a-b-c`).
pub(crate) fn check_new_app(stage: &Stage<'_>, app: &AppName) -> Result<()> {
    let envs = argocd_envs(stage, None)?;
    if envs.is_empty() {
        return Ok(());
    }
    let mut apps: BTreeSet<String> = state::applications(stage)?.iter().map(ToString::to_string).collect();
    apps.insert(app.to_string());
    for (_, env) in &envs {
        let name = argocd::application_name(env, app)?;
        if let Some(other) = clash(&envs, &apps, &name, env) {
            return Err(taken(&name, env, app.as_str(), &other));
        }
    }
    Ok(())
}

/// The objects of `env`'s Argo CD file as they are in the tree (None: the environment has no file).
pub fn read(stage: &Stage<'_>, env: &EnvName) -> Result<Option<Vec<serde_json::Value>>> {
    let path = layout::argocd_env_file(env);
    match stage.read(&path)? {
        None => Ok(None),
        Some(bytes) => argocd::parse_stream(&String::from_utf8_lossy(&bytes))
            .map(Some)
            .map_err(|e| Error::Corrupt { path, reason: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::request::{
        CreateEnvironment, Deploy, ReleaseTrain, Request, TrainTarget, UpdateApplication, UpdateEnvironment,
    };
    use crate::transform::test_support::*;
    use crate::{LockBehavior, TeamName, Upstream};

    const FILE: &str = "argocd/v1alpha1/staging.yaml";

    fn argo() -> ArgoCd {
        ArgoCd::parse(&json!({"destination": {"server": "https://kubernetes.default.svc", "namespace": "web"}}))
            .unwrap()
    }

    fn source() -> Source {
        Source { repo_url: "https://git.example/manifests.git".into(), target_revision: "main".into() }
    }

    fn set_source(s: &mut Stage<'_>, url: &str) -> bool {
        let source = Source { repo_url: url.into(), target_revision: "main".into() };
        match run(s, Request::SetArgoCdSource(SetArgoCdSource { source })).unwrap() {
            crate::Outcome::ArgoCdSource(set) => set.changed,
            other => panic!("{other:?}"),
        }
    }

    fn create(s: &mut Stage<'_>, name: &str, upstream: Upstream, argocd: Option<ArgoCd>) -> Result<()> {
        let r = CreateEnvironment {
            name: env(name),
            upstream: Some(upstream),
            environment_group: None,
            tier: None,
            external_url: None,
            argocd_source: argocd.is_some().then(source),
            argocd,
        };
        run(s, Request::CreateEnvironment(r)).map(|_| ())
    }

    fn deploy(s: &mut Stage<'_>, e: &str, a: &str, version: u64) {
        let r =
            Deploy { environment: env(e), application: app(a), version: v(version), lock_behavior: LockBehavior::Fail };
        run(s, Request::Deploy(r)).unwrap();
    }

    fn names(s: &Stage<'_>, e: &str) -> Vec<String> {
        read(s, &env(e))
            .unwrap()
            .unwrap_or_default()
            .iter()
            .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()))
            .collect()
    }

    fn setup(s: &mut Stage<'_>) {
        assert!(!set_source(s, "https://git.example/manifests.git"), "a repo without settings records nothing");
        assert!(!s.exists(layout::ARGOCD_SOURCE).unwrap());
        create(s, "dev", latest(), None).unwrap();
        create(s, "staging", from_env("dev"), Some(argo())).unwrap();
        finish(s).unwrap();
    }

    #[test]
    fn an_application_comes_with_its_first_deploy_and_goes_with_its_removal() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        assert_eq!(names(&s, "staging"), ["AppProject/staging"]);
        assert!(!s.exists("argocd/v1alpha1/dev.yaml").unwrap(), "no settings, no file");
        release(&mut s, "web", None, &[("dev", "a"), ("staging", "b")]).unwrap();
        release(&mut s, "api", None, &[("dev", "a"), ("staging", "b")]).unwrap();
        deploy(&mut s, "staging", "web", 1);
        assert_eq!(finish(&mut s).unwrap(), [env("staging")]);
        assert_eq!(names(&s, "staging"), ["AppProject/staging", "Application/staging-web"]);
        let objs = read(&s, &env("staging")).unwrap().unwrap();
        assert_eq!(objs[1]["spec"]["source"]["repoURL"], "https://git.example/manifests.git");
        assert_eq!(objs[1]["metadata"]["labels"]["railyard.dev/team"], "core");

        // a redeploy marks nothing and leaves the file's blob as it was
        let before = s.blob_id(FILE).unwrap();
        release(&mut s, "web", None, &[("staging", "c")]).unwrap();
        deploy(&mut s, "staging", "web", 2);
        assert!(finish(&mut s).unwrap().is_empty());
        assert_eq!(s.blob_id(FILE).unwrap(), before);

        // removing an app from the environment (the release lifecycle's call) drops its Application
        s.remove_dir("environments/staging/applications/web").unwrap();
        mark_dirty(&mut s, &env("staging"));
        finish(&mut s).unwrap();
        assert_eq!(names(&s, "staging"), ["AppProject/staging"]);

        // an app directory without a version (only queued) is not listed
        s.write("environments/staging/applications/api/queued_version", b"1").unwrap();
        mark_dirty(&mut s, &env("staging"));
        finish(&mut s).unwrap();
        assert_eq!(names(&s, "staging"), ["AppProject/staging"]);
    }

    #[test]
    fn a_train_over_many_apps_regenerates_each_file_once() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        for i in 0..200 {
            release(&mut s, &format!("app-{i:03}"), None, &[("dev", "a"), ("staging", "b")]).unwrap();
        }
        finish(&mut s).unwrap();
        let r = ReleaseTrain {
            target: TrainTarget::Environment { environment: env("staging") },
            team: None,
            source_git_tag: None,
            source_commit: None,
            git_tag: None,
            minimize: false,
        };
        run(&mut s, Request::ReleaseTrain(r)).unwrap();
        assert_eq!(s.take_marks(MARK).len(), 1, "one mark for 200 first deploys");
        mark_dirty(&mut s, &env("staging"));
        assert_eq!(finish(&mut s).unwrap(), [env("staging")]);
        assert_eq!(names(&s, "staging").len(), 201);
    }

    #[test]
    fn settings_source_and_team_changes_rewrite_the_file_and_removal_deletes_it() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        release(&mut s, "web", None, &[("dev", "a"), ("staging", "b")]).unwrap();
        deploy(&mut s, "staging", "web", 1);
        finish(&mut s).unwrap();
        let text = |s: &Stage<'_>| s.read_text(FILE).unwrap().unwrap();
        assert!(set_source(&mut s, "https://git.example/other.git"));
        assert!(!set_source(&mut s, "https://git.example/other.git"));
        finish(&mut s).unwrap();
        assert!(text(&s).contains("https://git.example/other.git"));
        let team = UpdateApplication {
            application: app("web"),
            team: Some(TeamName::parse("pay").unwrap()),
            repository: None,
        };
        run(&mut s, Request::UpdateApplication(team)).unwrap();
        assert_eq!(finish(&mut s).unwrap(), [env("staging")]);
        assert!(text(&s).contains("railyard.dev/team: pay"));
        let update = |argocd| UpdateEnvironment {
            name: env("staging"),
            external_url: None,
            tier: None,
            upstream: None,
            environment_group: None,
            protected: None,
            argocd: Some(argocd),
            argocd_source: None,
        };
        let mut cfg = argo();
        cfg.sync_options = vec!["CreateNamespace=true".into()];
        run(&mut s, Request::UpdateEnvironment(update(Some(cfg)))).unwrap();
        finish(&mut s).unwrap();
        assert!(text(&s).contains("CreateNamespace=true"));
        run(&mut s, Request::UpdateEnvironment(update(None))).unwrap();
        finish(&mut s).unwrap();
        assert!(!s.exists(FILE).unwrap());
    }

    #[test]
    fn clashing_object_names_are_refused_at_creation() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        create(&mut s, "review/x", from_env("dev"), Some(argo())).unwrap();
        let e = create(&mut s, "review-x", from_env("dev"), Some(argo())).unwrap_err();
        assert!(matches!(e, Error::Conflict { code: "argocd_name_taken", .. }), "{e:?}");
        // without Argo CD settings the name is free
        create(&mut s, "review-x", from_env("dev"), None).unwrap();
        // staging + b-web and staging-b + web would both be staging-b-web
        create(&mut s, "staging-b", from_env("dev"), Some(argo())).unwrap();
        release(&mut s, "web", None, &[("dev", "a")]).unwrap();
        let e = release(&mut s, "b-web", None, &[("dev", "a")]).unwrap_err();
        assert!(matches!(e, Error::Conflict { code: "argocd_name_taken", .. }), "{e:?}");
        release(&mut s, "bweb", None, &[("dev", "a")]).unwrap();
        release(&mut s, "c-web", None, &[("dev", "a")]).unwrap();
        let e = create(&mut s, "staging-c", from_env("dev"), Some(argo())).unwrap_err();
        assert!(matches!(e, Error::Conflict { code: "argocd_name_taken", .. }), "{e:?}");
    }

    #[test]
    fn deleting_the_environment_deletes_its_file() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        create(&mut s, "review/fix-a", from_env("dev"), Some(argo())).unwrap();
        finish(&mut s).unwrap();
        assert!(s.exists("argocd/v1alpha1/review/fix-a.yaml").unwrap());
        run(
            &mut s,
            Request::StopEnvironment(crate::request::StopEnvironment { name: env("review/fix-a"), force: false }),
        )
        .unwrap();
        run(&mut s, Request::DeleteEnvironment(crate::request::DeleteEnvironment { name: env("review/fix-a") }))
            .unwrap();
        finish(&mut s).unwrap();
        assert!(!s.exists("argocd/v1alpha1/review/fix-a.yaml").unwrap());
    }
}
