//! Railyard's API server as a library: the binary parses flags and calls [`serve`].

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod routes;
pub mod serve;
pub mod tags;
pub mod writer;

use anyhow::Context;
use git2::Repository;

use crate::config::{Config, ExportMode};
use crate::writer::{Writer, WriterConfig};

/// Opens the local bare repo, creating it if missing.
fn open_or_init(cfg: &Config) -> anyhow::Result<Repository> {
    let repo = match Repository::open_bare(&cfg.repo_dir) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(&cfg.repo_dir).with_context(|| format!("creating {}", cfg.repo_dir.display()))?;
            let r = Repository::init_bare(&cfg.repo_dir)
                .with_context(|| format!("creating repo {}", cfg.repo_dir.display()))?;
            tracing::info!(repo = %cfg.repo_dir.display(), "created local manifest repo");
            r
        }
    };
    // Durability against a machine crash comes from one filesystem sync per batch in the writer (writer::sync_to_disk)
    // instead of one fsync per object, which made a 1,000-app train 15× slower. Where that sync is not available, git
    // fsyncs every object.
    repo.config()?.set_bool("core.fsyncObjectFiles", !writer::SYNCS_FILESYSTEM)?;
    repo.set_head(&railyard_export::branch_ref(&cfg.branch))?;
    Ok(repo)
}

/// Runs the server until ctrl-c / SIGTERM.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let tokens = match &cfg.auth_tokens {
        Some(file) => {
            let t = auth::Tokens::load(file)?;
            tracing::info!(tokens = t.len(), file = %file.display(), "authentication on");
            Some(std::sync::Arc::new(t))
        }
        None => None,
    };
    if tokens.is_none() && !cfg.listen.ip().is_loopback() && !cfg.insecure_no_auth {
        anyhow::bail!(
            "refusing to listen on {} without authentication; pass --auth-tokens FILE, listen on 127.0.0.1, or pass --insecure-no-auth",
            cfg.listen
        );
    }
    open_or_init(&cfg)?;
    railyard_export::clear_stale_locks(&cfg.repo_dir, std::time::Duration::from_secs(2));
    let metrics = metrics::ApiMetrics::new();
    let mut export_status = None;
    let mut on_commit = None;
    if cfg.export == ExportMode::Embedded {
        railyard_export::ensure_local_remote(&cfg.git_url, &cfg.branch).context("creating the local remote repo")?;
        let exporter = railyard_export::Exporter::new(
            railyard_export::Config {
                repo_dir: cfg.repo_dir.clone(),
                git_url: cfg.git_url.clone(),
                branch: cfg.branch.clone(),
                fail_on_error_with_git_push_tags: cfg.fail_on_error_with_git_push_tags,
                credentials: cfg.credentials.load()?,
            },
            metrics.export.clone(),
        );
        export_status = Some(exporter.status());
        on_commit = Some(exporter.waker());
        tokio::spawn(exporter.run());
    }
    let writer = Writer::start(WriterConfig {
        repo_dir: cfg.repo_dir.clone(),
        branch: cfg.branch.clone(),
        batch_max: cfg.batch_max as usize,
        queue_capacity: cfg.queue_capacity as usize,
        on_commit,
        metrics: metrics.writer.clone(),
    })?;
    let limits = serve::Limits {
        header_read_timeout: std::time::Duration::from_secs(cfg.header_read_timeout_seconds.into()),
        idle_timeout: std::time::Duration::from_secs(cfg.idle_timeout_seconds.into()),
        max_connections: cfg.max_connections as usize,
    }
    .within_file_limit();
    tracing::info!(
        max_connections = limits.max_connections,
        header_read_timeout_s = cfg.header_read_timeout_seconds,
        idle_timeout_s = cfg.idle_timeout_seconds,
        "connection limits"
    );
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let bound = listener.local_addr()?;
    let external_url = match &cfg.external_url {
        Some(url) => url.clone(),
        None if bound.ip().is_unspecified() => String::new(),
        None => format!("http://{bound}"),
    };
    let state = routes::AppState {
        writer,
        repo_dir: cfg.repo_dir.clone(),
        branch: cfg.branch.clone(),
        export_status,
        metrics: std::sync::Arc::new(metrics),
        build_webhook: cfg.build_webhook.clone(),
        project: cfg.project.clone(),
        minimize_exported_data: cfg.minimize_exported_data,
        external_url,
        release_versions_limit: cfg.release_versions_limit,
    };
    let app = routes::router_with_auth(state, cfg.max_body_bytes, tokens);
    tracing::info!(listen = %bound, repo = %cfg.repo_dir.display(), remote = %railyard_export::redact(&cfg.git_url), branch = %cfg.branch, "railyard-api listening");
    serve::serve(listener, app, limits, shutdown()).await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
