//! create-release: stores the release and deploys it at once to `upstream.latest` environments.

use std::collections::BTreeMap;

use git2::Oid;

use super::{argocd, deploy, lifecycle, Ctx};
use crate::error::{Error, Result};
use crate::layout;
use crate::names::{EnvName, Version};
use crate::request::{CreateRelease, ReleaseCreated};
use crate::stage::Stage;
use crate::state;

fn manifest_oids(stage: &Stage<'_>, r: &CreateRelease) -> Result<BTreeMap<EnvName, Oid>> {
    let odb = stage.repo().odb()?;
    let mut out = BTreeMap::new();
    for (env, hex) in &r.manifests {
        let oid = Oid::from_str(hex)
            .map_err(|_| Error::invalid("manifests", format!("manifest of {env} is not a blob id")))?;
        // A blob: a tree or commit id would make a tree entry of the wrong kind (trees are written without libgit2's
        // tree builder, which checked each entry's object).
        match odb.read_header(oid) {
            Ok((_, git2::ObjectType::Blob)) => {}
            Ok((_, kind)) => {
                return Err(Error::invalid("manifests", format!("manifest {oid} of {env} is a {kind}, not a blob")));
            }
            Err(_) => {
                return Err(Error::invalid(
                    "manifests",
                    format!("manifest blob {oid} of {env} is not in the repository"),
                ))
            }
        }
        out.insert(env.clone(), oid);
    }
    Ok(out)
}

pub(super) fn create(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &CreateRelease) -> Result<ReleaseCreated> {
    if r.manifests.is_empty() {
        return Err(Error::invalid("manifests", "a release needs at least one manifests[<environment>] part"));
    }
    let mut out = store(stage, ctx, r)?;
    if let (true, Some(retention)) = (out.created, &r.retention) {
        out.deleted_versions = lifecycle::retain(stage, &r.application, out.version, retention)?;
    }
    Ok(out)
}

