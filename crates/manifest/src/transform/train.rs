//! release-train: moves every application of a target environment (or of each environment of a group) to the
//! version its upstream has, unless a lock, the team filter or the release itself holds it back.

use git2::Oid;

use super::{deploy, Ctx};
use crate::error::{Error, Result};
use crate::layout;
use crate::model::EnvironmentConfig;
use crate::names::{AppName, EnvName, TeamName, Version};
use crate::request::{EnvironmentTrain, ReleaseTrain, SkipReason, TrainMove, TrainResult, TrainSkip, TrainTarget};
use crate::stage::Stage;
use crate::state;

/// One environment's train, decided before anything is written.
struct Plan {
    result: EnvironmentTrain,
    writes: Vec<(AppName, Version, Oid)>,
}

/// What the upstream offers for one app: its version and the manifest for the target, if the release has one.
struct Offer {
    app: AppName,
    version: Version,
    manifest: Option<Oid>,
}

/// The newest release of `app` in `source` that has a manifest for `env`.
fn newest_for(source: &Stage<'_>, app: &AppName, env: &EnvName) -> Result<Option<(Version, Oid)>> {
    for v in state::release_versions(source, app)?.into_iter().rev() {
        if let Some(oid) = source.blob_id(&layout::release_manifest(app, v, env))? {
            return Ok(Some((v, oid)));
        }
    }
    Ok(None)
}

/// What the upstream of `env` offers, read from `source`. None: the environment has no upstream.
fn offers(source: &Stage<'_>, env: &EnvName, cfg: &EnvironmentConfig) -> Result<Option<(String, Vec<Offer>)>> {
    let Some(upstream) = &cfg.upstream else { return Ok(None) };
    if let Some(up) = &upstream.environment {
        let mut out = Vec::new();
        for app in state::env_applications(source, up)? {
            if let Some(version) = state::deployed_version(source, up, &app)? {
                let manifest = source.blob_id(&layout::release_manifest(&app, version, env))?;
                out.push(Offer { app, version, manifest });
            }
        }
        return Ok(Some((up.to_string(), out)));
    }
    if upstream.is_latest() {
        let mut out = Vec::new();
        for app in state::applications(source)? {
            match newest_for(source, &app, env)? {
                Some((version, manifest)) => out.push(Offer { app, version, manifest: Some(manifest) }),
                None => {
                    if let Some(&version) = state::release_versions(source, &app)?.last() {
                        out.push(Offer { app, version, manifest: None });
                    }
                }
            }
        }
        return Ok(Some(("latest".to_owned(), out)));
    }
    Ok(None)
}

fn plan(
    current: &Stage<'_>,
    source: &Stage<'_>,
    env: &EnvName,
    cfg: &EnvironmentConfig,
    team: Option<&TeamName>,
) -> Result<Plan> {
    let mut result = EnvironmentTrain { environment: env.clone(), source: None, deployed: vec![], skipped: vec![] };
    let mut writes = Vec::new();
    let skip = |result: &mut EnvironmentTrain, application: AppName, reason| {
        result.skipped.push(TrainSkip { application, reason })
    };
    let Some((source_name, offers)) = offers(source, env, cfg)? else {
        for app in state::env_applications(current, env)? {
            skip(&mut result, app, SkipReason::NoUpstream);
        }
        return Ok(Plan { result, writes });
    };
    result.source = Some(source_name);
    let env_locked = !state::locks(current, &layout::env_locks_dir(env))?.is_empty();
    // A set, not a scan of the offers per application: at 10,000 applications that was 50 million comparisons.
    let offered: std::collections::HashSet<&AppName> = offers.iter().map(|o| &o.app).collect();
    for app in state::env_applications(current, env)? {
        if !offered.contains(&app) && state::deployed_version(current, env, &app)?.is_some() {
            skip(&mut result, app, SkipReason::NotInSource);
        }
    }
    for offer in offers {
        let app_team = state::app_team(current, &offer.app)?;
        if team.is_some() && app_team.as_ref() != team {
            skip(&mut result, offer.app, SkipReason::TeamFiltered);
            continue;
        }
        if state::is_removed(current, env, &offer.app)? {
            skip(&mut result, offer.app, SkipReason::RemovedFromEnvironment);
            continue;
        }
        let Some(manifest) = offer.manifest else {
            skip(&mut result, offer.app, SkipReason::NoManifestForEnvironment);
            continue;
        };
        let from = state::deployed_version(current, env, &offer.app)?;
        let same_manifest = current.blob_id(&layout::env_app_manifests(env, &offer.app))? == Some(manifest);
        if from == Some(offer.version) && same_manifest {
            skip(&mut result, offer.app, SkipReason::AlreadyDeployed);
            continue;
        }
        if env_locked {
            skip(&mut result, offer.app, SkipReason::EnvironmentLocked);
            continue;
        }
        if !state::locks(current, &layout::env_app_locks_dir(env, &offer.app))?.is_empty() {
            skip(&mut result, offer.app, SkipReason::ApplicationLocked);
            continue;
        }
        if let Some(t) = &app_team {
            if !state::locks(current, &layout::env_team_locks_dir(env, t))?.is_empty() {
                skip(&mut result, offer.app, SkipReason::TeamLocked);
                continue;
            }
        }
        result.deployed.push(TrainMove { application: offer.app.clone(), from, to: offer.version });
        writes.push((offer.app, offer.version, manifest));
    }
    result.skipped.sort_by(|a, b| a.application.cmp(&b.application));
    Ok(Plan { result, writes })
}

