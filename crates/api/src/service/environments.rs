//! Environments (GitLab semantics): create, list with filters, get by name or id, update, stop, delete, stop the
//! stale ones, clean up review apps. The native handlers, the GitLab adapter and Kuberpult's create call these.

use railyard_manifest::argocd::ArgoCd;
use railyard_manifest::request::{
    CreateEnvironment, DeleteEnvironment, DeleteReviewApps, EnvironmentCreated, EnvironmentDeleted,
    EnvironmentsStopped, ReviewAppsDeleted, StopEnvironment, StopStaleEnvironments, UpdateEnvironment,
};
use railyard_manifest::{
    state, DeploymentRecord, EnvName, EnvState, EnvironmentConfig, Error, GroupName, Request, Stage, Tier, Upstream,
    Version,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::{Service, Written};
use crate::error::{ApiError, ApiResult};
use crate::routes::AppState;

/// An environment to create.
#[derive(Debug, Clone)]
pub struct NewEnvironment {
    pub name: EnvName,
    pub upstream: Option<Upstream>,
    pub environment_group: Option<GroupName>,
    pub tier: Option<Tier>,
    pub external_url: Option<String>,
    pub argocd: Option<ArgoCd>,
}

/// What an update changes: None leaves a setting as it is; `argocd: Some(None)` removes the Argo CD settings.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub external_url: Option<String>,
    pub tier: Option<Tier>,
    pub upstream: Option<Upstream>,
    pub environment_group: Option<GroupName>,
    pub protected: Option<bool>,
    pub argocd: Option<Option<ArgoCd>>,
}

/// Which environments a list keeps (GitLab's `name`, `search` and `states`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    name: Option<String>,
    search: Option<String>,
    states: Option<Vec<EnvState>>,
}

impl Filter {
    /// A filter as GitLab allows it: `name` or `search`, not both; `search` of at least 3 characters.
    pub fn new(name: Option<String>, search: Option<String>, states: Option<Vec<EnvState>>) -> ApiResult<Self> {
        if name.is_some() && search.is_some() {
            return Err(ApiError::bad_request("search", "name and search cannot be used together"));
        }
        if search.as_ref().is_some_and(|s| s.chars().count() < 3) {
            return Err(ApiError::bad_request("search", "search must be at least 3 characters"));
        }
        Ok(Self { name, search, states })
    }

    fn keeps(&self, name: &EnvName, config: &EnvironmentConfig) -> bool {
        self.name.as_ref().is_none_or(|want| name.as_str() == want)
            && self.search.as_ref().is_none_or(|want| name.as_str().contains(want.as_str()))
            && self.states.as_ref().is_none_or(|ss| ss.contains(&config.state))
    }
}

/// An environment as every surface shows it: its stored settings, `name`, `slug` and `last_deployment`.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentView {
    #[serde(flatten)]
    pub config: EnvironmentConfig,
    pub name: EnvName,
    pub slug: String,
    pub last_deployment: Option<LastDeployment>,
}

/// The environment's last deployment: a deployment record (release candidates) if there is one, else the latest
/// deploy read from the files.
#[derive(Debug, Clone, Serialize)]
pub struct LastDeployment {
    #[serde(flatten)]
    pub kind: DeploymentKind,
    /// GitLab's `sha`: the source commit of the deployed release (a candidate's `commit`, an upload's
    /// `source_commit_id`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

/// Where a [`LastDeployment`] was read from.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum DeploymentKind {
    Record(DeploymentRecord),
    Deploy(DeployView),
}

/// A deploy read from the files, in a deployment record's terms.
#[derive(Debug, Clone, Serialize)]
pub struct DeployView {
    pub application: railyard_manifest::AppName,
    pub version: Option<Version>,
    pub deployed_by: Option<String>,
    pub deployed_by_email: Option<String>,
    pub deployed_at: Option<String>,
    /// Always `success`: a deploy in the files is done.
    pub status: &'static str,
}

/// The review-app clean-up's answer: what is (or, in a dry run, would be) deleted, and the commit.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewApps {
    #[serde(flatten)]
    pub deleted: ReviewAppsDeleted,
    pub commit: Option<String>,
    pub dry_run: bool,
}

/// GitLab's slug: the name with anything but `[a-z0-9]` as `-`, at most 24 characters; a name that had to change
/// gets a 6-character suffix derived from it, so the slug is unique and stable.
pub fn slug(name: &EnvName) -> String {
    let plain: String = name.as_str().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    if plain == name.as_str() && plain.len() <= 24 {
        return plain;
    }
    let hash = git2::Oid::hash_object(git2::ObjectType::Blob, name.as_str().as_bytes())
        .map(|o| o.to_string())
        .unwrap_or_default();
    let mut head: String = plain.chars().take(17).collect();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}-{}", &hash[..6.min(hash.len())])
}

fn view(stage: &Stage<'_>, name: EnvName, config: EnvironmentConfig) -> railyard_manifest::Result<EnvironmentView> {
    let last = match state::last_deployment_record(stage, &name)? {
        Some(r) => Some((r.project.clone(), Some(r.version), DeploymentKind::Record(r))),
        None => state::last_deploy(stage, &name)?.map(|d| {
            let view = DeployView {
                application: d.application.clone(),
                version: d.version,
                deployed_by: d.deployed_by,
                deployed_by_email: d.deployed_by_email,
                deployed_at: d.deployed_at_utc,
                status: "success",
            };
            (d.application, d.version, DeploymentKind::Deploy(view))
        }),
    };
    let last_deployment = match last {
        Some((app, version, kind)) => {
            let release = version.map(|v| state::release(stage, &app, v)).transpose()?.flatten();
            let sha = release.map(|r| r.source_commit_id).filter(|c| !c.is_empty());
            Some(LastDeployment { kind, sha })
        }
        None => None,
    };
    Ok(EnvironmentView { slug: slug(&name), name, config, last_deployment })
}

