//! Release trains: `PUT /api/environments/{env}/releasetrain`, `PUT /api/environment-groups/{group}/releasetrain`,
//! and the prognosis (a dry run) `GET /api/environments/{env}/releasetrain/prognosis`, over [`service::trains`].

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use railyard_manifest::{EnvName, Error, GroupName, TagName, TeamName, TrainTarget};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::service::trains::{self as service, Train, TrainAnswer};
use crate::service::{DryRun, Service};

type Reply = ApiResult<Response>;

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

async fn run(st: Service, target: TrainTarget, q: HashMap<String, String>, force_dry_run: bool) -> Reply {
    let q = parse_query(&q)?;
    let train = Train {
        target,
        team: q.team,
        source_git_tag: q.source_git_tag,
        git_tag: q.git_tag,
        dry_run: q.dry_run || force_dry_run,
    };
    Ok(match service::run(&st, train).await? {
        TrainAnswer::DryRun(train) => Json(DryRun::new(train)).into_response(),
        TrainAnswer::Done(written) => (StatusCode::OK, Json(written)).into_response(),
    })
}

#[utoipa::path(
    put,
    path = "/environments/{env}/releasetrain",
    summary = "Release train into an environment",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("team" = Option<String>, Query, description = "only this team's applications"), ("sourceGitTag" = Option<String>, Query, description = "take the source versions from this tag"), ("gitTag" = Option<String>, Query, description = "tag the train's commit"), ("dryRun" = Option<String>, Query, description = "true: answer what would move, write nothing")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn environment(st: Service, p: Params, Query(q): Query<HashMap<String, String>>) -> Reply {
    let target = TrainTarget::Environment { environment: p.get::<EnvName, _>("env")? };
    run(st, target, q, false).await
}

#[utoipa::path(
    put,
    path = "/environment-groups/{group}/releasetrain",
    summary = "Release train into every environment of a group",
    params(("group" = String, Path, description = "environment group"), ("team" = Option<String>, Query, description = "only this team's applications"), ("sourceGitTag" = Option<String>, Query, description = "take the source versions from this tag"), ("gitTag" = Option<String>, Query, description = "tag the train's commit"), ("dryRun" = Option<String>, Query, description = "true: answer what would move, write nothing")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn group(st: Service, p: Params, Query(q): Query<HashMap<String, String>>) -> Reply {
    let target = TrainTarget::EnvironmentGroup { group: p.get::<GroupName, _>("group")? };
    run(st, target, q, false).await
}

#[utoipa::path(
    get,
    path = "/environments/{env}/releasetrain/prognosis",
    summary = "What a release train would move",
    params(("env" = String, Path, description = "environment name (or GitLab id)"), ("team" = Option<String>, Query, description = "only this team's applications"), ("sourceGitTag" = Option<String>, Query, description = "take the source versions from this tag"), ("gitTag" = Option<String>, Query, description = "tag the train's commit"), ("dryRun" = Option<String>, Query, description = "true: answer what would move, write nothing")),
    responses((status = 200, description = "success", body = Object)),
)]
pub async fn prognosis(st: Service, p: Params, Query(q): Query<HashMap<String, String>>) -> Reply {
    let target = TrainTarget::Environment { environment: p.get::<EnvName, _>("env")? };
    run(st, target, q, true).await
}
