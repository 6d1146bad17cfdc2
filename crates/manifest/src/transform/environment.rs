//! Environments: create, update, stop, delete, stop the stale ones, clean up review apps.

use super::{argocd, Ctx};
use crate::error::{Error, Result};
use crate::layout;
use crate::model::{EnvState, EnvironmentConfig, Tier, Upstream};
use crate::names::EnvName;
use crate::request::{
    CreateEnvironment, DeleteEnvironment, DeleteReviewApps, EnvironmentCreated, EnvironmentDeleted,
    EnvironmentsStopped, ReviewAppsDeleted, StopEnvironment, StopStaleEnvironments, UpdateEnvironment,
};
use crate::stage::Stage;
use crate::state;

/// The next environment id: ids are never reused, so the counter lives in the repo and only goes up.
fn next_id(stage: &mut Stage<'_>) -> Result<u64> {
    let stored = match stage.read_text(layout::NEXT_ENVIRONMENT_ID)? {
        Some(t) => t
            .parse::<u64>()
            .map_err(|e| Error::Corrupt { path: layout::NEXT_ENVIRONMENT_ID.into(), reason: e.to_string() })?,
        // A repo written before the counter existed (or by Kuberpult): start after the highest id in use.
        None => state::environments(stage)?.iter().map(|(_, c)| c.id).max().unwrap_or(0) + 1,
    };
    let id = stored.max(1);
    stage.write(layout::NEXT_ENVIRONMENT_ID, (id + 1).to_string().as_bytes())?;
    Ok(id)
}

pub(super) fn create(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &CreateEnvironment) -> Result<EnvironmentCreated> {
    let name = &r.name;
    if state::env_config(stage, name)?.is_some() {
        return Err(Error::conflict("environment_exists", format!("environment \"{name}\" already exists")));
    }
    // `review/x` needs `review` to be a folder, not an environment, and `review` must not be taken by a folder.
    if let Some((folder, _)) = name.as_str().split_once('/') {
        let folder = EnvName::parse(folder)?;
        if state::env_config(stage, &folder)?.is_some() {
            return Err(Error::conflict("environment_exists", format!("\"{folder}\" is an environment, not a folder")));
        }
    } else if !stage.list(&layout::env_dir(name))?.is_empty() {
        return Err(Error::conflict("environment_exists", format!("\"{name}\" is a folder of environments")));
    }
    if let Some(upstream) = &r.upstream {
        check_upstream(stage, name, upstream)?;
    }
    if let Some(cfg) = &r.argocd {
        argocd::check_env(stage, name, cfg)?;
        argocd::mark_dirty(stage, name);
        record_source(stage, r.argocd_source.as_ref())?;
    }
    let config = EnvironmentConfig {
        upstream: r.upstream.clone(),
        environment_group: r.environment_group.clone(),
        tier: r.tier.unwrap_or_else(|| Tier::guess(name)),
        external_url: r.external_url.clone(),
        id: next_id(stage)?,
        created_at: Some(ctx.at.to_owned()),
        updated_at: Some(ctx.at.to_owned()),
        argocd: r.argocd.clone(),
        ..EnvironmentConfig::default()
    };
    store(stage, name, &config)?;
    Ok(EnvironmentCreated { name: name.clone(), config })
}

/// The first settings in a repo bring the source the objects name, unless the repo has one.
fn record_source(stage: &mut Stage<'_>, source: Option<&crate::argocd::Source>) -> Result<()> {
    if let (Some(source), None) = (source, argocd::source(stage)?) {
        argocd::record(stage, source)?;
    }
    Ok(())
}

fn check_upstream(stage: &Stage<'_>, name: &EnvName, upstream: &Upstream) -> Result<()> {
    match (&upstream.environment, upstream.is_latest()) {
        (Some(_), true) => Err(Error::invalid("upstream", "upstream takes either latest or environment, not both")),
        (Some(up), false) if up == name => Err(Error::invalid("upstream", "an environment cannot be its own upstream")),
        (Some(up), false) if state::env_config(stage, up)?.is_none() => {
            Err(Error::not_found("upstream environment", up))
        }
        _ => Ok(()),
    }
}

fn store(stage: &mut Stage<'_>, name: &EnvName, config: &EnvironmentConfig) -> Result<()> {
    let json = serde_json::to_vec_pretty(config).map_err(|e| Error::invalid("config", e.to_string()))?;
    stage.write(&layout::env_config(name), &json)?;
    Ok(())
}

