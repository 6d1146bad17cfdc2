//! The release lifecycle: retention of old releases, undeploy releases, deleting an application, removing an
//! application from one environment, and rollback (deploy and lock).
//!
//! Everything that takes an application out of environments goes through two functions, so whatever else must
//! follow such a removal (the generated Argo CD Applications of the environment) is hooked in at one place:
//! [`remove_app_from_env`] for one environment, [`remove_app`] for the whole application.

use std::collections::BTreeSet;

use super::{deploy, lock, release, Ctx};
use crate::error::{Error, Result};
use crate::layout;
use crate::names::{AppName, EnvName, LockId, Version};
use crate::request::{
    ApplicationDeleted, CreateLock, CreateRelease, CreateUndeploy, DeleteApplication, LockTarget,
    RemoveFromEnvironment, RemovedFromEnvironment, Retention, Rollback, RollbackLock, RolledBack, UndeployCreated,
};
use crate::stage::Stage;
use crate::state;

/// Removes `app`'s directory from `env` (version, manifests, queued version, application locks): the one place an
/// application leaves an environment. Returns whether anything was there.
pub fn remove_app_from_env(stage: &mut Stage<'_>, env: &EnvName, app: &AppName) -> Result<bool> {
    let removed = stage.remove_dir(&layout::env_app_dir(env, app))?;
    if removed {
        // Its Argo CD Application goes with it, in the same commit.
        super::argocd::mark_dirty(stage, env);
    }
    Ok(removed)
}

/// Removes `app` everywhere: from every environment (through [`remove_app_from_env`]), its removal markers, and
/// `applications/<app>/` (team, releases, deployment records). Returns the environments it was removed from.
pub fn remove_app(stage: &mut Stage<'_>, app: &AppName) -> Result<Vec<EnvName>> {
    let mut removed = Vec::new();
    for (env, _) in state::environments(stage)? {
        if remove_app_from_env(stage, &env, app)? {
            removed.push(env.clone());
        }
        stage.remove(&layout::env_app_removed(&env, app))?;
    }
    stage.remove_dir(&layout::app_dir(app))?;
    Ok(removed)
}

/// The versions of `app` deployed or queued in any environment.
fn in_use(stage: &Stage<'_>, app: &AppName) -> Result<BTreeSet<Version>> {
    let mut out = BTreeSet::new();
    for (env, _) in state::environments(stage)? {
        out.extend(state::deployed_version(stage, &env, app)?);
        out.extend(state::queued_version(stage, &env, app)?);
    }
    Ok(out)
}

/// Retention after `uploaded` was stored: Kuberpult's rule, counting back from the oldest release still in use
/// (deployed or queued anywhere; the newest release when none is). Releases from that one on are kept, and the
/// `limit - 1` before it; older ones are deleted. So the `limit` newest are always kept, and nothing in use or newer
/// than the oldest in use is ever deleted, nor the release just uploaded. A replay (`retention.deleted` recorded)
/// deletes the recorded releases that are still there and not in use, rather than counting again.
pub(super) fn retain(
    stage: &mut Stage<'_>,
    app: &AppName,
    uploaded: Version,
    retention: &Retention,
) -> Result<Vec<Version>> {
    let versions = state::release_versions(stage, app)?;
    let used = in_use(stage, app)?;
    let doomed: Vec<Version> = match &retention.deleted {
        Some(recorded) => recorded.iter().copied().filter(|v| versions.contains(v)).collect(),
        None => {
            let limit = retention.limit as usize;
            if limit == 0 || versions.len() <= limit {
                return Ok(Vec::new());
            }
            let oldest_in_use = used.first().copied().or(versions.last().copied());
            let pos = versions.iter().position(|v| Some(*v) >= oldest_in_use).unwrap_or(versions.len());
            versions[..pos.saturating_sub(limit - 1)].to_vec()
        }
    };
    let mut deleted = Vec::new();
    for v in doomed {
        if v == uploaded || used.contains(&v) {
            continue;
        }
        if stage.remove_dir(&layout::release_dir(app, v))? {
            deleted.push(v);
        }
    }
    Ok(deleted)
}

