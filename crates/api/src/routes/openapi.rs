//! The OpenAPI 3.1 document of the native API (`GET /api/openapi.json`), derived by utoipa from the handlers'
//! `#[utoipa::path]` attributes and the request types (`ToSchema`). The router registers every documented route
//! through utoipa-axum's `OpenApiRouter`, which adds a route and its operation in one call, so the document lists
//! what the router serves. The compatibility surfaces (Kuberpult, GitLab `/api/v4`, Northflank `/v1`) follow their
//! vendors' documents and are not in it.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::OpenApi as _;

use crate::error::ErrorBody;

/// The document's frame: title, the error schema and the two ways to send a token.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Railyard",
        description = "GitOps release controller: every accepted write is a commit in the manifest repo."
    ),
    components(schemas(ErrorBody))
)]
struct Frame;

/// What [`finish`] needs to start from.
pub fn frame() -> OpenApi {
    let mut doc = Frame::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    components
        .add_security_scheme("privateToken", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("PRIVATE-TOKEN"))));
    doc.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("privateToken", Vec::<String>::new()),
        SecurityRequirement::default(),
    ]);
    doc
}

/// The errors every operation of `/api` may answer, in [`ErrorBody`]'s shape.
const API_ERRORS: &[(&str, &str)] = &[
    ("400", "invalid input"),
    ("401", "no valid token (with --auth-tokens or OIDC)"),
    ("403", "no role allows it"),
    ("404", "not found"),
    ("409", "conflicts with the current state (locked, exists, not stopped, …)"),
];

/// The document as served, from what the router collected: the errors of `/api` added to each of its operations,
/// an operation id from method and path (handlers of different modules share names such as `get`), and path
/// templates without axum's catch-all mark (`/env/{*env}` is `/env/{env}`: OpenAPI has no such mark).
pub fn finish(mut doc: OpenApi) -> String {
    let error = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        let path = path.replace("{*", "{");
        let ops: [(&str, &mut Option<Operation>); 5] = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            op.operation_id = Some(format!("{method}{}", path.replace(['/', '{', '}', '.', '-'], "_")));
            if path.starts_with("/api/") {
                for (status, description) in API_ERRORS {
                    let response =
                        ResponseBuilder::new().description(*description).content("application/json", error.clone());
                    op.responses.responses.entry((*status).to_owned()).or_insert_with(|| response.build().into());
                }
            }
        }
        doc.paths.paths.insert(path, item);
    }
    doc.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document does not serialise");
        "{}".to_owned()
    })
}

/// The document, as [`finish`] rendered it once when the router was built.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

#[utoipa::path(
    get,
    path = "/openapi.json",
    summary = "This document",
    responses((status = 200, description = "success", body = Object)),
)]
/// `GET /api/openapi.json`
pub async fn serve(Extension(Document(doc)): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str().to_owned())
}
