//! Liveness and readiness.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while the writer runs. Export lag is reported, not fatal: writes are durable locally while a remote is down.
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let writer_ok = st.writer.is_alive();
    let export = st.export_status.as_ref().map(|s| {
        let s = s.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let oldest_age = s.lag.oldest.and_then(|t| SystemTime::now().duration_since(t).ok()).map(|d| d.as_secs());
        json!({
            "exported_commit": s.exported.map(|c| c.to_string()),
            "pending_commits": s.lag.commits,
            "pending_tags": s.lag.tags,
            "oldest_pending_age_seconds": oldest_age,
            "last_error": s.last_error,
        })
    });
    let status = if writer_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(json!({ "ready": writer_ok, "writer": { "queue_depth": st.writer.queue_depth() }, "export": export })),
    )
}
