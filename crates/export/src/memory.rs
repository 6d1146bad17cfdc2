//! The C heap of both binaries. Rust's default allocator and libgit2 both use glibc's malloc, which by default
//! gives every thread that allocates its own arena (up to 8 per core) and keeps what is freed: after indexing the
//! history of a big repo, a first overview, a roll-up or a train over 10,000 applications, the API would hold
//! hundreds of MiB it no longer uses. The binaries keep two arenas (the work is one writer, one exporter and short
//! reads) and give freed memory back to the system after such work.

/// Before any thread exists: at most two malloc arenas.
#[allow(unsafe_code)]
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; it is called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the heap's free pages to the system (after work that allocated much and freed it).
#[allow(unsafe_code)]
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes malloc's own locks; it touches only free chunks.
    unsafe {
        libc::malloc_trim(0);
    }
}