fn require_app(stage: &Stage<'_>, app: &AppName) -> Result<()> {
    if state::app_exists(stage, app)? {
        Ok(())
    } else {
        Err(Error::not_found("application", app))
    }
}

/// Where an undeploy release of `app` gets an empty manifest: every environment the app has a directory in, and
/// every existing environment one of its releases has a manifest for (so no train can bring an old release there
/// after the undeploy), except those it was removed from.
fn undeploy_environments(stage: &Stage<'_>, app: &AppName) -> Result<Vec<EnvName>> {
    let mut envs: BTreeSet<EnvName> = state::app_environments(stage, app)?.into_iter().collect();
    for v in state::release_versions(stage, app)? {
        if let Some(rel) = state::release(stage, app, v)? {
            envs.extend(rel.environments);
        }
    }
    let mut out = Vec::new();
    for env in envs {
        if state::env_config(stage, &env)?.is_some() && !state::is_removed(stage, &env, app)? {
            out.push(env);
        }
    }
    Ok(out)
}

pub(super) fn undeploy(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &CreateUndeploy) -> Result<UndeployCreated> {
    let app = &r.application;
    require_app(stage, app)?;
    let envs = undeploy_environments(stage, app)?;
    let existing = match r.version {
        Some(v) => state::release(stage, app, v)?.map(|rel| (v, rel)),
        None => match state::release_versions(stage, app)?.last() {
            Some(&v) => state::release(stage, app, v)?.filter(|rel| rel.undeploy).map(|rel| (v, rel)),
            None => None,
        },
    };
    if let Some((version, rel)) = existing {
        if !rel.undeploy {
            return Err(Error::conflict(
                "release_exists",
                format!("release {version} of {app} already exists and is not an undeploy release"),
            ));
        }
        // Asked again (a retry, or a replay): the newest release already is the undeploy release.
        return Ok(UndeployCreated {
            application: app.clone(),
            version,
            undeploy: true,
            created: false,
            environments: rel.environments,
            deployed: vec![],
            queued: vec![],
        });
    }
    let empty = stage.put_object(git2::ObjectType::Blob, b"")?.to_string();
    let request = CreateRelease {
        application: app.clone(),
        version: r.version,
        team: None,
        source_commit_id: String::new(),
        source_author: ctx.author.name.clone(),
        source_message: format!("undeploy {app}"),
        display_version: String::new(),
        manifests: envs.iter().map(|e| (e.clone(), empty.clone())).collect(),
        retention: None,
    };
    let out = release::store(stage, ctx, &request)?;
    stage.write(&layout::release_file(app, out.version, layout::RELEASE_UNDEPLOY), b"")?;
    Ok(UndeployCreated {
        application: app.clone(),
        version: out.version,
        undeploy: true,
        created: true,
        environments: envs,
        deployed: out.deployed,
        queued: out.queued,
    })
}

pub(super) fn delete_app(stage: &mut Stage<'_>, r: &DeleteApplication) -> Result<ApplicationDeleted> {
    let app = &r.application;
    require_app(stage, app)?;
    let versions = state::release_versions(stage, app)?;
    let mut undeploy = false;
    for v in versions.iter().rev() {
        if state::is_undeploy(stage, app, *v)? {
            undeploy = true;
            break;
        }
    }
    if !undeploy && !versions.is_empty() {
        return Err(Error::conflict(
            "not_undeployed",
            format!("{app} has no undeploy release: create one (POST /api/applications/{app}/undeploy) and deploy it everywhere first"),
        ));
    }
    let mut blocked = Vec::new();
    let mut reasons = Vec::new();
    for env in state::app_environments(stage, app)? {
        let mut why = Vec::new();
        match state::deployed_version(stage, &env, app)? {
            Some(v) if state::is_undeploy(stage, app, v)? => {}
            Some(v) => why.push(format!("runs release {v}, not an undeploy release")),
            None => why.push("has no deployed version".to_owned()),
        }
        if let Some(q) = state::queued_version(stage, &env, app)? {
            if !state::is_undeploy(stage, app, q)? {
                why.push(format!("has release {q} queued"));
            }
        }
        let locks = state::locks(stage, &layout::env_app_locks_dir(&env, app))?;
        if !locks.is_empty() {
            let ids: Vec<String> = locks.iter().map(|l| format!("{:?}", l.id.as_str())).collect();
            why.push(format!("application lock {}", ids.join(", ")));
        }
        if !why.is_empty() {
            reasons.push(format!("{env} ({})", why.join("; ")));
            blocked.push(env.to_string());
        }
    }
    if !blocked.is_empty() {
        return Err(Error::Blocked {
            code: "application_in_use",
            message: format!("{app} cannot be deleted yet: {}", reasons.join(", ")),
            environments: blocked,
        });
    }
    let environments = remove_app(stage, app)?;
    Ok(ApplicationDeleted { application: app.clone(), environments, deleted_versions: versions })
}

