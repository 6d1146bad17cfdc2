//! deploy, and the deployment step shared with releases (and later trains).

use git2::Oid;

use super::{argocd, Ctx};
use crate::error::{BlockingLock, Error, Result};
use crate::layout;
use crate::names::{AppName, EnvName, Version};
use crate::request::{Deploy, Deployed, LockBehavior};
use crate::stage::Stage;
use crate::state;

/// The environment, application and team locks that hold `app` back in `env`.
pub fn blocking_locks(stage: &Stage<'_>, env: &EnvName, app: &AppName) -> Result<Vec<BlockingLock>> {
    let mut out = Vec::new();
    let mut add = |scope: &'static str, locks: Vec<crate::model::Lock>| {
        out.extend(locks.into_iter().map(|l| BlockingLock {
            scope,
            environment: env.to_string(),
            lock_id: l.id.to_string(),
            message: l.message,
        }));
    };
    add("environment", state::locks(stage, &layout::env_locks_dir(env))?);
    add("application", state::locks(stage, &layout::env_app_locks_dir(env, app))?);
    if let Some(team) = state::app_team(stage, app)? {
        add("team", state::locks(stage, &layout::env_team_locks_dir(env, &team))?);
    }
    Ok(out)
}

/// Writes `app` at `version` (manifest blob `manifest`) into `env`, clearing any queued version.
pub(crate) fn write_deployment(
    stage: &mut Stage<'_>,
    ctx: &Ctx<'_>,
    env: &EnvName,
    app: &AppName,
    version: Version,
    manifest: Oid,
) -> Result<()> {
    // Only a first deploy changes what the environment's Argo CD file lists: a redeploy reads nothing more.
    if !stage.exists(&layout::env_app_version(env, app))? {
        argocd::mark_dirty(stage, env);
    }
    stage.write(&layout::env_app_version(env, app), version.to_string().as_bytes())?;
    stage.put_blob(&layout::env_app_manifests(env, app), manifest);
    stage.write(&layout::env_app_deployed_by(env, app), ctx.author.name.as_bytes())?;
    stage.write(&layout::env_app_deployed_by_email(env, app), ctx.author.email.as_bytes())?;
    stage.write(&layout::env_app_deployed_at(env, app), ctx.at.as_bytes())?;
    stage.remove(&layout::env_app_queued_version(env, app))?;
    stage.remove(&layout::env_app_removed(env, app))?;
    Ok(())
}

/// Records `version` as waiting behind a lock.
pub(crate) fn write_queued(stage: &mut Stage<'_>, env: &EnvName, app: &AppName, version: Version) -> Result<()> {
    stage.write_if_changed(&layout::env_app_queued_version(env, app), version.to_string().as_bytes())?;
    stage.remove(&layout::env_app_removed(env, app))?;
    Ok(())
}

pub(super) fn locked_error(env: &EnvName, app: &AppName, locks: Vec<BlockingLock>) -> Error {
    let list: Vec<String> = locks.iter().map(|l| format!("{} lock {:?} ({})", l.scope, l.lock_id, l.message)).collect();
    Error::Locked { message: format!("{app} is locked in {env}: {}", list.join("; ")), locks }
}

