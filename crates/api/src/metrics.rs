//! The API's Prometheus metrics.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Every metric `/metrics` shows.
pub struct ApiMetrics {
    pub registry: Registry,
    /// The export metrics: counted by the embedded exporter; beside a separate exporter only the lag and the
    /// stopped state are filled in here (its own `/metrics` has the rest).
    pub export: railyard_export::Metrics,
    pub queue_depth: Gauge,
}

impl ApiMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let export = railyard_export::Metrics::default();
        export.register(&mut registry);
        let queue_depth = Gauge::default();
        registry.register("railyard_writer_queue_depth", "Requests waiting for the writer", queue_depth.clone());
        Self { registry, export, queue_depth }
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}