pub(super) fn remove_from_env(
    stage: &mut Stage<'_>,
    ctx: &Ctx<'_>,
    r: &RemoveFromEnvironment,
) -> Result<RemovedFromEnvironment> {
    let (env, app) = (&r.environment, &r.application);
    state::require_env(stage, env)?;
    require_app(stage, app)?;
    let locks: Vec<_> =
        deploy::blocking_locks(stage, env, app)?.into_iter().filter(|l| l.scope == "application").collect();
    if !locks.is_empty() {
        return Err(deploy::locked_error(env, app, locks));
    }
    let removed_version = state::deployed_version(stage, env, app)?;
    let mut changed = remove_app_from_env(stage, env, app)?;
    if !state::is_removed(stage, env, app)? {
        stage.write(&layout::env_app_removed(env, app), ctx.at.as_bytes())?;
        changed = true;
    }
    Ok(RemovedFromEnvironment { environment: env.clone(), application: app.clone(), removed_version, changed })
}

pub(super) fn rollback(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &Rollback) -> Result<RolledBack> {
    let (env, app) = (&r.environment, &r.application);
    state::require_env(stage, env)?;
    require_app(stage, app)?;
    let current = state::deployed_version(stage, env, app)?.ok_or_else(|| {
        Error::conflict("not_deployed", format!("{app} is not deployed in {env}: nothing to roll back"))
    })?;
    let (version, manifest) = match r.version {
        Some(v) => {
            if v >= current {
                return Err(Error::invalid(
                    "version",
                    format!("version {v} is not older than {current}, the version of {app} in {env}"),
                ));
            }
            let rel =
                state::release(stage, app, v)?.ok_or_else(|| Error::not_found("release", format!("{app} {v}")))?;
            let manifest = *rel.manifests.get(env).ok_or_else(|| {
                Error::conflict(
                    "no_manifest_for_environment",
                    format!("release {v} of {app} has no manifest for environment {env}"),
                )
            })?;
            (v, manifest)
        }
        None => {
            let mut found = None;
            for v in state::release_versions(stage, app)?.into_iter().rev().filter(|v| *v < current) {
                if state::is_undeploy(stage, app, v)? {
                    continue;
                }
                if let Some(oid) = stage.blob_id(&layout::release_manifest(app, v, env))? {
                    found = Some((v, oid));
                    break;
                }
            }
            found.ok_or_else(|| {
                Error::conflict(
                    "no_older_release",
                    format!("{app} has no release older than {current} with a manifest for {env}"),
                )
            })?
        }
    };
    // Like a deploy, environment and team locks hold a rollback back; an application lock does not (the rollback
    // puts one there itself).
    let locks: Vec<_> =
        deploy::blocking_locks(stage, env, app)?.into_iter().filter(|l| l.scope != "application").collect();
    if !locks.is_empty() {
        return Err(deploy::locked_error(env, app, locks));
    }
    let lock_id = match &r.lock_id {
        Some(id) => id.clone(),
        None => LockId::parse(&format!("rollback-{version}"))?,
    };
    deploy::write_deployment(stage, ctx, env, app, version, manifest)?;
    let lock_request = CreateLock {
        target: LockTarget::Application { environment: env.clone(), application: app.clone() },
        lock_id: lock_id.clone(),
        message: r.message.clone(),
    };
    lock::create(stage, ctx, &lock_request)?;
    Ok(RolledBack {
        environment: env.clone(),
        application: app.clone(),
        version,
        previous_version: current,
        lock: RollbackLock { lock_id, message: r.message.clone() },
    })
}

