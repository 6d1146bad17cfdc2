//! Railyard's API server as a library: the binary parses flags and calls [`serve`].

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod history;
pub mod metrics;
pub mod oidc;
pub mod overview;
pub mod rbac;
pub mod replica;
pub mod retired;
pub mod routes;
pub mod serve;
pub mod service;
pub mod tags;
pub mod webhooks;
pub mod writer;

use anyhow::Context;
use git2::Repository;

use crate::config::{Config, ExportMode};
use crate::writer::{Writer, WriterConfig};

/// Opens the local bare repo, creating it if missing.
fn open_or_init(cfg: &Config) -> anyhow::Result<Repository> {
    let repo = match railyard_store::open(&cfg.repo_dir) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(&cfg.repo_dir).with_context(|| format!("creating {}", cfg.repo_dir.display()))?;
            Repository::init_bare(&cfg.repo_dir)
                .with_context(|| format!("creating repo {}", cfg.repo_dir.display()))?;
            tracing::info!(repo = %cfg.repo_dir.display(), "created local manifest repo");
            railyard_store::open(&cfg.repo_dir)?
        }
    };
    // Durability against a machine crash comes from the writer's one pack per batch and one filesystem sync
    // (writer::sync_to_disk) instead of one fsync per object, which made a 1,000-app train 15× slower. Where that
    // sync is not available (not Linux), git fsyncs what it writes.
    let mut config = repo.config()?;
    if writer::SYNCS_FILESYSTEM {
        let _ = config.remove("core.fsyncObjectFiles");
    } else {
        config.set_bool("core.fsyncObjectFiles", true)?;
    }
    repo.set_head(&railyard_refs::branch_ref(&cfg.branch))?;
    Ok(repo)
}

