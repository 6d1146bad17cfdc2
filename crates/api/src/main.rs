use clap::Parser;
use railyard_api::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Rust's heap in jemalloc, apart from libgit2's in glibc's malloc (see `railyard_export::memory`).
#[global_allocator]
static HEAP: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings: a background thread returns unused pages, those freed more than 1 s ago.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    // Before any thread exists, as libgit2's global options and glibc's malloc settings require.
    railyard_export::memory::set_up_heap();
    railyard_export::init_libgit2(10_000, 60_000)?;
    let filter = EnvFilter::try_from_env("RAILYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    match cfg.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
        LogFormat::Text => tracing_subscriber::fmt().with_ansi(ansi).with_env_filter(filter).init(),
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(railyard_api::serve(cfg))
}
