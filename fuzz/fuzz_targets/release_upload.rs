//! `POST /api/release` with arbitrary multipart bodies: never a panic, never a 5xx, and nothing but the answer
//! (an upload either is a release or is refused with a 4xx).
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Harness {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().expect("dir");
        let repo_dir = dir.path().join("repo.git");
        git2::Repository::init_bare(&repo_dir).expect("repo");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let app = rt.block_on(async {
            let writer = railyard_api::writer::Writer::start(railyard_api::writer::WriterConfig {
                repo_dir: repo_dir.clone(),
                branch: "main".into(),
                batch_max: 10,
                queue_capacity: 64,
                on_commit: None,
                durable: Default::default(),
                metrics: Default::default(),
                remote: None,
                rollups: Default::default(),
            })
            .expect("writer");
            let state = railyard_api::routes::AppState {
                writer,
                repo_dir: repo_dir.clone(),
                branch: "main".into(),
                export_status: None,
                metrics: std::sync::Arc::new(railyard_api::metrics::ApiMetrics::new()),
                minimize_exported_data: false,
                build_webhook: None,
                project: "railyard".into(),
                external_url: String::new(),
                history: std::sync::Arc::new(railyard_api::history::History::new(&repo_dir, "main")),
                webhooks: None,
                argocd_source: railyard_manifest::argocd::Source {
                    repo_url: "https://git.example.com/manifests.git".into(),
                    target_revision: "main".into(),
                },
                release_versions_limit: 20,
                overview: Default::default(),
                remote: None,
            };
            let app = railyard_api::routes::router(state, 1 << 20);
            // an environment for uploads to name
            let req = Request::post("/api/environments")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"name":"dev","upstream":{"latest":true}}"#))
                .expect("request");
            let status = app.clone().oneshot(req).await.expect("answer").status();
            assert!(status.is_success(), "{status}");
            app
        });
        Harness { rt, app, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let req = Request::post("/api/release")
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(Body::from(data.to_vec()))
        .expect("request");
    let status = h.rt.block_on(h.app.clone().oneshot(req)).expect("answer").status();
    assert!(status.as_u16() < 500, "server error {status} for {:?}", String::from_utf8_lossy(data));
});