/// Runs the server until ctrl-c / SIGTERM.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let tokens = match &cfg.auth_tokens {
        Some(file) => {
            let t = auth::Tokens::load(file)?;
            tracing::info!(tokens = t.len(), file = %file.display(), "authentication on");
            Some(t)
        }
        None => None,
    };
    let oidc = match (&cfg.oidc.issuer, &cfg.oidc.rbac_policy) {
        (Some(issuer), Some(policy_file)) => {
            if cfg.oidc.audience.is_empty() {
                anyhow::bail!("--oidc-issuer needs at least one --oidc-audience (the client id tokens are issued to)");
            }
            let policy = rbac::Policy::load(policy_file)?;
            // The UI's ID tokens are issued to its client id.
            let mut audiences = cfg.oidc.audience.clone();
            if let Some(id) = cfg.oidc.client_id.as_ref().filter(|id| !audiences.contains(id)) {
                audiences.push(id.clone());
            }
            let verifier = oidc::Oidc::new(
                issuer.clone(),
                audiences,
                std::time::Duration::from_secs(cfg.oidc.jwks_min_refresh_seconds.into()),
            )?;
            tracing::info!(issuer = %issuer, permissions = policy.len(), policy = %policy_file.display(), "OIDC sign-in on");
            Some((verifier, policy))
        }
        (Some(_), None) => {
            anyhow::bail!("--oidc-issuer needs --rbac-policy FILE: the policy says what signed-in people may do")
        }
        (None, Some(_)) => anyhow::bail!("--rbac-policy applies to OIDC callers: give --oidc-issuer too"),
        (None, None) if cfg.oidc.client_id.is_some() => {
            anyhow::bail!("--oidc-client-id is the web UI's client at an issuer: give --oidc-issuer too")
        }
        (None, None) => None,
    };
    let auth = (tokens.is_some() || oidc.is_some())
        .then(|| std::sync::Arc::new(auth::Authenticator { tokens, oidc, ui_client_id: cfg.oidc.client_id.clone() }));
    if auth.is_none() && !cfg.listen.ip().is_loopback() && !cfg.insecure_no_auth {
        anyhow::bail!(
            "refusing to listen on {} without authentication; pass --auth-tokens FILE (or --oidc-issuer), listen on 127.0.0.1, or pass --insecure-no-auth",
            cfg.listen
        );
    }
    if let Some((verifier, _)) = auth.as_ref().and_then(|a| a.oidc.as_ref()) {
        verifier.warm_up().await;
    }
    let subscribers = match &cfg.webhooks {
        Some(file) => webhooks::load(file)?,
        None => Vec::new(),
    };
    let repo = open_or_init(&cfg)?;
    // What is on the branch at start is on disk.
    let durable = std::sync::Arc::new(std::sync::Mutex::new(railyard_refs::target(
        &repo,
        &railyard_refs::branch_ref(&cfg.branch),
    )?));
    drop(repo);
    railyard_refs::clear_stale_locks(&cfg.repo_dir, std::time::Duration::from_secs(2));
    // Nothing else writes into the repo at this point unless an external exporter runs beside this process.
    let (halves_quiet_for, temporaries_quiet_for) = if cfg.export == ExportMode::External {
        (std::time::Duration::from_secs(10), railyard_export::packs::TEMPORARIES_QUIET_FOR)
    } else {
        (std::time::Duration::ZERO, std::time::Duration::ZERO)
    };
    railyard_export::packs::remove_half_packs(&cfg.repo_dir, halves_quiet_for);
    railyard_export::packs::remove_stale_temporaries(&cfg.repo_dir, temporaries_quiet_for);
    let metrics = metrics::ApiMetrics::new();
    let mut export_status = None;
    let mut exporter_waker = None;
    let mut remote = None;
    if cfg.ack == config::Ack::AfterPush {
        if cfg.export == ExportMode::External {
            anyhow::bail!(
                "--ack after-push pushes from the writer: run no railyard-export beside it (drop --export external)"
            );
        }
        let r = std::sync::Arc::new(replica::Remote::new(
            cfg.export_config()?,
            cfg.push_attempts,
            std::time::Duration::from_millis(cfg.fetch_interval_ms.into()),
        ));
        // The clone is rebuilt from the remote: whatever the local branch held beyond it was never acknowledged.
        let (first, dir) = (r.clone(), cfg.repo_dir.clone());
        match tokio::task::spawn_blocking(move || first.fetch_and_follow(&railyard_store::open(&dir)?)).await? {
            Ok(head) => tracing::info!(remote_head = ?head, "after-push: the local branch follows the remote"),
            Err(e) => {
                tracing::warn!(error = %e, "after-push: the remote cannot be fetched yet; not ready, writes fail with 503 until it can")
            }
        }
        tokio::spawn(replica::run_follower(r.clone(), cfg.repo_dir.clone()));
        remote = Some(r);
    } else if cfg.export == ExportMode::Embedded {
        let exporter = railyard_export::Exporter::new(cfg.export_config()?, metrics.export.clone());
        export_status = Some(exporter.status());
        exporter_waker = Some(exporter.waker());
        tokio::spawn(exporter.run());
    }
    let history = std::sync::Arc::new(history::History::new(&cfg.repo_dir, &cfg.branch));
    warm_history(history.clone());
    let hooks = (!subscribers.is_empty()).then(|| {
        webhooks::Webhooks::start(subscribers, history.clone(), &cfg.branch, durable.clone(), metrics.webhooks.clone())
    });
    let rollups = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let on_commit =
        Some(commit_bell(exporter_waker, hooks.clone(), consolidate_packs(cfg.repo_dir.clone(), rollups.clone())));
    let writer = Writer::start(WriterConfig {
        repo_dir: cfg.repo_dir.clone(),
        branch: cfg.branch.clone(),
        batch_max: cfg.batch_max as usize,
        queue_capacity: cfg.queue_capacity as usize,
        on_commit,
        durable,
        metrics: metrics.writer.clone(),
        remote: remote.clone(),
        rollups,
    })?;
    let argocd_source = argocd_source(&cfg);
    match record_argocd_source(&writer, &argocd_source).await {
        Ok(()) => {}
        // A replica whose remote is down starts anyway (not ready); the next start records the source.
        Err(e) if remote.is_some() => tracing::warn!(error = %e, "the Argo CD source is not recorded yet"),
        Err(e) => return Err(e),
    }
    let limits = serve::Limits {
        header_read_timeout: std::time::Duration::from_secs(cfg.header_read_timeout_seconds.into()),
        idle_timeout: std::time::Duration::from_secs(cfg.idle_timeout_seconds.into()),
        max_connections: cfg.max_connections as usize,
        read_ahead_bytes: serve::READ_AHEAD_BYTES.min(cfg.max_body_bytes),
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
        history,
        webhooks: hooks,
        argocd_source,
        release_versions_limit: cfg.release_versions_limit,
        overview: Default::default(),
        remote,
    };
    let app = routes::router_with_auth(state, cfg.max_body_bytes, auth);
    tracing::info!(listen = %bound, repo = %cfg.repo_dir.display(), remote = %railyard_export::redact(&cfg.git_url), branch = %cfg.branch, "railyard-api listening");
    serve::serve(listener, app, limits, shutdown()).await?;
    Ok(())
}

