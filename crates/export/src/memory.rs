//! The C heap of both binaries. libgit2 (and, in `railyard-export`, Rust's own allocations) use glibc's malloc,
//! which by default gives every thread that allocates its own arena (up to 8 per core) and keeps what is freed:
//! after indexing the history of a big repo, a first overview, a roll-up or a train over 10,000 applications, the
//! API would hold hundreds of MiB it no longer uses. The binaries keep two arenas (the work is one writer, one
//! exporter and short reads) and give freed memory back to the system after such work.
//!
//! `railyard-api` keeps Rust's heap apart, in jemalloc (its `main.rs`): what lives long there (the history index,
//! the overview snapshot) then no longer sits between libgit2's short-lived trees in glibc's heap, where it kept
//! freed pages from being given back, and jemalloc's background thread returns pages freed a second ago.

/// Before any thread exists: at most two malloc arenas, and blocks of `MMAP_ABOVE` (128 KiB) or more always mapped on
/// their own.
///
/// glibc raises its mmap threshold each time a mapped block is freed (up to 32 MiB): after the first big tree was
/// freed, every later inflated 400 KiB `applications/` tree came from an arena, between small blocks that outlive
/// it, and the arena could not shrink. Set, the threshold stays put, and a big block goes back when it is freed.
#[allow(unsafe_code)]
pub fn set_up_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc parameters; it is called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_ABOVE as libc::c_int);
    }
}

/// Blocks of at least this size are mapped and unmapped on their own (glibc's default, before it adapts).
const MMAP_ABOVE: usize = 128 * 1024;

/// [`give_back`], unless it ran less than `interval` ago (through this function or the other): a trim walks the
/// whole heap holding malloc's locks (1 to 20 ms at 10,000 applications), during which other threads wait to
/// allocate, so work that recurs (roll-ups, big batches under load) gives memory back now and then.
pub fn give_back_at_most_every(interval: std::time::Duration) {
    use std::sync::atomic::Ordering;
    let now = since_start();
    let last = LAST.load(Ordering::Relaxed);
    if last != 0 && now.saturating_sub(last) < interval.as_millis() as u64 {
        return;
    }
    give_back();
}

/// Milliseconds since the first call (never 0).
fn since_start() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1
}

/// When the last trim ran ([`since_start`]; 0: never).
static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Returns the heap's free pages to the system (after work that allocated much and freed it, once).
#[allow(unsafe_code)]
pub fn give_back() {
    LAST.store(since_start(), std::sync::atomic::Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes malloc's own locks; it touches only free chunks.
    unsafe {
        libc::malloc_trim(0);
    }
}
