//! Release trains (SPEC §4.2): one environment or a group, with a team filter, a source tag and a tag to create.

use railyard_manifest::request::{ReleaseTrain, TrainResult};
use railyard_manifest::{Error, Request, TagName, TeamName, TrainTarget};

use super::Service;
use super::Written;
use crate::error::{ApiError, ApiResult};

/// A train as asked for.
#[derive(Debug, Clone)]
pub struct Train {
    pub target: TrainTarget,
    pub team: Option<TeamName>,
    pub source_git_tag: Option<TagName>,
    pub git_tag: Option<TagName>,
    pub dry_run: bool,
}

/// What a train request got: what it would do (a dry run, nothing written), or what it did.
#[derive(Debug)]
pub enum TrainAnswer {
    DryRun(TrainResult),
    Done(Written<TrainResult>),
}

pub async fn run(st: &Service, t: Train) -> ApiResult<TrainAnswer> {
    let dry_run = t.dry_run;
    let mut train = ReleaseTrain {
        target: t.target,
        team: t.team,
        source_git_tag: t.source_git_tag,
        source_commit: None,
        git_tag: t.git_tag,
        minimize: st.minimize_exported_data,
    };
    // Before anything is queued: the caller's roles (a dry run is a read), then the tags: an unknown source tag is
    // 404, a taken or conflicting tag name 409. The writer checks roles and tags again on its own state.
    let caller = if dry_run { None } else { st.caller()?.cloned() };
    let source_tag = train.source_git_tag.clone();
    let checked = Request::ReleaseTrain(train.clone());
    train.source_commit = st
        .with_stage(move |stage| {
            if let Some(caller) = &caller {
                caller.check(&crate::auth::required(stage, &checked)?)?;
            }
            let repo = stage.repo();
            crate::tags::check(repo, &checked.git_tags(), &[])?;
            match &source_tag {
                Some(tag) => match railyard_refs::resolve_tag(repo, tag.as_str())? {
                    Some(commit) => Ok(Some(commit.to_string())),
                    None => Err(Error::not_found("tag", tag).into()),
                },
                None => Ok(None),
            }
        })
        .await?;
    let request = Request::ReleaseTrain(train);
    if dry_run {
        let mut outcome = TrainResult::try_from(st.simulate(request).await?)
            .map_err(|other| ApiError::internal(format!("a train simulated as {other:?}")))?;
        // As the writer would: a minimised train that moves nothing makes no commit, so there is nothing to tag.
        if !outcome.wants_commit && outcome.empty {
            outcome.tag = None;
        }
        return Ok(TrainAnswer::DryRun(outcome));
    }
    Ok(TrainAnswer::Done(super::write(st, request).await?))
}
