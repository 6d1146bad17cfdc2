//! The compatibility surfaces, one module per peer, each a thin adapter of the peer's paths, bodies and error
//! shapes onto the service layer: [`gitlab`] (environments API), [`northflank`] (release flows), [`kuberpult`]
//! (release, locks, trains, environment create), [`aviator`] (release candidates and deployments, served under
//! `/api` as Railyard's own and so in the OpenAPI document).
//!
//! Here too: error answers in the peers' shapes, whoever produced them. The surfaces' handlers shape their own
//! errors, and [`reshape_errors`] reshapes the rest under their prefixes — unknown routes and methods (the router's
//! fallbacks), authentication, body limits, path rejections.

pub mod aviator;
pub mod gitlab;
pub mod kuberpult;
pub mod northflank;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Error bodies are small; anything larger is not one of ours and is answered by its status alone.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Clone, Copy)]
enum Surface {
    GitLab,
    Northflank,
}

fn surface(path: &str) -> Option<Surface> {
    let under = |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if under("/api/v4") {
        Some(Surface::GitLab)
    } else if under("/v1") {
        Some(Surface::Northflank)
    } else {
        None
    }
}

/// Middleware: an error answer under `/api/v4` or `/v1` that is not yet in the surface's shape is rewritten into it
/// (status and headers kept).
pub async fn reshape_errors(req: Request, next: Next) -> Response {
    let surface = surface(req.uri().path());
    let resp = next.run(req).await;
    let Some(surface) = surface else { return resp };
    let status = resp.status();
    if !status.is_client_error() && !status.is_server_error() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();
    let reshaped = match surface {
        Surface::GitLab => gitlab::envelope(status, &bytes),
        Surface::Northflank => northflank::envelope(status, &bytes),
    };
    let Some(body) = reshaped else { return Response::from_parts(parts, Body::from(bytes)) };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, body)
}