/// Indexes the history in the background at start, so the first query does not wait for it.
fn warm_history(history: std::sync::Arc<history::History>) {
    tokio::task::spawn_blocking(move || {
        if let Err(e) = history.with_index(|_, _| ()) {
            tracing::warn!(error = %e, "could not index the history");
        }
    });
}

/// The bell the writer rings after each commit: wakes the embedded exporter and every webhook subscriber.
fn commit_bell(
    exporter: Option<std::sync::Arc<tokio::sync::Notify>>,
    hooks: Option<std::sync::Arc<webhooks::Webhooks>>,
    packs: std::sync::Arc<tokio::sync::Notify>,
) -> std::sync::Arc<tokio::sync::Notify> {
    let bell = std::sync::Arc::new(tokio::sync::Notify::new());
    let rung = bell.clone();
    tokio::spawn(async move {
        loop {
            rung.notified().await;
            if let Some(e) = &exporter {
                e.notify_one();
            }
            if let Some(h) = &hooks {
                h.wake();
            }
            packs.notify_one();
        }
    });
    bell
}

/// The pause after a roll-up: one upload at a time makes a batch, and a pack, every ~20 ms, so about a dozen build
/// up meanwhile (at 2 s it was a hundred, and every read searches every pack).
const ROLL_UP_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Rolls the writer's small packs up in the background after commits (at most every [`ROLL_UP_PAUSE`]), so reads stay
/// fast as packs accumulate; writes never wait for it.
fn consolidate_packs(
    repo_dir: std::path::PathBuf,
    rollups: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> std::sync::Arc<tokio::sync::Notify> {
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let rung = wake.clone();
    // Once at start too: what a killed run left is finished.
    rung.notify_one();
    tokio::spawn(async move {
        loop {
            rung.notified().await;
            let dir = repo_dir.clone();
            let started = std::time::Instant::now();
            let run = tokio::task::spawn_blocking(move || {
                railyard_export::packs::consolidate(&dir, railyard_export::packs::MAX_PACKS, || {
                    writer::sync_to_disk(&dir)
                })
            });
            match run.await {
                Ok(Ok(r)) if r.rolled_up > 0 => {
                    rollups.fetch_add(1, std::sync::atomic::Ordering::Release);
                    tracing::info!(
                        packs_before = r.packs_before,
                        rolled_up = r.rolled_up,
                        objects = r.objects,
                        new_deltas = r.new_deltas,
                        ms = started.elapsed().as_millis() as u64,
                        "rolled small packs up into one"
                    )
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not consolidate the packs; will try again"),
                Err(e) => tracing::error!(error = %e, "the pack consolidation task failed"),
            }
            tokio::time::sleep(ROLL_UP_PAUSE).await;
        }
    });
    wake
}

/// Where Argo CD reads the repo: `--argocd-repo-url`, else `--git-url` without credentials, and `--branch`.
fn argocd_source(cfg: &Config) -> railyard_manifest::argocd::Source {
    let repo_url = cfg.argocd_repo_url.clone().unwrap_or_else(|| without_credentials(&cfg.git_url));
    railyard_manifest::argocd::Source { repo_url, target_revision: cfg.branch.clone() }
}

/// Records the Argo CD source in a repo that uses Argo CD: a commit only when it changed, which regenerates every
/// environment's Argo CD file.
async fn record_argocd_source(writer: &Writer, source: &railyard_manifest::argocd::Source) -> anyhow::Result<()> {
    let source = source.clone();
    let request = railyard_manifest::Request::SetArgoCdSource(railyard_manifest::request::SetArgoCdSource { source });
    let envelope = railyard_manifest::Envelope { author: Default::default(), at: routes::now(), request };
    writer
        .submit(writer::Job { envelope, caller: None, blobs: Vec::new() })
        .await
        .map_err(|e| anyhow::anyhow!("recording the Argo CD source: {}", e.message))?;
    Ok(())
}

/// `url` without user name and password: Argo CD has credentials of its own.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
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
