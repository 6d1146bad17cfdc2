//! Transformers: each turns one request into edits of a staged tree, or an error that leaves it untouched.

mod application;
pub mod argocd;
pub mod candidate;
mod deploy;
mod environment;
pub mod flow;
pub mod lifecycle;
mod lock;
mod release;
mod train;

use crate::error::Result;
use crate::model::Identity;
use crate::request::{Envelope, Outcome, Request};
use crate::stage::Stage;

pub use argocd::finish;
pub use deploy::blocking_locks;

/// Who and when, for the files a transformer writes.
pub(crate) struct Ctx<'a> {
    pub author: &'a Identity,
    pub at: &'a str,
}

/// Applies one request inside its own layer of `stage`: on error the layer is dropped, so a failing request
/// leaves nothing behind and the rest of a batch goes on. What the request left open and the state decided
/// (the number of a release uploaded without one) is filled into `envelope`, so its trailer replays the same write.
pub fn apply(stage: &mut Stage<'_>, envelope: &mut Envelope) -> Result<Outcome> {
    let ctx = Ctx { author: &envelope.author, at: &envelope.at };
    stage.begin();
    let result = match &envelope.request {
        Request::CreateEnvironment(r) => environment::create(stage, &ctx, r).map(Outcome::Environment),
        Request::UpdateEnvironment(r) => environment::update(stage, &ctx, r).map(Outcome::Environment),
        Request::StopEnvironment(r) => environment::stop(stage, &ctx, r).map(Outcome::Environment),
        Request::DeleteEnvironment(r) => environment::delete(stage, r).map(Outcome::EnvironmentDeleted),
        Request::StopStaleEnvironments(r) => environment::stop_stale(stage, &ctx, r).map(Outcome::EnvironmentsStopped),
        Request::DeleteReviewApps(r) => environment::delete_review_apps(stage, r).map(Outcome::ReviewAppsDeleted),
        Request::CreateRelease(r) => release::create(stage, &ctx, r).map(Outcome::Release),
        Request::PutFlow(r) => flow::put(stage, r).map(Outcome::FlowStored),
        Request::RunFlow(r) => flow::run_flow(stage, &ctx, r).map(Outcome::FlowRun),
        Request::CreateReleaseCandidate(r) => candidate::create(stage, &ctx, r).map(Outcome::ReleaseCandidate),
        Request::DeployReleaseCandidate(r) => candidate::deploy(stage, &ctx, r).map(Outcome::Deployment),
        Request::SetDeploymentStatus(r) => candidate::set_status(stage, &ctx, r).map(Outcome::Deployment),
        Request::Deploy(r) => deploy::deploy(stage, &ctx, r).map(Outcome::Deploy),
        Request::CreateLock(r) => lock::create(stage, &ctx, r).map(Outcome::Lock),
        Request::DeleteLock(r) => lock::delete(stage, r).map(Outcome::Lock),
        Request::UpdateApplication(r) => application::update(stage, r).map(Outcome::Application),
        Request::ReleaseTrain(r) => train::train(stage, &ctx, r).map(Outcome::Train),
        Request::SetArgoCdSource(r) => argocd::set_source(stage, r).map(Outcome::ArgoCdSource),
        Request::CreateUndeploy(r) => lifecycle::undeploy(stage, &ctx, r).map(Outcome::Undeploy),
        Request::DeleteApplication(r) => lifecycle::delete_app(stage, r).map(Outcome::ApplicationDeleted),
        Request::RemoveFromEnvironment(r) => {
            lifecycle::remove_from_env(stage, &ctx, r).map(Outcome::RemovedFromEnvironment)
        }
        Request::Rollback(r) => lifecycle::rollback(stage, &ctx, r).map(Outcome::RolledBack),
    };
    match &result {
        Ok(outcome) => {
            stage.keep();
            match (&mut envelope.request, outcome) {
                (Request::CreateRelease(r), Outcome::Release(out)) => {
                    r.version = Some(out.version);
                    if let Some(t) = &mut r.retention {
                        t.deleted = Some(out.deleted_versions.clone());
                    }
                }
                (Request::CreateUndeploy(r), Outcome::Undeploy(out)) => r.version = Some(out.version),
                (Request::Rollback(r), Outcome::RolledBack(out)) => {
                    r.version = Some(out.version);
                    r.lock_id = Some(out.lock.lock_id.clone());
                }
                _ => {}
            }
        }
        Err(_) => stage.discard(),
    }
    result
}

#[cfg(test)]
pub(crate) mod test_support {
    use git2::Repository;

    use crate::model::{Identity, Upstream};
    use crate::names::*;
    use crate::request::*;
    use crate::stage::Stage;

    pub fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        (dir, repo)
    }

    pub fn run(stage: &mut Stage<'_>, request: Request) -> crate::Result<crate::request::Outcome> {
        let mut envelope = Envelope {
            author: Identity { name: "Tester".into(), email: "t@example.com".into() },
            at: "2026-11-23T10:00:00Z".into(),
            request,
        };
        super::apply(stage, &mut envelope)
    }

    pub fn env(s: &str) -> EnvName {
        EnvName::parse(s).unwrap()
    }
    pub fn app(s: &str) -> AppName {
        AppName::parse(s).unwrap()
    }
    pub fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }
    pub fn lock_id(s: &str) -> LockId {
        LockId::parse(s).unwrap()
    }

    pub fn create_env(stage: &mut Stage<'_>, name: &str, upstream: Upstream, group: Option<&str>) {
        run(
            stage,
            Request::CreateEnvironment(CreateEnvironment {
                name: env(name),
                upstream: Some(upstream),
                environment_group: group.map(|g| GroupName::parse(g).unwrap()),
                tier: None,
                external_url: None,
                argocd: None,
                argocd_source: None,
            }),
        )
        .unwrap();
    }

    pub fn latest() -> Upstream {
        Upstream { latest: Some(true), environment: None }
    }

    pub fn from_env(e: &str) -> Upstream {
        Upstream { latest: None, environment: Some(env(e)) }
    }

    pub fn release(
        stage: &mut Stage<'_>,
        a: &str,
        version: Option<u64>,
        manifests: &[(&str, &str)],
    ) -> crate::Result<crate::request::Outcome> {
        let repo = stage.repo();
        let manifests: Vec<(&str, String)> =
            manifests.iter().map(|(e, m)| (*e, repo.blob(m.as_bytes()).unwrap().to_string())).collect();
        run(
            stage,
            Request::CreateRelease(CreateRelease {
                version: version.map(v),
                team: Some(TeamName::parse("core").unwrap()),
                source_commit_id: "abc1234".into(),
                source_author: "dev".into(),
                source_message: "change".into(),
                ..bare_release(a, &manifests)
            }),
        )
    }

    /// A release upload of `a` with these manifest ids (blob ids, as hex) and nothing else set.
    pub fn bare_release(a: &str, manifests: &[(&str, String)]) -> CreateRelease {
        CreateRelease {
            application: app(a),
            version: None,
            team: None,
            source_commit_id: String::new(),
            source_author: String::new(),
            source_message: String::new(),
            display_version: String::new(),
            manifests: manifests.iter().map(|(e, m)| (env(e), m.clone())).collect(),
            retention: None,
        }
    }

    pub fn text(stage: &Stage<'_>, path: &str) -> Option<String> {
        stage.read_text(path).unwrap()
    }
}
