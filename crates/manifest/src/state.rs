//! Reading the state (environments, configs, applications, releases, versions, locks, flow templates and runs,
//! release candidates and deployment records) from a staged tree.
//! Each function reads only the paths it needs.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::layout;
use crate::model::{
    DeployedApp, DeploymentRecord, EnvironmentConfig, EnvironmentOverview, FlowRunRecord, Lock, Release, Template,
};
use crate::names::{AppName, EnvName, GroupName, LockId, TeamName, Version};
use crate::request::LockTarget;
use crate::stage::{EntryKind, Stage};

fn corrupt(path: &str, reason: impl ToString) -> Error {
    Error::Corrupt { path: path.to_owned(), reason: reason.to_string() }
}

/// The config of `env`, or None if there is no such environment.
pub fn env_config(stage: &Stage<'_>, env: &EnvName) -> Result<Option<EnvironmentConfig>> {
    let path = layout::env_config(env);
    match stage.read(&path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| corrupt(&path, e)),
    }
}

/// The config of `env`, or 404.
pub fn require_env(stage: &Stage<'_>, env: &EnvName) -> Result<EnvironmentConfig> {
    env_config(stage, env)?.ok_or_else(|| Error::not_found("environment", env))
}

/// The environments named by the directories under `dir`, one folder deep at most (`review/fix-a`): a directory
/// is an environment when `found` finds something for it, else it is a folder whose directories may be.
fn envs_under<T>(
    stage: &Stage<'_>,
    dir: &str,
    mut found: impl FnMut(&EnvName) -> Result<Option<T>>,
) -> Result<Vec<(EnvName, T)>> {
    let mut out = Vec::new();
    for (top, kind) in stage.list(dir)? {
        let Ok(env) = EnvName::parse(&top) else { continue };
        if kind != EntryKind::Dir {
            continue;
        }
        if let Some(t) = found(&env)? {
            out.push((env, t));
            continue;
        }
        for (sub, kind) in stage.list(&format!("{dir}/{top}"))? {
            let Ok(env) = EnvName::parse(&format!("{top}/{sub}")) else { continue };
            if kind == EntryKind::Dir {
                if let Some(t) = found(&env)? {
                    out.push((env, t));
                }
            }
        }
    }
    Ok(out)
}