#[cfg(test)]
mod tests {
    use crate::request::{
        CreateLock, CreateUndeploy, DeleteApplication, Deploy, LockTarget, Outcome, ReleaseTrain,
        RemoveFromEnvironment, Request, Retention, Rollback, SkipReason, TrainTarget,
    };
    use crate::transform::test_support::*;
    use crate::{Error, LockBehavior, Stage};

    fn upload(s: &mut Stage<'_>, limit: u32) -> crate::request::ReleaseCreated {
        let repo = s.repo();
        let blob = |m: &str| repo.blob(m.as_bytes()).unwrap().to_string();
        let r = crate::request::CreateRelease {
            retention: Some(Retention { limit, deleted: None }),
            ..bare_release("web", &[("dev", blob("d")), ("prod", blob("p"))])
        };
        match run(s, Request::CreateRelease(r)).unwrap() {
            Outcome::Release(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn deploy(s: &mut Stage<'_>, e: &str, version: u64) {
        let d = Deploy {
            environment: env(e),
            application: app("web"),
            version: v(version),
            lock_behavior: LockBehavior::Fail,
        };
        run(s, Request::Deploy(d)).unwrap();
    }

    fn versions(s: &Stage<'_>) -> Vec<u64> {
        crate::state::release_versions(s, &app("web")).unwrap().iter().map(|v| v.get()).collect()
    }

    #[test]
    fn retention_counts_back_from_the_oldest_release_in_use() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "prod", from_env("dev"), None);
        for _ in 0..3 {
            assert!(upload(&mut s, 3).deleted_versions.is_empty());
        }
        deploy(&mut s, "prod", 2);
        // 4 releases, prod runs 2: keep 2 and the 2 before it (only 1 exists); nothing goes.
        assert!(upload(&mut s, 3).deleted_versions.is_empty());
        assert_eq!(versions(&s), vec![1, 2, 3, 4]);
        for _ in 0..3 {
            upload(&mut s, 3);
        }
        // prod still runs 2: everything from 2 on stays, and the one before it (within the limit).
        assert_eq!(versions(&s), vec![1, 2, 3, 4, 5, 6, 7]);
        deploy(&mut s, "prod", 6);
        // prod runs 6 and dev 8: 6 and the 2 before it stay, and everything newer.
        let out = upload(&mut s, 3);
        assert_eq!(out.deleted_versions, vec![v(1), v(2), v(3)]);
        assert_eq!(versions(&s), vec![4, 5, 6, 7, 8]);
        // 0 keeps everything.
        for _ in 0..5 {
            assert!(upload(&mut s, 0).deleted_versions.is_empty());
        }
        assert_eq!(versions(&s).len(), 10);
    }

    #[test]
    fn undeploy_then_delete_app() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "prod", from_env("dev"), None);
        upload(&mut s, 0);
        let Outcome::Undeploy(u) =
            run(&mut s, Request::CreateUndeploy(CreateUndeploy { application: app("web"), version: None })).unwrap()
        else {
            panic!()
        };
        // prod never ran web, but release 1 has a manifest for it: the undeploy release covers prod too, so no
        // train can bring release 1 there afterwards.
        assert_eq!((u.version.get(), u.created, u.deployed.clone()), (2, true, vec![env("dev")]));
        assert_eq!(u.environments, vec![env("dev"), env("prod")]);
        assert_eq!(text(&s, "applications/web/releases/2/undeploy").as_deref(), Some(""));
        assert_eq!(text(&s, "environments/dev/applications/web/manifests/manifests.yaml").as_deref(), Some(""));
        let Outcome::Undeploy(again) =
            run(&mut s, Request::CreateUndeploy(CreateUndeploy { application: app("web"), version: None })).unwrap()
        else {
            panic!()
        };
        assert_eq!((again.version.get(), again.created), (2, false));
        let del = || Request::DeleteApplication(DeleteApplication { application: app("web") });
        deploy(&mut s, "prod", 1);
        match run(&mut s, del()) {
            Err(Error::Blocked { environments, .. }) => assert_eq!(environments, vec!["prod".to_owned()]),
            other => panic!("{other:?}"),
        }
        let train = ReleaseTrain {
            target: TrainTarget::Environment { environment: env("prod") },
            team: None,
            source_git_tag: None,
            source_commit: None,
            git_tag: None,
            minimize: false,
        };
        run(&mut s, Request::ReleaseTrain(train)).unwrap();
        let Outcome::ApplicationDeleted(d) = run(&mut s, del()).unwrap() else { panic!() };
        assert_eq!(d.environments, vec![env("dev"), env("prod")]);
        assert!(s.list("applications/web").unwrap().is_empty());
        assert!(s.list("environments/prod/applications/web").unwrap().is_empty());
    }

    #[test]
    fn removed_app_stays_out_until_deployed_explicitly() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "prod", from_env("dev"), None);
        upload(&mut s, 0);
        deploy(&mut s, "prod", 1);
        let remove = || {
            Request::RemoveFromEnvironment(RemoveFromEnvironment { environment: env("prod"), application: app("web") })
        };
        let Outcome::RemovedFromEnvironment(r) = run(&mut s, remove()).unwrap() else { panic!() };
        assert!(r.changed && r.removed_version == Some(v(1)));
        assert!(text(&s, "environments/prod/removed_applications/web").is_some());
        upload(&mut s, 0);
        let train = ReleaseTrain {
            target: TrainTarget::Environment { environment: env("prod") },
            team: None,
            source_git_tag: None,
            source_commit: None,
            git_tag: None,
            minimize: false,
        };
        let Outcome::Train(t) = run(&mut s, Request::ReleaseTrain(train)).unwrap() else { panic!() };
        assert_eq!(t.environments[0].skipped[0].reason, SkipReason::RemovedFromEnvironment);
        assert!(s.list("environments/prod/applications/web").unwrap().is_empty());
        deploy(&mut s, "prod", 2);
        assert!(text(&s, "environments/prod/removed_applications/web").is_none());

        run(
            &mut s,
            Request::CreateLock(CreateLock {
                target: LockTarget::Application { environment: env("prod"), application: app("web") },
                lock_id: lock_id("hold"),
                message: "m".into(),
            }),
        )
        .unwrap();
        assert!(matches!(run(&mut s, remove()), Err(Error::Locked { .. })));
    }

    #[test]
    fn rollback_deploys_the_previous_release_and_locks_it() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "prod", from_env("dev"), None);
        for _ in 0..3 {
            upload(&mut s, 0);
        }
        let rb = |version: Option<u64>| {
            Request::Rollback(Rollback {
                environment: env("dev"),
                application: app("web"),
                version: version.map(v),
                lock_id: None,
                message: "bad".into(),
            })
        };
        let Outcome::RolledBack(r) = run(&mut s, rb(None)).unwrap() else { panic!() };
        assert_eq!((r.version.get(), r.previous_version.get(), r.lock.lock_id.as_str()), (2, 3, "rollback-2"));
        assert_eq!(text(&s, "environments/dev/applications/web/version").as_deref(), Some("2"));
        assert_eq!(text(&s, "environments/dev/applications/web/locks/rollback-2/message").as_deref(), Some("bad"));
        assert!(matches!(run(&mut s, rb(Some(2))), Err(Error::Invalid { ref field, .. }) if field == "version"));
        assert!(matches!(run(&mut s, rb(Some(9))), Err(Error::Invalid { .. })));
        let Outcome::RolledBack(r) = run(&mut s, rb(Some(1))).unwrap() else { panic!() };
        assert_eq!(r.version.get(), 1);
        assert!(matches!(run(&mut s, rb(None)), Err(Error::Conflict { code: "no_older_release", .. })));
        run(
            &mut s,
            Request::CreateLock(CreateLock {
                target: LockTarget::Environment { environment: env("prod") },
                lock_id: lock_id("freeze"),
                message: "m".into(),
            }),
        )
        .unwrap();
        let d = Deploy {
            environment: env("prod"),
            application: app("web"),
            version: v(3),
            lock_behavior: LockBehavior::Ignore,
        };
        run(&mut s, Request::Deploy(d)).unwrap();
        let prod = Request::Rollback(Rollback {
            environment: env("prod"),
            application: app("web"),
            version: None,
            lock_id: None,
            message: String::new(),
        });
        assert!(matches!(run(&mut s, prod), Err(Error::Locked { .. })));
    }
}
