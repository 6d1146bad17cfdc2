//! The write requests the single writer applies, as recorded in each commit's `Railyard-Request` trailer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::argocd::ArgoCd;
pub use crate::model::{
    DeploymentRecord, DeploymentStatus, FlowRunRecord, NodeOverride, RunStatus, StepRecord, StepStatus, Template,
};
use crate::model::{EnvironmentConfig, Identity, Tier, Upstream};
use crate::names::{AppName, EnvName, GroupName, LockId, TagName, TeamName, Version};

/// What a deploy does when a lock stands in the way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockBehavior {
    /// Refuse with 409 naming the locks.
    #[default]
    Fail,
    /// Record the version as `queued_version`; a later train or deploy moves it.
    Queue,
    /// Deploy anyway.
    Ignore,
}

/// What a lock is put on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum LockTarget {
    Environment {
        environment: EnvName,
    },
    Application {
        environment: EnvName,
        application: AppName,
    },
    Team {
        environment: EnvName,
        team: TeamName,
    },
    /// Every environment of the group (one commit).
    EnvironmentGroup {
        group: GroupName,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEnvironment {
    pub name: EnvName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_group: Option<GroupName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Argo CD settings (checked with [`crate::argocd::ArgoCd::parse`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoCd>,
    /// Where Argo CD reads the repo, sent with settings (the server's flags): recorded if the repo has none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd_source: Option<crate::argocd::Source>,
}

/// Reads a field that may be absent (None), null (Some(None)) or set (Some(Some)).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Changes to an environment's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateEnvironment {
    pub name: EnvName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_group: Option<GroupName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    /// New Argo CD settings; `Some(None)` removes them (and the environment's Argo CD file).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub argocd: Option<Option<ArgoCd>>,
    /// As in [`CreateEnvironment::argocd_source`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd_source: Option<crate::argocd::Source>,
}

/// Records where Argo CD reads the repo (`--argocd-repo-url` and `--branch`); the API sends it at start. It changes
/// the repo only in one that uses Argo CD and recorded another source (or none), rewriting every environment's Argo
/// CD file then; a repo without Argo CD settings gets no commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetArgoCdSource {
    pub source: crate::argocd::Source,
}

/// Sets an environment's state to `stopped` (GitLab's stop; `force` is accepted for its clients and changes nothing,
/// as Railyard runs no stop actions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopEnvironment {
    pub name: EnvName,
    #[serde(default)]
    pub force: bool,
}

/// Removes a stopped environment and everything under `environments/<env>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteEnvironment {
    pub name: EnvName,
}

/// Stops every unprotected, not yet stopped environment last changed (settings or a deploy) before `before`
/// (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopStaleEnvironments {
    pub before: String,
}

/// Deletes up to `limit` stopped review apps (`review/…`) last changed before `before` (RFC 3339); protected ones are
/// reported as unprocessable and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReviewApps {
    pub before: String,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRelease {
    pub application: AppName,
    /// None: the next number after the highest existing release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    #[serde(default)]
    pub source_commit_id: String,
    #[serde(default)]
    pub source_author: String,
    #[serde(default)]
    pub source_message: String,
    #[serde(default)]
    pub display_version: String,
    /// Environment → blob id (hex) of the manifests, already written to the repo's object store.
    pub manifests: BTreeMap<EnvName, String>,
    /// `--release-versions-limit` when the upload was accepted (None: keep every release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

/// Retention of an upload: at most `limit` releases are kept beyond those still in use (Kuberpult's
/// `releaseVersionsLimit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// 0: keep every release.
    pub limit: u32,
    /// The releases the upload deleted, filled in when it was applied: a replay deletes these (those still there
    /// and not in use) instead of counting again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Vec<Version>>,
}

/// Creates an undeploy release of `application`: the next version, marked `undeploy`, with an empty manifest for
/// every environment the application is in; deployed at once to `upstream.latest` environments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateUndeploy {
    pub application: AppName,
    /// The number the release got, filled in when it was applied (None: the next number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
}

