//! Every path of the manifest-repo layout (SPEC §2). No other module formats a repo path.

use crate::names::{AppName, EnvName, LockId, TeamName, Version};

pub const ENVIRONMENTS: &str = "environments";
pub const APPLICATIONS: &str = "applications";
/// Railyard's own bookkeeping inside the repo (counters), kept apart from what Argo CD reads.
pub const NEXT_ENVIRONMENT_ID: &str = ".railyard/next-environment-id";
/// Where Argo CD reads the repo (URL and branch), as the API was last started with: the generated Applications
/// name it, and a replay reads it from here rather than from the flags of whoever replays.
pub const ARGOCD_SOURCE: &str = ".railyard/argocd-source.json";
/// The generated Argo CD objects, one file per environment (Kuberpult's path).
pub const ARGOCD_DIR: &str = "argocd/v1alpha1";

/// The four files of a lock directory.
pub const LOCK_MESSAGE: &str = "message";
pub const LOCK_CREATED_BY_NAME: &str = "created_by_name";
pub const LOCK_CREATED_BY_EMAIL: &str = "created_by_email";
pub const LOCK_CREATED_AT: &str = "created_at";

/// The metadata files of a release directory.
pub const RELEASE_SOURCE_COMMIT_ID: &str = "source_commit_id";
pub const RELEASE_SOURCE_AUTHOR: &str = "source_author";
pub const RELEASE_SOURCE_MESSAGE: &str = "source_message";
pub const RELEASE_DISPLAY_VERSION: &str = "display_version";
pub const RELEASE_CREATED_AT: &str = "created_at";
/// The marker file of an undeploy release (Kuberpult's "undeploy version"): its manifests are empty.
pub const RELEASE_UNDEPLOY: &str = "undeploy";

pub fn env_dir(env: &EnvName) -> String {
    format!("{ENVIRONMENTS}/{env}")
}

pub fn env_config(env: &EnvName) -> String {
    format!("{ENVIRONMENTS}/{env}/config.json")
}

pub fn env_locks_dir(env: &EnvName) -> String {
    format!("{ENVIRONMENTS}/{env}/locks")
}

pub fn env_apps_dir(env: &EnvName) -> String {
    format!("{ENVIRONMENTS}/{env}/applications")
}

pub fn env_app_dir(env: &EnvName, app: &AppName) -> String {
    format!("{ENVIRONMENTS}/{env}/applications/{app}")
}

pub fn env_app_version(env: &EnvName, app: &AppName) -> String {
    format!("{}/version", env_app_dir(env, app))
}

pub fn env_app_queued_version(env: &EnvName, app: &AppName) -> String {
    format!("{}/queued_version", env_app_dir(env, app))
}

pub fn env_app_manifests(env: &EnvName, app: &AppName) -> String {
    format!("{}/manifests.yaml", env_app_manifests_dir(env, app))
}

/// The directory an Argo CD Application of `app` in `env` reads.
pub fn env_app_manifests_dir(env: &EnvName, app: &AppName) -> String {
    format!("{}/manifests", env_app_dir(env, app))
}

/// The Argo CD AppProject and Applications of `env` (`review/x` lives in `argocd/v1alpha1/review/x.yaml`).
pub fn argocd_env_file(env: &EnvName) -> String {
    format!("{ARGOCD_DIR}/{env}.yaml")
}

pub fn env_app_deployed_by(env: &EnvName, app: &AppName) -> String {
    format!("{}/deployed_by", env_app_dir(env, app))
}

pub fn env_app_deployed_by_email(env: &EnvName, app: &AppName) -> String {
    format!("{}/deployed_by_email", env_app_dir(env, app))
}

pub fn env_app_deployed_at(env: &EnvName, app: &AppName) -> String {
    format!("{}/deployed_at_utc", env_app_dir(env, app))
}

pub fn env_app_locks_dir(env: &EnvName, app: &AppName) -> String {
    format!("{}/locks", env_app_dir(env, app))
}

/// The markers of the applications removed from `env` (`DELETE /api/environments/{env}/applications/{app}`):
/// outside `applications/`, so the app's directory is gone while the marker keeps trains from bringing it back.
pub fn env_removed_apps_dir(env: &EnvName) -> String {
    format!("{ENVIRONMENTS}/{env}/removed_applications")
}

/// The marker of `app` removed from `env`; it holds the time of the removal and goes with the next explicit deploy.
pub fn env_app_removed(env: &EnvName, app: &AppName) -> String {
    format!("{}/{app}", env_removed_apps_dir(env))
}

pub fn env_teams_dir(env: &EnvName) -> String {
    format!("{ENVIRONMENTS}/{env}/teams")
}

