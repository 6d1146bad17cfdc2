//! The object store of every repo handle Railyard opens: loose objects through libgit2, packs through
//! [`backend`], which reads them with positioned reads instead of mapping them.
//!
//! libgit2 maps each pack index whole and each lookup touches it; the kernel maps page-cache folios of up to 2 MiB
//! at a time, so a few thousand lookups in a repo of 5 million objects (a train over 10,000 applications, the
//! history index, the overview) make the whole 142 MiB index resident in the process, on top of up to 32 MiB of
//! mapped pack windows. Read with `pread`, the same bytes stay in the page cache, shared and reclaimable, and the
//! process keeps 1/64 of the index's ids ([`pack::SAMPLE`]) and an 8 MiB cache of delta bases.
//!
//! Writes are unchanged: loose objects go through libgit2's loose backend, a received pack through libgit2's pack
//! writer (`git_odb_write_pack`), and the writer's batches through their mempack and their own pack writer.

#![allow(unsafe_code)]

mod backend;
mod cache;
pub mod pack;
mod packs;

use std::path::Path;

use git2::{Binding, Odb, Repository};

/// libgit2's priorities for its own backends (a higher one is asked first): loose objects, then packs.
const LOOSE_PRIORITY: i32 = 1;
const PACKED_PRIORITY: i32 = 2;

/// Opens the bare repo at `dir` with [`attach`]ed object store.
pub fn open(dir: &Path) -> Result<Repository, git2::Error> {
    let repo = Repository::open_bare(dir)?;
    attach(&repo)?;
    Ok(repo)
}

/// Gives `repo` an object store of libgit2's loose backend and this crate's pack backend, in place of libgit2's
/// default (loose and mapped packs). A repo that borrows objects from others (`objects/info/alternates`), or that
/// holds a pack index of another version than 2 (git wrote version 1 before 1.5.2; git and libgit2 write 2), keeps
/// the default, which reads both.
pub fn attach(repo: &Repository) -> Result<(), git2::Error> {
    let objects = repo.path().join("objects");
    if objects.join("info").join("alternates").exists() {
        return Ok(());
    }
    if let Some(idx) = packs::first_index_not_v2(&objects.join("pack")) {
        tracing::warn!(index = %idx.display(), "a pack index of another version than 2: this repo is read through libgit2's own store, which maps its packs");
        return Ok(());
    }
    let odb = Odb::new()?;
    let dir = std::ffi::CString::new(objects.to_string_lossy().as_bytes())
        .map_err(|_| git2::Error::from_str("an objects folder whose path holds a NUL"))?;
    // Loose objects are fsynced as libgit2's default store would: when `core.fsyncObjectFiles` says so.
    let fsync = repo.config().and_then(|c| c.get_bool("core.fsyncObjectFiles")).unwrap_or(false);
    let mut loose: *mut libgit2_sys::git_odb_backend = std::ptr::null_mut();
    // SAFETY: plain constructors and adders; once added, a backend belongs to the odb, which frees it. On a failed
    // add the backend is freed here.
    unsafe {
        let rc = libgit2_sys::git_odb_backend_loose(&mut loose, dir.as_ptr(), -1, i32::from(fsync), 0, 0);
        if rc < 0 {
            return Err(git2::Error::last_error(rc));
        }
        add(&odb, loose, LOOSE_PRIORITY)?;
        add(&odb, backend::new(&objects)?, PACKED_PRIORITY)?;
    }
    repo.set_odb(&odb)
}

/// Adds `backend` to `odb`, or frees it.
///
/// # Safety
/// `backend` is a backend nobody owns yet.
unsafe fn add(odb: &Odb<'_>, backend: *mut libgit2_sys::git_odb_backend, priority: i32) -> Result<(), git2::Error> {
    let rc = libgit2_sys::git_odb_add_backend(odb.raw(), backend, priority);
    if rc < 0 {
        if let Some(free) = (*backend).free {
            free(backend);
        }
        return Err(git2::Error::last_error(rc));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