/// `raw` as a path names an environment: an id (digits) or a name (a name never starts with a digit).
pub fn resolve(stage: &Stage<'_>, raw: &str) -> railyard_manifest::Result<(EnvName, EnvironmentConfig)> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        let id: u64 = raw.parse().map_err(|_| Error::not_found("environment", raw))?;
        return state::env_by_id(stage, id)?.ok_or_else(|| Error::not_found("environment", raw));
    }
    let name = EnvName::parse(raw)?;
    let config = state::require_env(stage, &name)?;
    Ok((name, config))
}

async fn resolve_name(st: &AppState, raw: &str) -> ApiResult<EnvName> {
    let raw = raw.to_owned();
    st.read(move |s| resolve(s, &raw).map(|(n, _)| n)).await
}

/// The environment a write left, with its last deployment as of the head after it.
async fn written_view(st: &Service, request: Request) -> ApiResult<Written<EnvironmentView>> {
    let written: Written<EnvironmentCreated> = super::write(st, request).await?;
    let EnvironmentCreated { name, config } = written.outcome;
    let view = st.read(move |s| view(s, name, config)).await?;
    Ok(Written { outcome: view, commit: written.commit })
}

pub async fn create(st: &Service, e: NewEnvironment) -> ApiResult<Written<EnvironmentView>> {
    let request = CreateEnvironment {
        name: e.name,
        upstream: e.upstream,
        environment_group: e.environment_group,
        tier: e.tier,
        external_url: e.external_url,
        argocd_source: e.argocd.as_ref().map(|_| st.argocd_source.clone()),
        argocd: e.argocd,
    };
    written_view(st, Request::CreateEnvironment(request)).await
}

pub async fn list(st: &AppState, filter: Filter) -> ApiResult<Vec<EnvironmentView>> {
    st.read(move |s| {
        let mut out = Vec::new();
        for (n, c) in state::environments(s)? {
            if filter.keeps(&n, &c) {
                out.push(view(s, n, c)?);
            }
        }
        Ok(out)
    })
    .await
}

/// The environment `raw` names (a name or an id).
pub async fn get(st: &AppState, raw: &str) -> ApiResult<EnvironmentView> {
    let raw = raw.to_owned();
    st.read(move |s| {
        let (n, c) = resolve(s, &raw)?;
        view(s, n, c)
    })
    .await
}

pub async fn update(st: &Service, raw: &str, c: Change) -> ApiResult<Written<EnvironmentView>> {
    let request = UpdateEnvironment {
        name: resolve_name(st, raw).await?,
        external_url: c.external_url,
        tier: c.tier,
        upstream: c.upstream,
        environment_group: c.environment_group,
        protected: c.protected,
        argocd_source: c.argocd.as_ref().and_then(Option::as_ref).map(|_| st.argocd_source.clone()),
        argocd: c.argocd,
    };
    written_view(st, Request::UpdateEnvironment(request)).await
}

pub async fn stop(st: &Service, raw: &str, force: bool) -> ApiResult<Written<EnvironmentView>> {
    let name = resolve_name(st, raw).await?;
    written_view(st, Request::StopEnvironment(StopEnvironment { name, force })).await
}

pub async fn delete(st: &Service, raw: &str) -> ApiResult<Written<EnvironmentDeleted>> {
    let name = resolve_name(st, raw).await?;
    super::write(st, Request::DeleteEnvironment(DeleteEnvironment { name })).await
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap_or(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Stops the environments with no deploy and no change since `before`, which must be between 10 years and 1 week
/// ago.
pub async fn stop_stale(st: &Service, before: OffsetDateTime) -> ApiResult<Written<EnvironmentsStopped>> {
    let now = OffsetDateTime::now_utc();
    if before < now - Duration::days(3653) || before > now - Duration::weeks(1) {
        return Err(ApiError::bad_request("before", "before must be between 10 years ago and 1 week ago"));
    }
    let request = StopStaleEnvironments { before: rfc3339(before) };
    super::write(st, Request::StopStaleEnvironments(request)).await
}

/// Deletes stopped `review/…` environments older than `before`, at most `limit`; a dry run deletes nothing.
pub async fn delete_review_apps(
    st: &Service,
    before: OffsetDateTime,
    limit: usize,
    dry_run: bool,
) -> ApiResult<ReviewApps> {
    let request = Request::DeleteReviewApps(DeleteReviewApps { before: rfc3339(before), limit });
    if dry_run {
        let deleted = ReviewAppsDeleted::try_from(st.simulate(request).await?)
            .map_err(|other| ApiError::internal(format!("a review-app clean-up simulated as {other:?}")))?;
        return Ok(ReviewApps { deleted, commit: None, dry_run: true });
    }
    let written: Written<ReviewAppsDeleted> = super::write(st, request).await?;
    Ok(ReviewApps { deleted: written.outcome, commit: written.commit, dry_run: false })
}