pub fn env_team_locks_dir(env: &EnvName, team: &TeamName) -> String {
    format!("{}/{team}/locks", env_teams_dir(env))
}

/// A lock directory inside one of the `*_locks_dir` directories.
pub fn lock_dir(locks_dir: &str, id: &LockId) -> String {
    format!("{locks_dir}/{id}")
}

/// A file (one of the `LOCK_*` names) inside a lock directory.
pub fn lock_file(lock_dir: &str, file: &str) -> String {
    format!("{lock_dir}/{file}")
}

pub fn app_dir(app: &AppName) -> String {
    format!("{APPLICATIONS}/{app}")
}

pub fn app_team(app: &AppName) -> String {
    format!("{APPLICATIONS}/{app}/team")
}

pub fn app_repository(app: &AppName) -> String {
    format!("{APPLICATIONS}/{app}/repository")
}

pub fn app_releases_dir(app: &AppName) -> String {
    format!("{APPLICATIONS}/{app}/releases")
}

/// Release-flow templates and runs.
pub const RELEASE_FLOWS: &str = "release-flows";

/// The folder that holds a flow's runs; a flow named `<pipeline>/runs` would keep its files inside flow
/// `<pipeline>`'s, so such names are refused ([`check_flow_name`]).
const FLOW_RUNS: &str = "runs";

/// Refuses a flow name whose files would lie inside another flow's: `p/runs` (its runs would be
/// `release-flows/p/runs/runs/…`, inside the runs of flow `p`).
pub fn check_flow_name(flow: &EnvName) -> crate::Result<()> {
    match flow.as_str().split_once('/') {
        Some((pipeline, FLOW_RUNS)) => Err(crate::Error::invalid(
            "flow",
            format!("a flow may not be named {pipeline}/{FLOW_RUNS}: flow {pipeline} keeps its runs there"),
        )),
        _ => Ok(()),
    }
}

/// The template of flow `flow`.
pub fn flow_template(flow: &EnvName) -> String {
    format!("{RELEASE_FLOWS}/{flow}.yaml")
}

/// The run records of flow `flow`.
pub fn flow_runs_dir(flow: &EnvName) -> String {
    format!("{RELEASE_FLOWS}/{flow}/{FLOW_RUNS}")
}

/// One run record.
pub fn flow_run(flow: &EnvName, id: u64) -> String {
    format!("{}/{id}.json", flow_runs_dir(flow))
}

/// What the build webhook answered when a release candidate asked for a build.
pub fn release_build(app: &AppName, version: Version) -> String {
    format!("{}/build.json", release_dir(app, version))
}

/// The deployment records of `app` in `env`.
pub fn app_deployments_dir(app: &AppName, env: &EnvName) -> String {
    format!("{APPLICATIONS}/{app}/deployments/{env}")
}

/// One deployment record.
pub fn deployment_record(app: &AppName, env: &EnvName, id: u64) -> String {
    format!("{}/{id}.json", app_deployments_dir(app, env))
}

pub fn release_dir(app: &AppName, version: Version) -> String {
    format!("{APPLICATIONS}/{app}/releases/{version}")
}

/// A metadata file (one of the `RELEASE_*` names) of a release.
pub fn release_file(app: &AppName, version: Version, file: &str) -> String {
    format!("{}/{file}", release_dir(app, version))
}

pub fn release_envs_dir(app: &AppName, version: Version) -> String {
    format!("{}/environments", release_dir(app, version))
}

pub fn release_manifest(app: &AppName, version: Version, env: &EnvName) -> String {
    format!("{}/environments/{env}/manifests.yaml", release_dir(app, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        let env = EnvName::parse("review/fix-foo").unwrap();
        let app = AppName::parse("web").unwrap();
        let v = Version::new(3).unwrap();
        assert_eq!(
            env_app_manifests(&env, &app),
            "environments/review/fix-foo/applications/web/manifests/manifests.yaml"
        );
        assert_eq!(
            release_manifest(&app, v, &env),
            "applications/web/releases/3/environments/review/fix-foo/manifests.yaml"
        );
        let team = TeamName::parse("core").unwrap();
        let id = LockId::parse("l1").unwrap();
        assert_eq!(
            lock_file(&lock_dir(&env_team_locks_dir(&env, &team), &id), LOCK_MESSAGE),
            "environments/review/fix-foo/teams/core/locks/l1/message"
        );
        assert_eq!(env_app_removed(&env, &app), "environments/review/fix-foo/removed_applications/web");
        assert_eq!(release_file(&app, v, RELEASE_UNDEPLOY), "applications/web/releases/3/undeploy");
    }
}