/// Every environment (including those in a folder such as `review/…`), sorted by name.
pub fn environments(stage: &Stage<'_>) -> Result<Vec<(EnvName, EnvironmentConfig)>> {
    let mut out = envs_under(stage, layout::ENVIRONMENTS, |env| env_config(stage, env))?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The environment with id `id`.
pub fn env_by_id(stage: &Stage<'_>, id: u64) -> Result<Option<(EnvName, EnvironmentConfig)>> {
    Ok(environments(stage)?.into_iter().find(|(_, c)| c.id == id))
}

/// The most recent deploy into `env`: the application with the latest `deployed_at_utc`.
pub fn last_deploy(stage: &Stage<'_>, env: &EnvName) -> Result<Option<DeployedApp>> {
    let mut best: Option<DeployedApp> = None;
    for app in env_applications(stage, env)? {
        let d = deployed_app(stage, env, &app)?;
        if d.deployed_at_utc.is_some() && best.as_ref().is_none_or(|b| d.deployed_at_utc > b.deployed_at_utc) {
            best = Some(d);
        }
    }
    Ok(best)
}

/// When `env` last changed: its settings, or a deploy into it (RFC 3339; the later of the two).
pub fn last_changed(stage: &Stage<'_>, env: &EnvName, config: &EnvironmentConfig) -> Result<Option<String>> {
    let deployed = last_deploy(stage, env)?.and_then(|d| d.deployed_at_utc);
    Ok(config.updated_at.clone().max(deployed))
}

/// The environments of `group`, sorted by name; 404 if there are none.
pub fn group_environments(stage: &Stage<'_>, group: &GroupName) -> Result<Vec<(EnvName, EnvironmentConfig)>> {
    let envs: Vec<_> =
        environments(stage)?.into_iter().filter(|(_, c)| c.environment_group.as_ref() == Some(group)).collect();
    if envs.is_empty() {
        return Err(Error::not_found("environment group", group));
    }
    Ok(envs)
}

fn read_version(stage: &Stage<'_>, path: &str) -> Result<Option<Version>> {
    match stage.read_text(path)? {
        None => Ok(None),
        Some(text) => Version::parse(&text).map(Some).map_err(|e| corrupt(path, e)),
    }
}

/// The version of `app` deployed in `env`.
pub fn deployed_version(stage: &Stage<'_>, env: &EnvName, app: &AppName) -> Result<Option<Version>> {
    read_version(stage, &layout::env_app_version(env, app))
}

/// The version of `app` queued in `env` behind a lock.
pub fn queued_version(stage: &Stage<'_>, env: &EnvName, app: &AppName) -> Result<Option<Version>> {
    read_version(stage, &layout::env_app_queued_version(env, app))
}

/// The applications that have a directory in `env`.
pub fn env_applications(stage: &Stage<'_>, env: &EnvName) -> Result<Vec<AppName>> {
    Ok(stage
        .list(&layout::env_apps_dir(env))?
        .into_iter()
        .filter(|(_, k)| *k == EntryKind::Dir)
        .filter_map(|(n, _)| AppName::parse(&n).ok())
        .collect())
}

/// The lock `id` in `locks_dir`, if it exists.
pub fn lock(stage: &Stage<'_>, locks_dir: &str, id: &LockId) -> Result<Option<Lock>> {
    let dir = layout::lock_dir(locks_dir, id);
    let Some(message) = stage.read(&layout::lock_file(&dir, layout::LOCK_MESSAGE))? else {
        return Ok(None);
    };
    let text =
        |file: &str| -> Result<String> { Ok(stage.read_text(&layout::lock_file(&dir, file))?.unwrap_or_default()) };
    Ok(Some(Lock {
        id: id.clone(),
        message: String::from_utf8_lossy(&message).into_owned(),
        created_by_name: text(layout::LOCK_CREATED_BY_NAME)?,
        created_by_email: text(layout::LOCK_CREATED_BY_EMAIL)?,
        created_at: text(layout::LOCK_CREATED_AT)?,
    }))
}

/// Every lock in `locks_dir`, by id.
pub fn locks(stage: &Stage<'_>, locks_dir: &str) -> Result<Vec<Lock>> {
    let mut out = Vec::new();
    for (name, kind) in stage.list(locks_dir)? {
        if kind != EntryKind::Dir {
            continue;
        }
        let Ok(id) = LockId::parse(&name) else {
            continue;
        };
        if let Some(l) = lock(stage, locks_dir, &id)? {
            out.push(l);
        }
    }
    Ok(out)
}

/// The team of `app`.
pub fn app_team(stage: &Stage<'_>, app: &AppName) -> Result<Option<TeamName>> {
    let path = layout::app_team(app);
    match stage.read_text(&path)? {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => TeamName::parse(&t).map(Some).map_err(|e| corrupt(&path, e)),
    }
}

/// The repository (`org/repo`) `app` is built from.
pub fn app_repository(stage: &Stage<'_>, app: &AppName) -> Result<Option<String>> {
    Ok(stage.read_text(&layout::app_repository(app))?.filter(|r| !r.is_empty()))
}

/// True if `app` has a directory under `applications/`.
pub fn app_exists(stage: &Stage<'_>, app: &AppName) -> Result<bool> {
    Ok(!stage.list(&layout::app_dir(app))?.is_empty())
}

/// Every application, sorted.
pub fn applications(stage: &Stage<'_>) -> Result<Vec<AppName>> {
    Ok(stage
        .list(layout::APPLICATIONS)?
        .into_iter()
        .filter(|(_, k)| *k == EntryKind::Dir)
        .filter_map(|(n, _)| AppName::parse(&n).ok())
        .collect())
}

/// The release versions of `app`, ascending.
pub fn release_versions(stage: &Stage<'_>, app: &AppName) -> Result<Vec<Version>> {
    let mut out: Vec<Version> = stage
        .list(&layout::app_releases_dir(app))?
        .into_iter()
        .filter(|(_, k)| *k == EntryKind::Dir)
        .filter_map(|(n, _)| Version::parse(&n).ok())
        .collect();
    out.sort();
    Ok(out)
}

/// One release of `app`.
pub fn release(stage: &Stage<'_>, app: &AppName, version: Version) -> Result<Option<Release>> {
    let dir_entries = stage.list(&layout::release_dir(app, version))?;
    if dir_entries.is_empty() {
        return Ok(None);
    }
    let text = |file: &str| -> Result<String> {
        Ok(stage.read_text(&layout::release_file(app, version, file))?.unwrap_or_default())
    };
    let manifests: BTreeMap<EnvName, git2::Oid> = envs_under(stage, &layout::release_envs_dir(app, version), |env| {
        Ok(stage.blob_id(&layout::release_manifest(app, version, env))?)
    })?
    .into_iter()
    .collect();
    Ok(Some(Release {
        application: app.clone(),
        version,
        source_commit_id: text(layout::RELEASE_SOURCE_COMMIT_ID)?,
        source_author: text(layout::RELEASE_SOURCE_AUTHOR)?,
        source_message: text(layout::RELEASE_SOURCE_MESSAGE)?,
        display_version: text(layout::RELEASE_DISPLAY_VERSION)?,
        created_at: text(layout::RELEASE_CREATED_AT)?,
        undeploy: is_undeploy(stage, app, version)?,
        environments: manifests.keys().cloned().collect(),
        manifests,
    }))
}

/// True when release `version` of `app` is an undeploy release.
pub fn is_undeploy(stage: &Stage<'_>, app: &AppName, version: Version) -> Result<bool> {
    Ok(stage.exists(&layout::release_file(app, version, layout::RELEASE_UNDEPLOY))?)
}

/// True when `app` was removed from `env` and no release has been deployed there explicitly since.
pub fn is_removed(stage: &Stage<'_>, env: &EnvName, app: &AppName) -> Result<bool> {
    Ok(stage.exists(&layout::env_app_removed(env, app))?)
}

/// The environments where `app` has a directory (a deployed or a queued version), sorted by name.
pub fn app_environments(stage: &Stage<'_>, app: &AppName) -> Result<Vec<EnvName>> {
    let mut out = Vec::new();
    for (env, _) in environments(stage)? {
        if !stage.list(&layout::env_app_dir(&env, app))?.is_empty() {
            out.push(env);
        }
    }
    Ok(out)
}

/// `app` as deployed in `env`.
pub fn deployed_app(stage: &Stage<'_>, env: &EnvName, app: &AppName) -> Result<DeployedApp> {
    deployed_app_of_team(stage, env, app, app_team(stage, app)?)
}

/// The team locks of every team in `env`.
pub fn team_locks(stage: &Stage<'_>, env: &EnvName) -> Result<BTreeMap<TeamName, Vec<Lock>>> {
    let mut out = BTreeMap::new();
    for (name, kind) in stage.list(&layout::env_teams_dir(env))? {
        let Ok(team) = TeamName::parse(&name) else {
            continue;
        };
        if kind == EntryKind::Dir {
            let l = locks(stage, &layout::env_team_locks_dir(env, &team))?;
            if !l.is_empty() {
                out.insert(team, l);
            }
        }
    }
    Ok(out)
}

/// `app` as deployed in `env`, with its team already known (read once per application, not once per cell).
fn deployed_app_of_team(
    stage: &Stage<'_>,
    env: &EnvName,
    app: &AppName,
    team: Option<TeamName>,
) -> Result<DeployedApp> {
    let text = |p: String| -> Result<Option<String>> { Ok(stage.read_text(&p)?) };
    Ok(DeployedApp {
        application: app.clone(),
        version: deployed_version(stage, env, app)?,
        queued_version: queued_version(stage, env, app)?,
        team,
        deployed_by: text(layout::env_app_deployed_by(env, app))?,
        deployed_by_email: text(layout::env_app_deployed_by_email(env, app))?,
        deployed_at_utc: text(layout::env_app_deployed_at(env, app))?,
        locks: locks(stage, &layout::env_app_locks_dir(env, app))?,
    })
}

/// Everything in every environment.
pub fn overview(stage: &Stage<'_>) -> Result<Vec<EnvironmentOverview>> {
    let mut out = Vec::new();
    let mut teams: BTreeMap<AppName, Option<TeamName>> = BTreeMap::new();
    for (env, config) in environments(stage)? {
        let apps = env_applications(stage, &env)?;
        // Sized once: grown by doubling, the 10,000 cells of an environment would hold room for up to twice that.
        let mut applications = Vec::with_capacity(apps.len());
        for app in apps {
            let team = match teams.get(&app) {
                Some(t) => t.clone(),
                None => {
                    let t = app_team(stage, &app)?;
                    teams.insert(app.clone(), t.clone());
                    t
                }
            };
            applications.push(deployed_app_of_team(stage, &env, &app, team)?);
        }
        out.push(EnvironmentOverview {
            locks: locks(stage, &layout::env_locks_dir(&env))?,
            team_locks: team_locks(stage, &env)?,
            name: env,
            config,
            applications,
        });
    }
    Ok(out)
}

/// The paths where tree `new` differs from `old`: a subtree with the same id on both sides is skipped whole
/// (libgit2's tree-to-tree diff walks every entry of both trees), so the cost follows the change. A subtree added or
/// removed whole is listed as its own path. None: more than `max` paths changed.
pub fn changed_paths(
    repo: &git2::Repository,
    old: &git2::Tree<'_>,
    new: &git2::Tree<'_>,
    max: usize,
) -> Result<Option<Vec<String>>> {
    fn walk(
        repo: &git2::Repository,
        old: &git2::Tree<'_>,
        new: &git2::Tree<'_>,
        prefix: &str,
        max: usize,
        out: &mut Vec<String>,
    ) -> std::result::Result<bool, git2::Error> {
        use git2::ObjectType::Tree;
        let before: BTreeMap<Vec<u8>, (git2::Oid, Option<git2::ObjectType>)> =
            old.iter().map(|e| (e.name_bytes().to_vec(), (e.id(), e.kind()))).collect();
        let path = |name: &[u8]| format!("{prefix}{}", String::from_utf8_lossy(name));
        let mut seen = std::collections::BTreeSet::new();
        for e in new.iter() {
            let name = e.name_bytes();
            seen.insert(name.to_vec());
            match before.get(name) {
                Some((id, _)) if *id == e.id() => {}
                Some((id, Some(Tree))) if e.kind() == Some(Tree) => {
                    let (a, b) = (repo.find_tree(*id)?, repo.find_tree(e.id())?);
                    if !walk(repo, &a, &b, &format!("{}/", path(name)), max, out)? {
                        return Ok(false);
                    }
                }
                _ => out.push(path(name)),
            }
            if out.len() > max {
                return Ok(false);
            }
        }
        out.extend(old.iter().filter(|e| !seen.contains(e.name_bytes())).map(|e| path(e.name_bytes())));
        Ok(out.len() <= max)
    }
    let mut out = Vec::new();
    Ok(walk(repo, old, new, "", max, &mut out)?.then_some(out))
}

/// The overview after a change, from the overview before it and the paths the change touched (as a tree diff lists
/// them): only the cells, locks and configs those paths belong to are read again, so the cost follows the change,
/// not the number of applications × environments. None: a change it does not follow (an environment made or
/// removed); read everything with [`overview`] instead.
pub fn overview_update(
    stage: &Stage<'_>,
    before: &[EnvironmentOverview],
    changed: &[String],
) -> Result<Option<Vec<EnvironmentOverview>>> {
    use std::collections::BTreeSet;
    // Longest names first: `review/x` before `review`, so a path finds its own environment.
    let mut names: Vec<&EnvName> = before.iter().map(|e| &e.name).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.as_str().len()));
    let mut configs = BTreeSet::new();
    let mut env_locks = BTreeSet::new();
    let mut team_locks_of = BTreeSet::new();
    let mut cells: BTreeSet<(EnvName, AppName)> = BTreeSet::new();
    let mut teams: BTreeSet<AppName> = BTreeSet::new();
    let mut all_cells = BTreeSet::new();
    let envs_prefix = format!("{}/", layout::ENVIRONMENTS);
    let apps_prefix = format!("{}/", layout::APPLICATIONS);
    for path in changed {
        if let Some(rest) = path.strip_prefix(&envs_prefix) {
            let Some(env) = names.iter().find(|n| rest.starts_with(&format!("{}/", n))) else {
                // A path of no known environment: one was made (or the layout holds something new).
                return Ok(None);
            };
            let inner = &rest[env.as_str().len() + 1..];
            let (head, tail) = inner.split_once('/').unwrap_or((inner, ""));
            match head {
                "config.json" => {
                    configs.insert((*env).clone());
                }
                "locks" => {
                    env_locks.insert((*env).clone());
                }
                "teams" => {
                    team_locks_of.insert((*env).clone());
                }
                // The whole folder (its first application came, or its last went): every cell of the environment.
                "applications" if tail.is_empty() => {
                    all_cells.insert((*env).clone());
                }
                "applications" => {
                    let app = tail.split('/').next().unwrap_or_default();
                    match AppName::parse(app) {
                        Ok(app) => {
                            cells.insert(((*env).clone(), app));
                        }
                        Err(_) => return Ok(None),
                    }
                }
                _ => {}
            }
        } else if let Some(rest) = path.strip_prefix(&apps_prefix) {
            if let Some((app, "team")) = rest.split_once('/') {
                if let Ok(app) = AppName::parse(app) {
                    teams.insert(app);
                }
            }
        }
    }
    let mut out = before.to_vec();
    let mut team_cache: BTreeMap<AppName, Option<TeamName>> = BTreeMap::new();
    let mut team_of = |app: &AppName| -> Result<Option<TeamName>> {
        if let Some(t) = team_cache.get(app) {
            return Ok(t.clone());
        }
        let t = app_team(stage, app)?;
        team_cache.insert(app.clone(), t.clone());
        Ok(t)
    };
    for env in out.iter_mut() {
        if configs.contains(&env.name) {
            match env_config(stage, &env.name)? {
                Some(c) => env.config = c,
                None => return Ok(None),
            }
        }
        if env_locks.contains(&env.name) {
            env.locks = locks(stage, &layout::env_locks_dir(&env.name))?;
        }
        if team_locks_of.contains(&env.name) {
            env.team_locks = team_locks(stage, &env.name)?;
        }
        if all_cells.contains(&env.name) {
            env.applications = env_applications(stage, &env.name)?
                .into_iter()
                .map(|app| {
                    let team = team_of(&app)?;
                    deployed_app_of_team(stage, &env.name, &app, team)
                })
                .collect::<Result<Vec<_>>>()?;
        }
        for (_, app) in cells.iter().filter(|(e, _)| *e == env.name && !all_cells.contains(&env.name)) {
            // git keeps no empty folder: the app is in the environment while its folder lists anything.
            let here = !stage.list(&layout::env_app_dir(&env.name, app))?.is_empty();
            let at = env.applications.binary_search_by(|d| d.application.cmp(app));
            match (here, at) {
                (true, Ok(i)) => env.applications[i] = deployed_app_of_team(stage, &env.name, app, team_of(app)?)?,
                (true, Err(i)) => {
                    env.applications.insert(i, deployed_app_of_team(stage, &env.name, app, team_of(app)?)?)
                }
                (false, Ok(i)) => {
                    env.applications.remove(i);
                }
                (false, Err(_)) => {}
            }
        }
        for d in env.applications.iter_mut().filter(|d| teams.contains(&d.application)) {
            d.team = team_of(&d.application)?;
        }
    }
    Ok(Some(out))
}

