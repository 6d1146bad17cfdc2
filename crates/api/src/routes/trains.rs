//! Release trains: `PUT /api/environments/{env}/releasetrain`, `PUT /api/environment-groups/{group}/releasetrain`,
//! and the prognosis (a dry run) `GET /api/environments/{env}/releasetrain/prognosis`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::ReleaseTrain;
use railyard_manifest::{EnvName, Error, GroupName, Request, TagName, TeamName, TrainTarget};
use serde_json::{json, Value};

use super::{written, AppState};
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;

type Reply = ApiResult<(StatusCode, Json<Value>)>;

/// The query of a train; unknown parameters are refused so that a typo does not silently train everything.
struct TrainQuery {
    team: Option<TeamName>,
    source_git_tag: Option<TagName>,
    git_tag: Option<TagName>,
    dry_run: bool,
}

fn named<T>(parsed: Result<T, railyard_manifest::NameError>, name: &str) -> ApiResult<T> {
    parsed.map_err(|e| ApiError::from(Error::from(e)).with("field", json!(name)))
}

fn parse_query(q: &HashMap<String, String>) -> ApiResult<TrainQuery> {
    let mut out = TrainQuery { team: None, source_git_tag: None, git_tag: None, dry_run: false };
    for (key, value) in q {
        match key.as_str() {
            "team" if !value.is_empty() => out.team = Some(named(TeamName::parse(value), "team")?),
            "sourceGitTag" if !value.is_empty() => out.source_git_tag = Some(named(TagName::parse(value), key)?),
            "gitTag" if !value.is_empty() => out.git_tag = Some(named(TagName::parse(value), key)?),
            "dryRun" => {
                out.dry_run = match value.as_str() {
                    "" | "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(ApiError::bad_request("dryRun", "dryRun must be true or false")),
                }
            }
            "team" | "sourceGitTag" | "gitTag" => {}
            other => return Err(ApiError::bad_request(other, format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(out)
}

async fn run(st: AppState, target: TrainTarget, q: HashMap<String, String>, force_dry_run: bool) -> Reply {
    let q = parse_query(&q)?;
    let dry_run = q.dry_run || force_dry_run;
    let mut train = ReleaseTrain {
        target,
        team: q.team,
        source_git_tag: q.source_git_tag,
        source_commit: None,
        git_tag: q.git_tag,
        minimize: st.minimize_exported_data,
    };
    // Before anything is queued: the caller's roles (a dry run is a read), then the tags: an unknown source tag is
    // 404, a taken or conflicting tag name 409. The writer checks roles and tags again on its own state.
    let caller = if dry_run { None } else { crate::auth::caller() };
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
                Some(tag) => match railyard_export::resolve_tag(repo, tag.as_str())? {
                    Some(commit) => Ok(Some(commit.to_string())),
                    None => Err(Error::not_found("tag", tag).into()),
                },
                None => Ok(None),
            }
        })
        .await?;
    let request = Request::ReleaseTrain(train);
    if dry_run {
        let mut outcome = st.simulate(request).await?;
        // As the writer would: a minimised train that moves nothing makes no commit, so there is nothing to tag.
        if let railyard_manifest::Outcome::Train(t) = &mut outcome {
            if !t.wants_commit && t.empty {
                t.tag = None;
            }
        }
        return Ok(super::dry_run_answer(&outcome, "dryRun"));
    }
    Ok(written(StatusCode::OK, st.write(request).await?))
}

pub async fn environment(State(st): State<AppState>, p: Params, Query(q): Query<HashMap<String, String>>) -> Reply {
    let target = TrainTarget::Environment { environment: p.get::<EnvName, _>("env")? };
    run(st, target, q, false).await
}

pub async fn group(State(st): State<AppState>, p: Params, Query(q): Query<HashMap<String, String>>) -> Reply {
    let target = TrainTarget::EnvironmentGroup { group: p.get::<GroupName, _>("group")? };
    run(st, target, q, false).await
}

pub async fn prognosis(State(st): State<AppState>, p: Params, Query(q): Query<HashMap<String, String>>) -> Reply {
    let target = TrainTarget::Environment { environment: p.get::<EnvName, _>("env")? };
    run(st, target, q, true).await
}
