//! `railyard-export`: pushes the local manifest repo to the remote, beside a `railyard-api --export=external`
//! (or alone, with `--once`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use clap::{Parser, ValueEnum};
use prometheus_client::registry::Registry;
use railyard_export::{CredentialArgs, Exporter, Metrics, Status};
use serde_json::json;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Pushes Railyard's local manifest repo (branch and requested tags) to the remote and reconciles with it.
#[derive(Debug, Parser)]
#[command(name = "railyard-export", version, about)]
struct Args {
    /// The local bare manifest repo the API writes.
    #[arg(long, env = "RAILYARD_REPO_DIR", default_value = "./.railyard/repo.git")]
    repo_dir: PathBuf,
    /// The remote manifest repo: a path (created if missing), file://, git://, http(s):// or ssh:// URL.
    #[arg(long, env = "RAILYARD_GIT_URL", default_value = "./.railyard/remote.git")]
    git_url: String,
    /// Branch pushed.
    #[arg(long, env = "RAILYARD_BRANCH", default_value = "main")]
    branch: String,
    /// A tag the remote refuses (name taken by another commit) stops export (true) or is logged, recorded under
    /// refs/railyard/failed-tags and skipped (false).
    #[arg(long, env = "RAILYARD_FAIL_ON_ERROR_WITH_GIT_PUSH_TAGS", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = railyard_export::bool_flag())]
    fail_on_error_with_git_push_tags: bool,
    /// Reconcile and push once, then exit: 0 when everything is on the remote, non-zero with the reason otherwise.
    #[arg(long, env = "RAILYARD_ONCE", default_value = "false", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL", value_parser = railyard_export::bool_flag())]
    once: bool,
    /// Serve /healthz, /readyz and /metrics on this address (for probes and Prometheus).
    #[arg(long, env = "RAILYARD_EXPORT_LISTEN")]
    listen: Option<SocketAddr>,
    /// How often the local repo is checked for new commits and tags (milliseconds).
    #[arg(long, env = "RAILYARD_POLL_INTERVAL_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_interval_ms: u64,
    #[command(flatten)]
    credentials: CredentialArgs,
    /// `text` or `json`.
    #[arg(long, env = "RAILYARD_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Before any thread exists, as libgit2's global options require.
    railyard_export::memory::set_up_heap();
    if let Err(e) = railyard_export::init_libgit2(10_000, 60_000) {
        eprintln!("railyard-export: {e}");
        return ExitCode::FAILURE;
    }
    let filter = EnvFilter::try_from_env("RAILYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
        LogFormat::Text => tracing_subscriber::fmt().with_ansi(ansi).with_env_filter(filter).init(),
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "railyard-export failed");
            eprintln!("railyard-export: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let credentials = args.credentials.load()?;
    railyard_store::open(&args.repo_dir)
        .with_context(|| format!("opening the local manifest repo {}", args.repo_dir.display()))?;
    railyard_export::ensure_local_remote(&args.git_url, &args.branch).context("creating the local remote repo")?;
    railyard_refs::clear_stale_locks(&args.repo_dir, Duration::from_secs(2));
    let cfg = railyard_export::Config {
        repo_dir: args.repo_dir.clone(),
        git_url: args.git_url.clone(),
        branch: args.branch.clone(),
        fail_on_error_with_git_push_tags: args.fail_on_error_with_git_push_tags,
        credentials,
    };
    let remote = railyard_export::redact(&args.git_url);
    if args.once {
        let round = tokio::task::spawn_blocking(move || railyard_export::round(&cfg, true)).await??;
        let lag = railyard_export::lag(&args.repo_dir, &args.branch)?;
        tracing::info!(
            remote = %remote,
            commit = ?round.head.map(|h| h.to_string()),
            pushed = round.pushed,
            tags_pushed = round.tags.pushed.len(),
            tags_failed = round.tags.failed.len(),
            learnt_tags = round.reconciled.as_ref().map_or(0, |r| r.learnt_tags.len()),
            replayed = round.reconciled.as_ref().and_then(|r| r.adoption.as_ref()).map_or(0, |a| a.replayed),
            lag_commits = lag.commits,
            lag_tags = lag.tags,
            "export done"
        );
        return Ok(());
    }
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let exporter = Exporter::new(cfg, metrics.clone()).polling(Duration::from_millis(args.poll_interval_ms));
    let status = exporter.status();
    tracing::info!(repo = %args.repo_dir.display(), remote = %remote, branch = %args.branch, "railyard-export started");
    if let Some(addr) = args.listen {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        tracing::info!(listen = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
        let app = Router::new()
            .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .with_state(Probe { status: status.clone(), registry: Arc::new(registry), metrics });
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    tokio::select! {
        () = exporter.run() => {
            let st = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
            // Stopped for good: stay up and unready (a restart would only hit the same refusal), until told to go.
            tracing::error!(reason = ?st.stopped, "export stopped; fix the cause (see docs/operations.md) and restart");
            shutdown().await;
        }
        () = shutdown() => {}
    }
    tracing::info!("railyard-export stopping");
    Ok(())
}

#[derive(Clone)]
struct Probe {
    status: Arc<Mutex<Status>>,
    registry: Arc<Registry>,
    metrics: Metrics,
}

async fn readyz(State(p): State<Probe>) -> impl IntoResponse {
    let st = p.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let ready = st.stopped.is_none();
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(json!({ "ready": ready, "export": st })))
}

async fn metrics_text(State(p): State<Probe>) -> impl IntoResponse {
    let lag = p.status.lock().unwrap_or_else(|e| e.into_inner()).lag;
    p.metrics.set_lag(&lag);
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &p.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    fn parse(flags: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("railyard-export").chain(flags.iter().copied()))
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"))
    }

    #[test]
    fn boolean_flags_take_the_bare_form_equals_and_a_separate_value() {
        let defaults = parse(&[]);
        assert!(!defaults.once && defaults.fail_on_error_with_git_push_tags);
        assert!(parse(&["--once"]).once);
        assert!(parse(&["--once=true"]).once);
        assert!(!parse(&["--once=false"]).once);
        assert!(parse(&["--once", "--branch", "x"]).once);
        assert!(parse(&["--fail-on-error-with-git-push-tags"]).fail_on_error_with_git_push_tags);
        assert!(!parse(&["--fail-on-error-with-git-push-tags", "false"]).fail_on_error_with_git_push_tags);
        assert!(!parse(&["--fail-on-error-with-git-push-tags=false"]).fail_on_error_with_git_push_tags);
    }
}