/// The locks directories a lock target names (a group names one per environment), after checking that the
/// environment (and application) exist.
pub fn lock_dirs(stage: &Stage<'_>, target: &LockTarget) -> Result<Vec<(EnvName, String)>> {
    Ok(match target {
        LockTarget::Environment { environment } => {
            require_env(stage, environment)?;
            vec![(environment.clone(), layout::env_locks_dir(environment))]
        }
        LockTarget::Application { environment, application } => {
            require_env(stage, environment)?;
            if !app_exists(stage, application)? {
                return Err(Error::not_found("application", application));
            }
            vec![(environment.clone(), layout::env_app_locks_dir(environment, application))]
        }
        LockTarget::Team { environment, team } => {
            require_env(stage, environment)?;
            vec![(environment.clone(), layout::env_team_locks_dir(environment, team))]
        }
        LockTarget::EnvironmentGroup { group } => group_environments(stage, group)?
            .into_iter()
            .map(|(env, _)| {
                let dir = layout::env_locks_dir(&env);
                (env, dir)
            })
            .collect(),
    })
}

/// The stored template of `flow`, or 404.
pub fn flow_template(stage: &Stage<'_>, flow: &EnvName) -> Result<Template> {
    let path = layout::flow_template(flow);
    let text = stage.read_text(&path)?.ok_or_else(|| Error::not_found("release flow", flow))?;
    Template::from_yaml(&path, &text)
}