pub(super) fn update(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &UpdateEnvironment) -> Result<EnvironmentCreated> {
    let name = &r.name;
    let mut config = state::require_env(stage, name)?;
    if r.external_url.is_none()
        && r.tier.is_none()
        && r.upstream.is_none()
        && r.environment_group.is_none()
        && r.protected.is_none()
        && r.argocd.is_none()
    {
        return Err(Error::invalid(
            "body",
            "nothing to update: give external_url, tier, upstream, environmentGroup, protected or argocd",
        ));
    }
    if let Some(new) = &r.argocd {
        if let Some(cfg) = new {
            argocd::check_env(stage, name, cfg)?;
            record_source(stage, r.argocd_source.as_ref())?;
        }
        config.argocd = new.clone();
        argocd::mark_dirty(stage, name);
    }
    if let Some(upstream) = &r.upstream {
        check_upstream(stage, name, upstream)?;
        config.upstream = Some(upstream.clone());
    }
    if let Some(url) = &r.external_url {
        config.external_url = Some(url.clone()).filter(|u| !u.is_empty());
    }
    if let Some(tier) = r.tier {
        config.tier = tier;
    }
    if let Some(group) = &r.environment_group {
        config.environment_group = Some(group.clone());
    }
    if let Some(protected) = r.protected {
        config.protected = protected;
    }
    config.updated_at = Some(ctx.at.to_owned());
    store(stage, name, &config)?;
    Ok(EnvironmentCreated { name: name.clone(), config })
}

pub(super) fn stop(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &StopEnvironment) -> Result<EnvironmentCreated> {
    let mut config = state::require_env(stage, &r.name)?;
    if config.state != EnvState::Stopped {
        config.state = EnvState::Stopped;
        config.updated_at = Some(ctx.at.to_owned());
        store(stage, &r.name, &config)?;
    }
    Ok(EnvironmentCreated { name: r.name.clone(), config })
}

pub(super) fn delete(stage: &mut Stage<'_>, r: &DeleteEnvironment) -> Result<EnvironmentDeleted> {
    let config = state::require_env(stage, &r.name)?;
    if config.state != EnvState::Stopped {
        return Err(Error::conflict(
            "environment_not_stopped",
            format!("environment \"{}\" is {}; stop it before deleting it", r.name, state_name(config.state)),
        ));
    }
    stage.remove_dir(&layout::env_dir(&r.name))?;
    argocd::mark_dirty(stage, &r.name);
    Ok(EnvironmentDeleted { name: r.name.clone(), id: config.id })
}

fn state_name(s: EnvState) -> &'static str {
    match s {
        EnvState::Available => "available",
        EnvState::Stopping => "stopping",
        EnvState::Stopped => "stopped",
    }
}

/// True when `t` (RFC 3339) is before `limit` (RFC 3339); an unreadable time counts as old.
fn earlier(t: Option<&str>, limit: &str) -> Result<bool> {
    let fmt = &time::format_description::well_known::Rfc3339;
    let limit =
        time::OffsetDateTime::parse(limit, fmt).map_err(|_| Error::invalid("before", "not an RFC 3339 time"))?;
    Ok(t.and_then(|t| time::OffsetDateTime::parse(t, fmt).ok()).is_none_or(|t| t < limit))
}

pub(super) fn stop_stale(
    stage: &mut Stage<'_>,
    ctx: &Ctx<'_>,
    r: &StopStaleEnvironments,
) -> Result<EnvironmentsStopped> {
    let mut stopped = Vec::new();
    for (name, mut config) in state::environments(stage)? {
        if config.protected || config.state == EnvState::Stopped {
            continue;
        }
        if earlier(state::last_changed(stage, &name, &config)?.as_deref(), &r.before)? {
            config.state = EnvState::Stopped;
            config.updated_at = Some(ctx.at.to_owned());
            store(stage, &name, &config)?;
            stopped.push(name);
        }
    }
    Ok(EnvironmentsStopped { stopped })
}

/// The folder review apps live in.
const REVIEW_FOLDER: &str = "review/";