pub(super) fn train(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &ReleaseTrain) -> Result<TrainResult> {
    let targets = match &r.target {
        TrainTarget::Environment { environment } => {
            vec![(environment.clone(), state::require_env(stage, environment)?)]
        }
        TrainTarget::EnvironmentGroup { group } => state::group_environments(stage, group)?,
    };
    let repo = stage.repo();
    let tag_stage = match &r.source_commit {
        Some(hex) => {
            let oid = Oid::from_str(hex)
                .map_err(|_| Error::invalid("sourceGitTag", format!("{hex:?} is not a commit id")))?;
            let tree = repo.find_commit(oid).and_then(|c| c.tree()).map_err(|_| {
                Error::not_found("tag", r.source_git_tag.as_ref().map_or_else(|| hex.clone(), ToString::to_string))
            })?;
            Some(Stage::new(repo, Some(tree)))
        }
        None => None,
    };
    // Decide every environment against the state before the train, then write: in a group train each
    // environment moves from its upstream as it was, whatever order the group is processed in.
    let mut plans = Vec::with_capacity(targets.len());
    for (env, cfg) in &targets {
        let source = tag_stage.as_ref().unwrap_or(stage);
        plans.push(plan(stage, source, env, cfg, r.team.as_ref())?);
    }
    for p in &plans {
        for (app, version, manifest) in &p.writes {
            deploy::write_deployment(stage, ctx, &p.result.environment, app, *version, *manifest)?;
        }
    }
    let empty = plans.iter().all(|p| p.writes.is_empty());
    Ok(TrainResult {
        environments: plans.into_iter().map(|p| p.result).collect(),
        tag: r.git_tag.clone(),
        empty,
        wants_commit: !r.minimize,
    })
}

#[cfg(test)]
mod tests {
    use crate::request::{CreateLock, LockTarget, Outcome, ReleaseTrain, Request, SkipReason, TrainTarget};
    use crate::transform::test_support::*;
    use crate::{GroupName, Stage, TeamName};

    fn train(
        s: &mut Stage<'_>,
        target: TrainTarget,
        team: Option<&str>,
        source_commit: Option<String>,
    ) -> crate::request::TrainResult {
        let r = ReleaseTrain {
            target,
            team: team.map(|t| TeamName::parse(t).unwrap()),
            source_git_tag: None,
            source_commit,
            git_tag: None,
            minimize: false,
        };
        match run(s, Request::ReleaseTrain(r)).unwrap() {
            Outcome::Train(t) => t,
            other => panic!("{other:?}"),
        }
    }

    fn to(e: &str) -> TrainTarget {
        TrainTarget::Environment { environment: env(e) }
    }

    fn reasons(t: &crate::request::TrainResult) -> Vec<(String, SkipReason)> {
        t.environments.iter().flat_map(|e| e.skipped.iter().map(|s| (s.application.to_string(), s.reason))).collect()
    }

    fn lock(s: &mut Stage<'_>, target: LockTarget) {
        run(s, Request::CreateLock(CreateLock { target, lock_id: lock_id("l"), message: "m".into() })).unwrap();
    }

