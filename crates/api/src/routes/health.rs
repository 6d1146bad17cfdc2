//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::error::ApiError;

#[utoipa::path(
    get,
    path = "/healthz",
    summary = "Liveness",
    responses((status = 200, description = "the server is up", body = Object)),
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The exporter's status (embedded, or what a separate exporter last wrote) and the lag read from the repo now.
async fn export_state(st: &AppState) -> Result<(Option<railyard_export::Status>, railyard_export::Lag), ApiError> {
    let status = match &st.export_status {
        Some(s) => Some(s.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        None => railyard_export::read_status_file(&st.repo_dir),
    };
    let (dir, branch) = (st.repo_dir.clone(), st.branch.clone());
    let lag = tokio::task::spawn_blocking(move || railyard_export::lag(&dir, &branch))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok((status, lag))
}

#[utoipa::path(
    get,
    path = "/readyz",
    summary = "Readiness and export status",
    responses((status = 200, description = "ready: the repo opens and the exporter keeps up", body = Object), (status = 503, description = "not ready", body = Object)),
)]
/// Ready while the writer runs and export has not stopped for good. Lag alone is reported, not fatal: writes are
/// durable locally while a remote is down, and they arrive when it is back.
pub async fn readyz(State(st): State<AppState>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let writer_ok = st.writer.is_alive();
    if let Some(remote) = &st.remote {
        // After push: ready once the remote has been fetched (the clone is rebuilt from it), and while the writer
        // runs. A remote that went away later leaves the replica ready: its reads still answer, its writes say 503.
        let f = remote.snapshot();
        let ready = writer_ok && f.fetched;
        let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        let export = json!({
            "mode": "after-push",
            "remote_head": f.remote_head.map(|h| h.to_string()),
            "fetched": f.fetched,
            "last_fetch_unix": f.last_fetch_unix,
            "last_error": f.last_error,
        });
        let writer = json!({ "alive": writer_ok, "queue_depth": st.writer.queue_depth() });
        return Ok((code, Json(json!({ "ready": ready, "writer": writer, "export": export }))));
    }
    let (status, lag) = export_state(&st).await?;
    let stopped = status.as_ref().and_then(|s| s.stopped.clone());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let export = json!({
        "mode": if st.export_status.is_some() { "embedded" } else { "external" },
        "exported_commit": status.as_ref().and_then(|s| s.exported.clone()),
        "pending_commits": lag.commits,
        "pending_tags": lag.tags,
        "oldest_pending_age_seconds": lag.oldest_age_seconds(),
        "last_error": status.as_ref().and_then(|s| s.last_error.clone()),
        "stopped": stopped,
        "consecutive_failures": status.as_ref().map_or(0, |s| s.consecutive_failures),
        "reconciled_at": status.as_ref().and_then(|s| s.reconciled_at),
        "status_age_seconds": status.as_ref().filter(|s| s.updated_at > 0).map(|s| (now - s.updated_at).max(0)),
    });
    let ready = writer_ok && stopped.is_none();
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok((
        code,
        Json(
            json!({ "ready": ready, "writer": { "alive": writer_ok, "queue_depth": st.writer.queue_depth() }, "export": export }),
        ),
    ))
}

#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
)]
/// Prometheus text format.
pub async fn metrics(State(st): State<AppState>) -> Result<Response, ApiError> {
    let (status, lag) = export_state(&st).await?;
    let m = &st.metrics;
    m.export.set_lag(&lag);
    if let Some(s) = &status {
        m.export.set_status(s);
    }
    m.queue_depth.set(st.writer.queue_depth() as i64);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &m.registry).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out).into_response())
}