pub(super) fn delete_review_apps(stage: &mut Stage<'_>, r: &DeleteReviewApps) -> Result<ReviewAppsDeleted> {
    let mut out = ReviewAppsDeleted { scheduled_entries: Vec::new(), unprocessable_entries: Vec::new() };
    for (name, config) in state::environments(stage)? {
        if !name.as_str().starts_with(REVIEW_FOLDER) || config.state != EnvState::Stopped {
            continue;
        }
        if !earlier(state::last_changed(stage, &name, &config)?.as_deref(), &r.before)? {
            continue;
        }
        if config.protected {
            out.unprocessable_entries.push(EnvironmentCreated { name, config });
        } else if out.scheduled_entries.len() < r.limit {
            stage.remove_dir(&layout::env_dir(&name))?;
            argocd::mark_dirty(stage, &name);
            out.scheduled_entries.push(EnvironmentCreated { name, config });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::transform::test_support::*;
    use crate::{state, Error, Stage};

    #[test]
    fn ids_are_never_reused_and_names_are_unique() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "staging", from_env("dev"), Some("pre"));
        let cfg = state::env_config(&s, &env("staging")).unwrap().unwrap();
        assert_eq!(cfg.id, 2);
        assert_eq!(cfg.upstream.unwrap().environment, Some(env("dev")));
        assert_eq!(cfg.environment_group.unwrap().as_str(), "pre");
        s.remove_dir("environments/staging").unwrap();
        create_env(&mut s, "qa", from_env("dev"), None);
        assert_eq!(state::env_config(&s, &env("qa")).unwrap().unwrap().id, 3);
    }

    #[test]
    fn refuses_duplicates_unknown_upstream_and_folder_clashes() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        let dup = run(
            &mut s,
            crate::Request::CreateEnvironment(crate::request::CreateEnvironment {
                name: env("dev"),
                upstream: None,
                environment_group: None,
                tier: None,
                external_url: None,
                argocd: None,
                argocd_source: None,
            }),
        );
        assert!(matches!(dup, Err(Error::Conflict { code: "environment_exists", .. })));
        let bad_up = run(
            &mut s,
            crate::Request::CreateEnvironment(crate::request::CreateEnvironment {
                name: env("prod"),
                upstream: Some(from_env("nope")),
                environment_group: None,
                tier: None,
                external_url: None,
                argocd: None,
                argocd_source: None,
            }),
        );
        assert!(matches!(bad_up, Err(Error::NotFound { .. })));
        let in_env = run(
            &mut s,
            crate::Request::CreateEnvironment(crate::request::CreateEnvironment {
                name: env("dev/x"),
                upstream: None,
                environment_group: None,
                tier: None,
                external_url: None,
                argocd: None,
                argocd_source: None,
            }),
        );
        assert!(matches!(in_env, Err(Error::Conflict { .. })));
        create_env(&mut s, "review/fix-a", latest(), None);
        let names: Vec<String> = state::environments(&s).unwrap().into_iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, vec!["dev", "review/fix-a"]);
    }

    #[test]
    fn stop_stale_stops_what_did_not_change_since_before_and_spares_protected_and_recently_deployed() {
        use crate::request::{Outcome, Request, StopStaleEnvironments, UpdateEnvironment};
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "staging", from_env("dev"), None);
        create_env(&mut s, "prod", from_env("staging"), None);
        let protect = UpdateEnvironment {
            name: env("prod"),
            external_url: None,
            tier: None,
            upstream: None,
            environment_group: None,
            protected: Some(true),
            argocd: None,
            argocd_source: None,
        };
        run(&mut s, Request::UpdateEnvironment(protect)).unwrap();
        // a deploy into dev after the cut-off keeps dev alive
        s.write(&crate::layout::env_app_deployed_at(&env("dev"), &app("web")), b"2026-12-05T00:00:00Z").unwrap();
        let out = run(
            &mut s,
            Request::StopStaleEnvironments(StopStaleEnvironments { before: "2026-12-01T00:00:00Z".into() }),
        )
        .unwrap();
        let Outcome::EnvironmentsStopped(out) = out else { panic!("{out:?}") };
        assert_eq!(out.stopped, vec![env("staging")]);
        assert_eq!(state::env_config(&s, &env("staging")).unwrap().unwrap().state, crate::EnvState::Stopped);
        assert_eq!(state::env_config(&s, &env("prod")).unwrap().unwrap().state, crate::EnvState::Available);
        assert_eq!(state::env_config(&s, &env("dev")).unwrap().unwrap().state, crate::EnvState::Available);
        // an earlier cut-off stops nothing
        let out = run(
            &mut s,
            Request::StopStaleEnvironments(StopStaleEnvironments { before: "2026-01-01T00:00:00Z".into() }),
        )
        .unwrap();
        assert!(matches!(out, Outcome::EnvironmentsStopped(o) if o.stopped.is_empty()));
    }
}