pub(super) fn deploy(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &Deploy) -> Result<Deployed> {
    state::require_env(stage, &r.environment)?;
    if !state::app_exists(stage, &r.application)? {
        return Err(Error::not_found("application", &r.application));
    }
    let release = state::release(stage, &r.application, r.version)?
        .ok_or_else(|| Error::not_found("release", format!("{} {}", r.application, r.version)))?;
    let manifest = *release.manifests.get(&r.environment).ok_or_else(|| {
        Error::conflict(
            "no_manifest_for_environment",
            format!("release {} of {} has no manifest for environment {}", r.version, r.application, r.environment),
        )
    })?;
    let previous = state::deployed_version(stage, &r.environment, &r.application)?;
    let locks = blocking_locks(stage, &r.environment, &r.application)?;
    let mut out = Deployed {
        environment: r.environment.clone(),
        application: r.application.clone(),
        version: r.version,
        previous_version: previous,
        queued: false,
    };
    if !locks.is_empty() {
        match r.lock_behavior {
            LockBehavior::Fail => return Err(locked_error(&r.environment, &r.application, locks)),
            LockBehavior::Queue => {
                write_queued(stage, &r.environment, &r.application, r.version)?;
                out.queued = true;
                return Ok(out);
            }
            LockBehavior::Ignore => {}
        }
    }
    let current_manifest = stage.blob_id(&layout::env_app_manifests(&r.environment, &r.application))?;
    if previous == Some(r.version) && current_manifest == Some(manifest) {
        // Already so: only a stale queued version may need clearing.
        stage.remove(&layout::env_app_queued_version(&r.environment, &r.application))?;
        return Ok(out);
    }
    write_deployment(stage, ctx, &r.environment, &r.application, r.version, manifest)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::request::{CreateLock, Deploy, LockBehavior, LockTarget, Outcome, Request};
    use crate::transform::test_support::*;
    use crate::{Error, Stage};

    fn deploy(s: &mut Stage<'_>, e: &str, version: u64, lb: LockBehavior) -> crate::Result<Outcome> {
        run(
            s,
            Request::Deploy(Deploy {
                environment: env(e),
                application: app("web"),
                version: v(version),
                lock_behavior: lb,
            }),
        )
    }

    fn setup(s: &mut Stage<'_>) {
        create_env(s, "dev", latest(), None);
        create_env(s, "staging", from_env("dev"), None);
        release(s, "web", None, &[("dev", "m1-dev"), ("staging", "m1-staging")]).unwrap();
        release(s, "web", None, &[("dev", "m2-dev"), ("staging", "m2-staging")]).unwrap();
    }

    #[test]
    fn deploy_writes_version_manifest_and_author() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        deploy(&mut s, "staging", 1, LockBehavior::Fail).unwrap();
        assert_eq!(text(&s, "environments/staging/applications/web/version").as_deref(), Some("1"));
        assert_eq!(
            text(&s, "environments/staging/applications/web/manifests/manifests.yaml").as_deref(),
            Some("m1-staging")
        );
        assert_eq!(text(&s, "environments/staging/applications/web/deployed_by").as_deref(), Some("Tester"));
        assert_eq!(
            text(&s, "environments/staging/applications/web/deployed_at_utc").as_deref(),
            Some("2026-11-23T10:00:00Z")
        );
    }

    #[test]
    fn deploy_unknown_things_is_not_found() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        assert!(matches!(
            deploy(&mut s, "staging", 9, LockBehavior::Fail),
            Err(Error::NotFound { what: "release", .. })
        ));
        assert!(matches!(
            deploy(&mut s, "prod", 1, LockBehavior::Fail),
            Err(Error::NotFound { what: "environment", .. })
        ));
    }

    #[test]
    fn locked_deploy_fails_queues_or_ignores() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        run(
            &mut s,
            Request::CreateLock(CreateLock {
                target: LockTarget::Application { environment: env("staging"), application: app("web") },
                lock_id: lock_id("hold"),
                message: "incident 42".into(),
            }),
        )
        .unwrap();
        match deploy(&mut s, "staging", 2, LockBehavior::Fail) {
            Err(Error::Locked { locks, message }) => {
                assert_eq!(locks[0].lock_id, "hold");
                assert!(message.contains("incident 42"));
            }
            other => panic!("expected locked, got {other:?}"),
        }
        assert_eq!(text(&s, "environments/staging/applications/web/version"), None);
        deploy(&mut s, "staging", 2, LockBehavior::Queue).unwrap();
        assert_eq!(text(&s, "environments/staging/applications/web/queued_version").as_deref(), Some("2"));
        assert_eq!(text(&s, "environments/staging/applications/web/version"), None);
        deploy(&mut s, "staging", 2, LockBehavior::Ignore).unwrap();
        assert_eq!(text(&s, "environments/staging/applications/web/version").as_deref(), Some("2"));
        assert_eq!(text(&s, "environments/staging/applications/web/queued_version"), None);
    }

    #[test]
    fn team_lock_blocks_deploy() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        setup(&mut s);
        run(
            &mut s,
            Request::CreateLock(CreateLock {
                target: LockTarget::Team { environment: env("staging"), team: crate::TeamName::parse("core").unwrap() },
                lock_id: lock_id("t"),
                message: String::new(),
            }),
        )
        .unwrap();
        assert!(matches!(deploy(&mut s, "staging", 1, LockBehavior::Fail), Err(Error::Locked { .. })));
    }
}
