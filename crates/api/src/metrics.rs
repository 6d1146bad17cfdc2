//! The API's Prometheus metrics: requests by route and status, the writer's queue depth, batch sizes and commit
//! latency, and the export metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route as declared (`/api/environments/{env}`), not the path, so the label set stays small.
    pub route: String,
    pub status: u16,
}

/// What the writer measures.
#[derive(Clone, Debug)]
pub struct WriterMetrics {
    /// Requests per commit.
    pub batch_size: Histogram,
    /// From taking a batch to the branch moved (applying, writing objects, syncing, the ref update).
    pub commit_seconds: Histogram,
    /// Of that, flushing the repo to disk (the batch's objects, then its refs).
    pub sync_seconds: Histogram,
    pub commits: Counter,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        Self {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            sync_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            commits: Counter::default(),
        }
    }
}

/// Every metric `/metrics` shows.
pub struct ApiMetrics {
    pub registry: Registry,
    /// The export metrics: counted by the embedded exporter; beside a separate exporter only the lag and the
    /// stopped state are filled in here (its own `/metrics` has the rest).
    pub export: railyard_export::Metrics,
    pub queue_depth: Gauge,
    pub writer: WriterMetrics,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RequestLabels, Histogram>,
    pub webhooks: crate::webhooks::Metrics,
}

impl ApiMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let export = railyard_export::Metrics::default();
        export.register(&mut registry);
        let queue_depth = Gauge::default();
        registry.register("railyard_writer_queue_depth", "Requests waiting for the writer", queue_depth.clone());
        let writer = WriterMetrics::default();
        registry.register(
            "railyard_writer_batch_size",
            "Requests folded into one batch (one pack, one push; a commit per tagged request)",
            writer.batch_size.clone(),
        );
        registry.register(
            "railyard_writer_commit_seconds",
            "Time from taking a batch to the branch moved",
            writer.commit_seconds.clone(),
        );
        registry.register(
            "railyard_writer_sync_seconds",
            "Of a batch's commit time, the time spent flushing the repo to disk (its objects, then its refs)",
            writer.sync_seconds.clone(),
        );
        registry.register("railyard_writer_commits", "Commits written", writer.commits.clone());
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("railyard_http_requests", "HTTP requests by method, route and status", requests.clone());
        let request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("railyard_http_request_seconds", "HTTP request latency", request_seconds.clone());
        let webhooks = crate::webhooks::Metrics::default();
        webhooks.register(&mut registry);
        Self { registry, export, queue_depth, writer, requests, request_seconds, webhooks }
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The middleware that counts every request by its declared route and answer status.
pub async fn count(State(m): State<std::sync::Arc<ApiMetrics>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    let labels = RequestLabels { method, route, status: resp.status().as_u16() };
    m.requests.get_or_create(&labels).inc();
    m.request_seconds.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    resp
}