    #[test]
    fn chain_dev_staging_prod_moves_versions_along() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "staging", from_env("dev"), None);
        create_env(&mut s, "prod", from_env("staging"), None);
        release(&mut s, "web", None, &[("dev", "1d"), ("staging", "1s"), ("prod", "1p")]).unwrap();
        let t = train(&mut s, to("staging"), None, None);
        assert_eq!(t.environments[0].deployed.len(), 1);
        assert_eq!(t.environments[0].source.as_deref(), Some("dev"));
        assert_eq!(text(&s, "environments/staging/applications/web/manifests/manifests.yaml").as_deref(), Some("1s"));
        release(&mut s, "web", None, &[("dev", "2d"), ("staging", "2s"), ("prod", "2p")]).unwrap();
        train(&mut s, to("prod"), None, None);
        assert_eq!(text(&s, "environments/prod/applications/web/version").as_deref(), Some("1"));
        let again = train(&mut s, to("prod"), None, None);
        assert_eq!(reasons(&again), vec![("web".into(), SkipReason::AlreadyDeployed)]);
    }

    #[test]
    fn skip_reasons() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "staging", from_env("dev"), None);
        create_env(&mut s, "lonely", crate::Upstream::default(), None);
        release(&mut s, "a", None, &[("dev", "x"), ("staging", "x")]).unwrap();
        release(&mut s, "b", None, &[("dev", "x")]).unwrap();
        release(&mut s, "c", None, &[("dev", "x"), ("staging", "x")]).unwrap();
        lock(&mut s, LockTarget::Application { environment: env("staging"), application: app("c") });
        let t = train(&mut s, to("staging"), None, None);
        assert_eq!(
            reasons(&t),
            vec![("b".into(), SkipReason::NoManifestForEnvironment), ("c".into(), SkipReason::ApplicationLocked)]
        );
        let filtered = train(&mut s, to("staging"), Some("other"), None);
        assert!(reasons(&filtered).iter().all(|(_, r)| *r == SkipReason::TeamFiltered));

        lock(&mut s, LockTarget::Team { environment: env("dev"), team: TeamName::parse("core").unwrap() });
        release(&mut s, "a", None, &[("dev", "y"), ("staging", "y")]).unwrap();
        // dev's own latest train is held by the team lock
        let t = train(&mut s, to("dev"), None, None);
        assert!(reasons(&t).contains(&("a".into(), SkipReason::TeamLocked)));

        lock(&mut s, LockTarget::Environment { environment: env("staging") });
        run(
            &mut s,
            Request::Deploy(crate::request::Deploy {
                environment: env("dev"),
                application: app("a"),
                version: v(2),
                lock_behavior: crate::LockBehavior::Ignore,
            }),
        )
        .unwrap();
        let t = train(&mut s, to("staging"), None, None);
        assert!(reasons(&t).contains(&("a".into(), SkipReason::EnvironmentLocked)));
        assert!(t.environments[0].deployed.is_empty());

        let t = train(&mut s, to("lonely"), None, None);
        assert_eq!(t.environments[0].source, None);
    }

    #[test]
    fn train_into_an_environment_behind_a_folder() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "review/fix-a", from_env("dev"), None);
        release(&mut s, "web", None, &[("dev", "1"), ("review/fix-a", "r")]).unwrap();
        let base = s.write_tree().unwrap();
        let mut s = Stage::new(&repo, Some(repo.find_tree(base).unwrap()));
        let t = train(&mut s, to("review/fix-a"), None, None);
        assert_eq!(t.environments[0].deployed.len(), 1, "{t:?}");
        assert_eq!(
            text(&s, "environments/review/fix-a/applications/web/manifests/manifests.yaml").as_deref(),
            Some("r")
        );
    }

    #[test]
    fn group_train_moves_each_env_from_its_own_upstream() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "de", from_env("dev"), Some("prod"));
        create_env(&mut s, "us", latest(), Some("prod"));
        release(&mut s, "web", None, &[("dev", "1"), ("de", "1"), ("us", "1")]).unwrap();
        release(&mut s, "web", None, &[("us", "2")]).unwrap();
        let t = train(&mut s, TrainTarget::EnvironmentGroup { group: GroupName::parse("prod").unwrap() }, None, None);
        assert_eq!(t.environments.len(), 2);
        assert_eq!(text(&s, "environments/de/applications/web/version").as_deref(), Some("1"));
        assert_eq!(text(&s, "environments/us/applications/web/version").as_deref(), Some("2"));
    }

    #[test]
    fn train_from_an_old_tree_deploys_that_trees_versions() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "staging", from_env("dev"), None);
        release(&mut s, "web", None, &[("dev", "1"), ("staging", "1")]).unwrap();
        let old_tree = s.write_tree().unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let old = repo.commit(None, &sig, &sig, "old", &repo.find_tree(old_tree).unwrap(), &[]).unwrap();
        let mut s = Stage::new(&repo, Some(repo.find_tree(old_tree).unwrap()));
        release(&mut s, "web", None, &[("dev", "2"), ("staging", "2")]).unwrap();
        train(&mut s, to("staging"), None, Some(old.to_string()));
        assert_eq!(text(&s, "environments/staging/applications/web/version").as_deref(), Some("1"));
    }
}