/// The run records of `flow`, by id.
pub fn flow_runs(stage: &Stage<'_>, flow: &EnvName) -> Result<Vec<FlowRunRecord>> {
    let mut out = Vec::new();
    for (name, kind) in stage.list(&layout::flow_runs_dir(flow))? {
        let Some(id) = name.strip_suffix(".json").and_then(|n| n.parse::<u64>().ok()) else { continue };
        if kind == EntryKind::File {
            if let Some(r) = flow_run(stage, flow, id)? {
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// Every stored release flow, by name (a flow `p/q` is `release-flows/p/q.yaml`; run folders are not flows).
pub fn flows(stage: &Stage<'_>) -> Result<Vec<EnvName>> {
    let mut out = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(prefix) = dirs.pop() {
        let dir = if prefix.is_empty() {
            layout::RELEASE_FLOWS.to_owned()
        } else {
            format!("{}/{prefix}", layout::RELEASE_FLOWS)
        };
        for (name, kind) in stage.list(&dir)? {
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            match kind {
                EntryKind::File => {
                    if let Some(flow) = path.strip_suffix(".yaml").and_then(|f| EnvName::parse(f).ok()) {
                        out.push(flow);
                    }
                }
                EntryKind::Dir if name != "runs" => dirs.push(path),
                EntryKind::Dir => {}
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Run `id` of `flow`.
pub fn flow_run(stage: &Stage<'_>, flow: &EnvName, id: u64) -> Result<Option<FlowRunRecord>> {
    let path = layout::flow_run(flow, id);
    match stage.read(&path)? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Corrupt { path, reason: e.to_string() })
        }
    }
}

/// The release of `app` whose display version is `rc`.
pub fn release_candidate(stage: &Stage<'_>, app: &AppName, rc: &str) -> Result<Option<Version>> {
    for v in release_versions(stage, app)?.into_iter().rev() {
        if stage.read_text(&layout::release_file(app, v, layout::RELEASE_DISPLAY_VERSION))?.as_deref() == Some(rc) {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The deployment records of `app` in `env`, oldest first.
pub fn deployment_records(stage: &Stage<'_>, app: &AppName, env: &EnvName) -> Result<Vec<DeploymentRecord>> {
    let dir = layout::app_deployments_dir(app, env);
    let mut out = Vec::new();
    for (name, kind) in stage.list(&dir)? {
        let Some(id) = name.strip_suffix(".json").and_then(|n| n.parse::<u64>().ok()) else { continue };
        if kind != EntryKind::File {
            continue;
        }
        let path = layout::deployment_record(app, env, id);
        if let Some(bytes) = stage.read(&path)? {
            let record = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Corrupt { path: path.clone(), reason: e.to_string() })?;
            out.push(record);
        }
    }
    out.sort_by_key(|r: &DeploymentRecord| r.id);
    Ok(out)
}

/// The most recent deployment record in `env`, over every application.
pub fn last_deployment_record(stage: &Stage<'_>, env: &EnvName) -> Result<Option<DeploymentRecord>> {
    let mut best: Option<DeploymentRecord> = None;
    for app in applications(stage)? {
        if let Some(r) = deployment_records(stage, &app, env)?.pop() {
            if best.as_ref().is_none_or(|b| (&r.updated_at, r.id) > (&b.updated_at, b.id)) {
                best = Some(r);
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use git2::Oid;

    use super::*;
    use crate::request::*;
    use crate::transform::test_support::*;

    /// The paths that differ between two trees, as the API's snapshot passes them.
    fn changed(repo: &git2::Repository, old: Oid, new: Oid) -> Vec<String> {
        let (old, new) = (repo.find_tree(old).unwrap(), repo.find_tree(new).unwrap());
        changed_paths(repo, &old, &new, 10_000).unwrap().unwrap()
    }

    #[test]
    fn the_updated_overview_equals_a_full_read_after_every_kind_of_change() {
        let (_dir, repo) = repo();
        let mut stage = Stage::new(&repo, None);
        create_env(&mut stage, "dev", latest(), None);
        create_env(&mut stage, "review/x", from_env("dev"), Some("review"));
        for a in ["api", "web", "zed"] {
            crate::transform::test_support::release(
                &mut stage,
                a,
                Some(1),
                &[("dev", "a: 1\n"), ("review/x", "a: 1\n")],
            )
            .unwrap();
        }
        let mut tree = stage.write_tree().unwrap();
        let mut before = overview(&Stage::new(&repo, Some(repo.find_tree(tree).unwrap()))).unwrap();
        let team = |t: &str| TeamName::parse(t).unwrap();
        let changes: Vec<(&str, Request)> = vec![
            ("release and deploy", {
                let m = repo.blob(b"a: 2\n").unwrap().to_string();
                Request::CreateRelease(CreateRelease {
                    application: app("web"),
                    version: Some(v(2)),
                    team: Some(team("core")),
                    source_commit_id: "abc".into(),
                    source_author: "dev".into(),
                    source_message: "m".into(),
                    display_version: String::new(),
                    manifests: [(env("dev"), m)].into_iter().collect(),
                    retention: None,
                })
            }),
            (
                "train into a folder environment",
                Request::ReleaseTrain(ReleaseTrain {
                    target: TrainTarget::Environment { environment: env("review/x") },
                    team: None,
                    source_git_tag: None,
                    source_commit: None,
                    git_tag: None,
                    minimize: false,
                }),
            ),
            (
                "environment lock",
                Request::CreateLock(CreateLock {
                    target: LockTarget::Environment { environment: env("dev") },
                    lock_id: lock_id("freeze"),
                    message: "m".into(),
                }),
            ),
            (
                "application lock",
                Request::CreateLock(CreateLock {
                    target: LockTarget::Application { environment: env("review/x"), application: app("api") },
                    lock_id: lock_id("hold"),
                    message: "m".into(),
                }),
            ),
            (
                "team lock",
                Request::CreateLock(CreateLock {
                    target: LockTarget::Team { environment: env("dev"), team: team("core") },
                    lock_id: lock_id("team-hold"),
                    message: "m".into(),
                }),
            ),
            (
                "team change",
                Request::UpdateApplication(UpdateApplication {
                    application: app("zed"),
                    team: Some(team("other")),
                    repository: None,
                }),
            ),
            (
                "queued deploy",
                Request::Deploy(Deploy {
                    environment: env("dev"),
                    application: app("api"),
                    version: v(1),
                    lock_behavior: crate::LockBehavior::Queue,
                }),
            ),
            (
                "removal from an environment",
                Request::RemoveFromEnvironment(RemoveFromEnvironment {
                    environment: env("review/x"),
                    application: app("zed"),
                }),
            ),
            (
                "environment config",
                Request::UpdateEnvironment(UpdateEnvironment {
                    name: env("review/x"),
                    external_url: Some("https://x.example".into()),
                    tier: None,
                    upstream: None,
                    environment_group: None,
                    protected: None,
                    argocd: None,
                    argocd_source: None,
                }),
            ),
            (
                "lock removed",
                Request::DeleteLock(DeleteLock {
                    target: LockTarget::Environment { environment: env("dev") },
                    lock_id: lock_id("freeze"),
                }),
            ),
        ];
        for (what, request) in changes {
            let mut stage = Stage::new(&repo, Some(repo.find_tree(tree).unwrap()));
            if let Err(e) = run(&mut stage, request) {
                panic!("{what}: {e}");
            }
            let new = stage.write_tree().unwrap();
            assert_ne!(new, tree, "{what} changed nothing");
            let at = Stage::new(&repo, Some(repo.find_tree(new).unwrap()));
            let paths = changed(&repo, tree, new);
            let updated =
                overview_update(&at, &before, &paths).unwrap().unwrap_or_else(|| panic!("{what}: not followed"));
            let full = overview(&at).unwrap();
            assert_eq!(updated, full, "{what}: the update differs from a full read (paths {paths:?})");
            (before, tree) = (full, new);
        }
        // A new environment is read in full.
        let mut stage = Stage::new(&repo, Some(repo.find_tree(tree).unwrap()));
        create_env(&mut stage, "prod", from_env("dev"), None);
        let new = stage.write_tree().unwrap();
        let at = Stage::new(&repo, Some(repo.find_tree(new).unwrap()));
        assert_eq!(overview_update(&at, &before, &changed(&repo, tree, new)).unwrap(), None);
    }
}