/// Removes `application` everywhere: its releases and every environment's directory of it. Only when every
/// environment runs its undeploy release and no application lock holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteApplication {
    pub application: AppName,
}

/// Removes `application` from `environment` and keeps trains from bringing it back until a release is deployed
/// there explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveFromEnvironment {
    pub environment: EnvName,
    pub application: AppName,
}

/// Deploy and lock (Kuberpult's "Deploy & Lock"): deploys an older release and puts an application lock on it in
/// the same commit, so the next train does not roll it forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    pub environment: EnvName,
    pub application: AppName,
    /// None: the newest release older than the deployed one with a manifest for the environment (filled in when
    /// applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// None: `rollback-<version>` (filled in when applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<LockId>,
    #[serde(default)]
    pub message: String,
}

/// Stores a release-flow template (validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutFlow {
    pub flow: EnvName,
    pub template: Template,
}

/// Runs a flow: its steps, resolved from the template with the run's inputs, applied in order to one tree; all or
/// nothing. The run record is written either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFlow {
    pub flow: EnvName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub inputs: RunInputs,
    pub steps: Vec<Step>,
}

/// An Aviator-style release candidate of a project (an application): a release whose `display_version` is the
/// candidate's version (`<release>-rc<N>`), cut at `commit` of `repository`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateReleaseCandidate {
    pub application: AppName,
    pub release_candidate_version: String,
    pub repository: String,
    pub commit: String,
    #[serde(default)]
    pub manifests: BTreeMap<EnvName, String>,
    /// What the build webhook answered, when a build was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<serde_json::Value>,
}

/// Deploys a release candidate to an environment and records the deployment (status `pending`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployReleaseCandidate {
    pub application: AppName,
    pub environment: EnvName,
    pub release_candidate_version: String,
}

