//! `POST /api/release`: a multipart upload of a release (Kuberpult's form fields).

use std::collections::BTreeMap;

use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::http::StatusCode;
use axum::Json;
use railyard_manifest::request::{CreateRelease, ReleaseCreated, Retention};
use railyard_manifest::{AppName, EnvName, Request, TeamName, Version};

use crate::error::{ApiError, ApiResult};
use crate::extract::rejection;
use crate::service::Service;
use crate::service::{self, Written};

/// A release as uploaded, before its manifests are written as blobs: the form's text parts, and one part
/// `manifests[<environment>]` per environment (documented as the object `manifests`).
#[derive(Default, utoipa::ToSchema)]
#[schema(as = ReleaseUpload)]
struct Upload {
    #[schema(value_type = String)]
    application: Option<AppName>,
    #[schema(value_type = Option<String>)]
    version: Option<Version>,
    #[schema(value_type = Option<String>)]
    team: Option<TeamName>,
    source_commit_id: String,
    source_author: String,
    source_message: String,
    display_version: String,
    /// The parts `manifests[<environment>]`: a manifest per environment.
    #[schema(value_type = BTreeMap<String, String>)]
    manifests: BTreeMap<EnvName, Vec<u8>>,
}

async fn bytes(field: Field<'_>, name: &str) -> ApiResult<Vec<u8>> {
    field
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| rejection(e.status(), name, format!("cannot read part {name:?}: {}", e.body_text())))
}

async fn text(field: Field<'_>, name: &str) -> ApiResult<String> {
    String::from_utf8(bytes(field, name).await?)
        .map_err(|_| ApiError::bad_request(name, format!("part {name:?} is not UTF-8 text")))
}

/// Which manifest a part name such as `manifests[staging]` is for.
fn manifest_env(name: &str) -> Option<&str> {
    name.strip_prefix("manifests[")?.strip_suffix(']')
}

/// A part's name: `name="…"`, or RFC 5987's `name*=utf-8''…` (percent-encoded), which some clients (reqwest, for
/// names with `/` such as `manifests[review/x]`) send instead. A part with neither is refused, not ignored.
fn part_name(field: &Field<'_>) -> ApiResult<String> {
    if let Some(name) = field.name() {
        return Ok(name.to_owned());
    }
    let disposition =
        field.headers().get(axum::http::header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    for param in disposition.split(';').map(str::trim) {
        let Some(value) = param.strip_prefix("name*=") else { continue };
        let value = value.trim_matches('"');
        let encoded =
            value.split_once("''").map_or(
                value,
                |(charset, rest)| {
                    if charset.eq_ignore_ascii_case("utf-8") {
                        rest
                    } else {
                        value
                    }
                },
            );
        return percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .map(|n| n.into_owned())
            .map_err(|_| ApiError::bad_request("body", "a multipart part name is not UTF-8"));
    }
    Err(ApiError::bad_request("body", format!("a multipart part has no name (Content-Disposition: {disposition:?})")))
}

async fn read_upload(mut multipart: Multipart) -> ApiResult<Upload> {
    let mut up = Upload::default();
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| rejection(e.status(), "body", format!("malformed multipart body: {}", e.body_text())))?;
        let Some(field) = field else { break };
        let name = part_name(&field)?;
        if let Some(env) = manifest_env(&name) {
            let env = EnvName::parse(env)
                .map_err(|e| ApiError::from(railyard_manifest::Error::from(e)).with("field", name.clone().into()))?;
            let content = bytes(field, &name).await?;
            if up.manifests.insert(env, content).is_some() {
                return Err(ApiError::bad_request(&name, format!("part {name:?} appears twice")));
            }
            continue;
        }
        match name.as_str() {
            "application" => {
                up.application =
                    Some(AppName::parse(&text(field, &name).await?).map_err(railyard_manifest::Error::from)?)
            }
            "version" => {
                up.version = Some(Version::parse(&text(field, &name).await?).map_err(railyard_manifest::Error::from)?)
            }
            "team" => {
                let t = text(field, &name).await?;
                if !t.is_empty() {
                    up.team = Some(TeamName::parse(&t).map_err(railyard_manifest::Error::from)?);
                }
            }
            "source_commit_id" => up.source_commit_id = text(field, &name).await?,
            "source_author" => up.source_author = text(field, &name).await?,
            "source_message" => up.source_message = text(field, &name).await?,
            "display_version" => up.display_version = text(field, &name).await?,
            // Kuberpult clients also send signatures and other parts Railyard has no use for.
            other => tracing::debug!(part = other, "ignoring unknown multipart part"),
        }
    }
    Ok(up)
}

#[utoipa::path(
    post,
    path = "/release",
    summary = "Upload a release (Kuberpult's multipart form)",
    request_body(content = Upload, content_type = "multipart/form-data"),
    responses((status = 201, description = "success", body = Object)),
)]
pub async fn create(
    st: Service,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Written<ReleaseCreated>>)> {
    let multipart = multipart.map_err(|e| rejection(e.status(), "body", e.body_text()))?;
    let up = read_upload(multipart).await?;
    let application =
        up.application.ok_or_else(|| ApiError::bad_request("application", "the part \"application\" is required"))?;
    if up.manifests.is_empty() {
        return Err(ApiError::bad_request("manifests", "at least one part \"manifests[<environment>]\" is required"));
    }
    let manifests = super::blob_ids(&up.manifests)?;
    let request = CreateRelease {
        application,
        version: up.version,
        team: up.team,
        source_commit_id: up.source_commit_id,
        source_author: up.source_author,
        source_message: up.source_message,
        display_version: up.display_version,
        manifests,
        retention: (st.release_versions_limit > 0)
            .then_some(Retention { limit: st.release_versions_limit, deleted: None }),
    };
    let blobs = up.manifests.into_values().collect();
    let written: Written<ReleaseCreated> =
        service::write_with_blobs(&st, Request::CreateRelease(request), blobs).await?;
    let status = if written.outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written)))
}