/// Stores release `r` (a release candidate may have no manifests yet) and deploys it to `upstream.latest`
/// environments; an identical existing release is answered with `created: false`.
pub(super) fn store(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &CreateRelease) -> Result<ReleaseCreated> {
    let app = &r.application;
    let manifests = manifest_oids(stage, r)?;
    let mut configs = BTreeMap::new();
    for env in manifests.keys() {
        configs.insert(env.clone(), state::require_env(stage, env)?);
    }
    let version = match r.version {
        Some(v) => v,
        None => match state::release_versions(stage, app)?.last() {
            Some(last) => last.next().ok_or_else(|| Error::invalid("version", "no version after the highest one"))?,
            None => Version::new(1)?,
        },
    };
    if let Some(existing) = state::release(stage, app, version)? {
        let same = existing.manifests == manifests
            && existing.source_commit_id == r.source_commit_id
            && existing.source_author == r.source_author
            && existing.source_message == r.source_message
            && existing.display_version == r.display_version;
        if same {
            return Ok(ReleaseCreated {
                application: app.clone(),
                version,
                created: false,
                deployed: vec![],
                queued: vec![],
                deleted_versions: vec![],
            });
        }
        return Err(Error::conflict(
            "release_exists",
            format!("release {version} of {app} already exists with other content"),
        ));
    }

    if !state::app_exists(stage, app)? {
        argocd::check_new_app(stage, app)?;
    }
    if let Some(team) = &r.team {
        if stage.write_if_changed(&layout::app_team(app), team.as_str().as_bytes())? {
            argocd::mark_app(stage, app)?;
        }
    }
    for (file, value) in [
        (layout::RELEASE_SOURCE_COMMIT_ID, &r.source_commit_id),
        (layout::RELEASE_SOURCE_AUTHOR, &r.source_author),
        (layout::RELEASE_SOURCE_MESSAGE, &r.source_message),
        (layout::RELEASE_DISPLAY_VERSION, &r.display_version),
    ] {
        stage.write(&layout::release_file(app, version, file), value.as_bytes())?;
    }
    stage.write(&layout::release_file(app, version, layout::RELEASE_CREATED_AT), ctx.at.as_bytes())?;
    for (env, oid) in &manifests {
        stage.put_blob(&layout::release_manifest(app, version, env), *oid);
    }

    let mut out = ReleaseCreated {
        application: app.clone(),
        version,
        created: true,
        deployed: vec![],
        queued: vec![],
        deleted_versions: vec![],
    };
    for (env, oid) in &manifests {
        let latest = configs.get(env).and_then(|c| c.upstream.as_ref()).is_some_and(|u| u.is_latest());
        // An app removed from an environment comes back only with an explicit deploy, not with an upload.
        if !latest
            || state::deployed_version(stage, env, app)?.is_some_and(|d| d >= version)
            || state::is_removed(stage, env, app)?
        {
            continue;
        }
        if deploy::blocking_locks(stage, env, app)?.is_empty() {
            deploy::write_deployment(stage, ctx, env, app, version, *oid)?;
            out.deployed.push(env.clone());
        } else {
            deploy::write_queued(stage, env, app, version)?;
            out.queued.push(env.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::request::{CreateLock, LockTarget, Outcome, Request};
    use crate::transform::test_support::*;
    use crate::{Error, Stage};

    #[test]
    fn release_is_stored_and_deployed_to_latest_envs_only() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "staging", from_env("dev"), None);
        let out = release(&mut s, "web", None, &[("dev", "a: dev"), ("staging", "a: staging")]).unwrap();
        let Outcome::Release(r) = out else { panic!() };
        assert_eq!((r.version.get(), r.created, r.deployed.len()), (1, true, 1));
        assert_eq!(
            text(&s, "applications/web/releases/1/environments/staging/manifests.yaml").as_deref(),
            Some("a: staging")
        );
        assert_eq!(text(&s, "applications/web/releases/1/source_commit_id").as_deref(), Some("abc1234"));
        assert_eq!(text(&s, "applications/web/team").as_deref(), Some("core"));
        assert_eq!(text(&s, "environments/dev/applications/web/manifests/manifests.yaml").as_deref(), Some("a: dev"));
        assert_eq!(text(&s, "environments/staging/applications/web/version"), None);
    }

    #[test]
    fn next_version_idempotent_and_conflicting_uploads() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        release(&mut s, "web", Some(5), &[("dev", "x")]).unwrap();
        let Outcome::Release(r) = release(&mut s, "web", None, &[("dev", "y")]).unwrap() else { panic!() };
        assert_eq!(r.version.get(), 6);
        let Outcome::Release(again) = release(&mut s, "web", Some(5), &[("dev", "x")]).unwrap() else { panic!() };
        assert!(!again.created);
        assert!(matches!(
            release(&mut s, "web", Some(5), &[("dev", "other")]),
            Err(Error::Conflict { code: "release_exists", .. })
        ));
    }

    /// A manifest id must name a blob in the repo: a tree's id (or one of no object) would be written as a file
    /// entry of the wrong kind, so it is refused, naming the field.
    #[test]
    fn a_manifest_that_is_not_a_blob_is_refused() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        let tree = repo.treebuilder(None).unwrap().write().unwrap().to_string();
        for id in [tree.as_str(), "0123456789abcdef0123456789abcdef01234567"] {
            let request = Request::CreateRelease(bare_release("web", &[("dev", id.to_owned())]));
            let err = run(&mut s, request).unwrap_err();
            assert!(matches!(&err, Error::Invalid { field, .. } if *field == "manifests"), "{id}: {err:?}");
        }
        assert!(s.list("applications").unwrap().is_empty());
    }

    #[test]
    fn unknown_env_is_not_found_and_leaves_nothing() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        assert!(matches!(release(&mut s, "web", None, &[("dev", "x"), ("nope", "y")]), Err(Error::NotFound { .. })));
        assert!(s.list("applications").unwrap().is_empty());
    }

    #[test]
    fn locked_latest_env_queues_the_release() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        run(
            &mut s,
            Request::CreateLock(CreateLock {
                target: LockTarget::Environment { environment: env("dev") },
                lock_id: lock_id("freeze"),
                message: "freeze".into(),
            }),
        )
        .unwrap();
        let Outcome::Release(r) = release(&mut s, "web", None, &[("dev", "x")]).unwrap() else { panic!() };
        assert_eq!(r.queued, vec![env("dev")]);
        assert_eq!(text(&s, "environments/dev/applications/web/queued_version").as_deref(), Some("1"));
        assert_eq!(text(&s, "environments/dev/applications/web/version"), None);
    }
}