/// Sets the status of the latest deployment of a release candidate in an environment, recording one (without
/// deploying) if there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetDeploymentStatus {
    pub application: AppName,
    pub environment: EnvName,
    pub release_candidate_version: String,
    pub status: DeploymentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    pub environment: EnvName,
    pub application: AppName,
    pub version: Version,
    #[serde(default)]
    pub lock_behavior: LockBehavior,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateLock {
    pub target: LockTarget,
    pub lock_id: LockId,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteLock {
    pub target: LockTarget,
    pub lock_id: LockId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateApplication {
    pub application: AppName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// What a release train moves: one environment, or every environment of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum TrainTarget {
    Environment { environment: EnvName },
    EnvironmentGroup { group: GroupName },
}

/// A release train (SPEC §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseTrain {
    pub target: TrainTarget,
    /// Only apps whose team is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamName>,
    /// Read the source state from the tree of this tag rather than the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_git_tag: Option<TagName>,
    /// The commit `source_git_tag` named when the train was accepted (hex); the tree it is read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    /// A tag the exporter creates on the remote, pointing at the train's commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_tag: Option<TagName>,
    /// With `--minimize-exported-data`, a train that changes nothing makes no commit (and no tag).
    #[serde(default)]
    pub minimize: bool,
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Request {
    CreateEnvironment(CreateEnvironment),
    UpdateEnvironment(UpdateEnvironment),
    StopEnvironment(StopEnvironment),
    DeleteEnvironment(DeleteEnvironment),
    StopStaleEnvironments(StopStaleEnvironments),
    DeleteReviewApps(DeleteReviewApps),
    CreateRelease(CreateRelease),
    PutFlow(PutFlow),
    RunFlow(RunFlow),
    CreateReleaseCandidate(CreateReleaseCandidate),
    DeployReleaseCandidate(DeployReleaseCandidate),
    SetDeploymentStatus(SetDeploymentStatus),
    Deploy(Deploy),
    CreateLock(CreateLock),
    DeleteLock(DeleteLock),
    UpdateApplication(UpdateApplication),
    ReleaseTrain(ReleaseTrain),
    SetArgoCdSource(SetArgoCdSource),
    CreateUndeploy(CreateUndeploy),
    DeleteApplication(DeleteApplication),
    RemoveFromEnvironment(RemoveFromEnvironment),
    Rollback(Rollback),
}

/// A request with who asked and when: what the trailer records, so that a write can be replayed as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub author: Identity,
    /// RFC 3339 UTC time the request was accepted; written into `created_at` / `deployed_at_utc`.
    pub at: String,
    pub request: Request,
}

fn target_text(t: &LockTarget) -> String {
    match t {
        LockTarget::Environment { environment } => format!("environment {environment}"),
        LockTarget::Application { environment, application } => format!("{application} in {environment}"),
        LockTarget::Team { environment, team } => format!("team {team} in {environment}"),
        LockTarget::EnvironmentGroup { group } => format!("environment group {group}"),
    }
}

impl Request {
    /// A line a person can read, for the commit message.
    pub fn summary(&self) -> String {
        match self {
            Request::CreateEnvironment(r) => format!("create environment {}", r.name),
            Request::UpdateEnvironment(r) => format!("update environment {}", r.name),
            Request::StopEnvironment(r) => format!("stop environment {}", r.name),
            Request::DeleteEnvironment(r) => format!("delete environment {}", r.name),
            Request::StopStaleEnvironments(r) => format!("stop environments unchanged since {}", r.before),
            Request::DeleteReviewApps(r) => format!("delete review apps stopped before {}", r.before),
            Request::CreateRelease(r) => {
                let envs: Vec<&str> = r.manifests.keys().map(EnvName::as_str).collect();
                let v = r.version.map_or_else(|| "(next)".to_owned(), |v| v.to_string());
                let mut s = format!("release {} {v} ({})", r.application, envs.join(", "));
                if let Some(deleted) = r.retention.as_ref().and_then(|t| t.deleted.as_ref()).filter(|d| !d.is_empty()) {
                    let list: Vec<String> = deleted.iter().map(ToString::to_string).collect();
                    s.push_str(&format!(", deleting old releases {}", list.join(", ")));
                }
                s
            }
            Request::CreateUndeploy(r) => {
                let v = r.version.map_or_else(|| "(next)".to_owned(), |v| v.to_string());
                format!("undeploy release {} {v}", r.application)
            }
            Request::DeleteApplication(r) => format!("delete application {}", r.application),
            Request::RemoveFromEnvironment(r) => format!("remove {} from {}", r.application, r.environment),
            Request::Rollback(r) => {
                let v = r.version.map_or_else(|| "(previous)".to_owned(), |v| v.to_string());
                format!("roll back {} in {} to {v} and lock it", r.application, r.environment)
            }
            Request::PutFlow(r) => {
                format!("release flow {}: store template ({} steps)", r.flow, r.template.steps.len())
            }
            Request::RunFlow(r) => {
                let name = r.name.as_deref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
                format!("release flow {}: run{name} ({} steps)", r.flow, r.steps.len())
            }
            Request::CreateReleaseCandidate(r) => {
                format!("release candidate {} {}", r.application, r.release_candidate_version)
            }
            Request::DeployReleaseCandidate(r) => {
                format!("deploy {} {} to {}", r.application, r.release_candidate_version, r.environment)
            }
            Request::SetDeploymentStatus(r) => format!(
                "deployment of {} {} in {}: {}",
                r.application,
                r.release_candidate_version,
                r.environment,
                serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
            ),
            Request::Deploy(r) => format!("deploy {} {} to {}", r.application, r.version, r.environment),
            Request::CreateLock(r) => format!("lock {}: {}", target_text(&r.target), r.lock_id),
            Request::DeleteLock(r) => format!("unlock {}: {}", target_text(&r.target), r.lock_id),
            Request::UpdateApplication(r) => format!("update application {}", r.application),
            Request::ReleaseTrain(r) => {
                let target = match &r.target {
                    TrainTarget::Environment { environment } => environment.to_string(),
                    TrainTarget::EnvironmentGroup { group } => format!("group {group}"),
                };
                let mut s = format!("release train to {target}");
                if let Some(t) = &r.team {
                    s.push_str(&format!(" (team {t})"));
                }
                if let Some(t) = &r.source_git_tag {
                    s.push_str(&format!(" from tag {t}"));
                }
                s
            }
            Request::SetArgoCdSource(r) => {
                format!("argocd: read {} at {}", r.source.repo_url, r.source.target_revision)
            }
        }
    }

    /// The tags this request asks the exporter to create on its commit.
    pub fn git_tags(&self) -> Vec<&TagName> {
        match self {
            Request::ReleaseTrain(r) => r.git_tag.iter().collect(),
            Request::RunFlow(r) => r
                .steps
                .iter()
                .flat_map(|s| match &s.action {
                    Action::Tag { tag } => vec![tag],
                    Action::Request { request } => request.git_tags(),
                    Action::DeployCandidate { .. } => vec![],
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What one request did (the HTTP answer adds the commit).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Environment(EnvironmentCreated),
    EnvironmentDeleted(EnvironmentDeleted),
    EnvironmentsStopped(EnvironmentsStopped),
    ReviewAppsDeleted(ReviewAppsDeleted),
    ReleaseCandidate(ReleaseCandidateCreated),
    FlowStored(FlowStored),
    FlowRun(FlowRunRecord),
    Deployment(DeploymentRecord),
    Release(ReleaseCreated),
    Deploy(Deployed),
    Lock(LockChanged),
    Application(ApplicationUpdated),
    Train(TrainResult),
    ArgoCdSource(ArgoCdSourceSet),
    Undeploy(UndeployCreated),
    ApplicationDeleted(ApplicationDeleted),
    RemovedFromEnvironment(RemovedFromEnvironment),
    RolledBack(RolledBack),
}

/// The typed result of one kind of request, taken out of an [`Outcome`] (None: the request answered another kind).
macro_rules! outcome_kinds {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl TryFrom<Outcome> for $ty {
            type Error = Outcome;
            fn try_from(o: Outcome) -> std::result::Result<Self, Outcome> {
                match o {
                    Outcome::$variant(v) => Ok(v),
                    other => Err(other),
                }
            }
        })*
    };
}

outcome_kinds!(
    FlowStored(FlowStored),
    FlowRun(FlowRunRecord),
    Train(TrainResult),
    Release(ReleaseCreated),
    ReleaseCandidate(ReleaseCandidateCreated),
    Deploy(Deployed),
    Lock(LockChanged),
    Application(ApplicationUpdated),
    EnvironmentDeleted(EnvironmentDeleted),
    EnvironmentsStopped(EnvironmentsStopped),
    ReviewAppsDeleted(ReviewAppsDeleted),
    Deployment(DeploymentRecord),
    Environment(EnvironmentCreated),
    Undeploy(UndeployCreated),
    ApplicationDeleted(ApplicationDeleted),
    RemovedFromEnvironment(RemovedFromEnvironment),
    RolledBack(RolledBack),
);

impl Outcome {
    /// True when the request wants a commit even if the tree did not change (a train that marks a moment).
    pub fn wants_commit(&self) -> bool {
        matches!(self, Outcome::Train(t) if t.wants_commit)
    }
}

/// Why a release train did not move an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    EnvironmentLocked,
    NoUpstream,
    ApplicationLocked,
    TeamLocked,
    NotInSource,
    NoManifestForEnvironment,
    TeamFiltered,
    NoTeamPermission,
    AlreadyDeployed,
    /// The application was removed from the environment and has not been deployed there explicitly since.
    RemovedFromEnvironment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrainMove {
    pub application: AppName,
    pub from: Option<Version>,
    pub to: Version,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrainSkip {
    pub application: AppName,
    pub reason: SkipReason,
}

/// What a train did in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentTrain {
    pub environment: EnvName,
    /// The upstream environment, `latest`, or null when the environment has no upstream.
    pub source: Option<String>,
    pub deployed: Vec<TrainMove>,
    pub skipped: Vec<TrainSkip>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrainResult {
    pub environments: Vec<EnvironmentTrain>,
    /// The tag requested for the commit.
    pub tag: Option<TagName>,
    /// True when the train moves nothing: without `--minimize-exported-data` its commit (Kuberpult's marker) then
    /// changes no file of its own.
    pub empty: bool,
    #[serde(skip)]
    pub wants_commit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentCreated {
    pub name: EnvName,
    #[serde(flatten)]
    pub config: EnvironmentConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowStored {
    pub flow: EnvName,
    pub steps: usize,
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseCandidateCreated {
    pub project: AppName,
    pub release_candidate_version: String,
    /// The Railyard release number that holds the candidate.
    pub version: Version,
    pub created: bool,
    pub repo: String,
    pub commit: String,
    pub deployed: Vec<EnvName>,
    pub queued: Vec<EnvName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_workflow: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentDeleted {
    pub name: EnvName,
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentsStopped {
    pub stopped: Vec<EnvName>,
}

/// GitLab's answer to the review-app clean-up: what is (or would be) deleted, and what cannot be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewAppsDeleted {
    pub scheduled_entries: Vec<EnvironmentCreated>,
    pub unprocessable_entries: Vec<EnvironmentCreated>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseCreated {
    pub application: AppName,
    pub version: Version,
    /// False when the same release already existed with identical content.
    pub created: bool,
    /// `upstream.latest` environments the release was deployed to at once.
    pub deployed: Vec<EnvName>,
    /// `upstream.latest` environments where a lock queued it instead.
    pub queued: Vec<EnvName>,
    /// Old releases retention deleted in the same commit (`--release-versions-limit`).
    pub deleted_versions: Vec<Version>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UndeployCreated {
    pub application: AppName,
    pub version: Version,
    pub undeploy: bool,
    /// False when the newest release already was this undeploy release.
    pub created: bool,
    /// The environments the release has an (empty) manifest for.
    pub environments: Vec<EnvName>,
    pub deployed: Vec<EnvName>,
    pub queued: Vec<EnvName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplicationDeleted {
    pub application: AppName,
    /// The environments it was removed from.
    pub environments: Vec<EnvName>,
    /// The releases deleted with it.
    pub deleted_versions: Vec<Version>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedFromEnvironment {
    pub environment: EnvName,
    pub application: AppName,
    /// The version that was deployed there.
    pub removed_version: Option<Version>,
    /// False when it already was removed.
    pub changed: bool,
}

/// The lock a rollback put on the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackLock {
    #[serde(rename = "lockId")]
    pub lock_id: LockId,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolledBack {
    pub environment: EnvName,
    pub application: AppName,
    pub version: Version,
    pub previous_version: Version,
    pub lock: RollbackLock,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployed {
    pub environment: EnvName,
    pub application: AppName,
    pub version: Version,
    pub previous_version: Option<Version>,
    /// True when a lock queued the version instead of deploying it.
    pub queued: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockChanged {
    #[serde(rename = "lockId")]
    pub lock_id: LockId,
    pub environments: Vec<EnvName>,
    /// False when every environment already was as asked.
    pub changed: bool,
}

/// What recording the Argo CD source did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgoCdSourceSet {
    pub source: crate::argocd::Source,
    /// False when the repo already recorded this source.
    pub changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplicationUpdated {
    pub application: AppName,
    pub team: Option<TeamName>,
    pub repository: Option<String>,
}

/// One concrete step of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    #[serde(rename = "ref")]
    pub step_ref: String,
    pub kind: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
pub enum Action {
    /// A train, a deploy of a version, a lock or an unlock: the request the API would queue.
    Request {
        request: Box<Request>,
    },
    DeployCandidate {
        application: AppName,
        environment: EnvName,
        release_candidate_version: String,
        lock_behavior: LockBehavior,
    },
    Tag {
        tag: TagName,
    },
}

/// A run's inputs, as the API received them (validated).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunInputs {
    pub arguments: BTreeMap<String, String>,
    pub overrides: BTreeMap<String, BTreeMap<String, String>>,
    pub release_node_overrides: BTreeMap<AppName, NodeOverride>,
}
