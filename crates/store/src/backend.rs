//! The libgit2 object-database backend over [`Packs`]: reads, headers, existence and prefixes are answered from
//! the packs with positioned reads; receiving a pack (a fetch, a push's pack writer) is left to libgit2's own pack
//! backend, whose packs this backend then reads. libgit2's backend opens a pack's index only on a lookup, and none
//! is ever sent to it.

use std::ffi::CString;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use libgit2_sys as raw;

use crate::pack::Id;
use crate::packs::Packs;

/// The backend: libgit2's struct first, so that libgit2's pointer to it is a pointer to this.
#[repr(C)]
struct Backend {
    parent: raw::git_odb_backend,
    /// libgit2's pack backend on the same folder, for `writepack` only.
    writer: *mut raw::git_odb_backend,
    packs: Packs,
}

/// A new backend over the packs of `objects_dir`; the odb that it is added to owns it (and frees it).
pub fn new(objects_dir: &Path) -> Result<*mut raw::git_odb_backend, git2::Error> {
    let dir = CString::new(objects_dir.to_string_lossy().as_bytes())
        .map_err(|_| git2::Error::from_str("an objects folder whose path holds a NUL"))?;
    let mut writer: *mut raw::git_odb_backend = std::ptr::null_mut();
    // SAFETY: a plain constructor; on success `writer` is a backend this one owns and frees in `free`.
    let rc = unsafe { raw::git_odb_backend_pack(&mut writer, dir.as_ptr()) };
    if rc < 0 {
        return Err(git2::Error::last_error(rc));
    }
    // SAFETY: zeroed is a valid `git_odb_backend` (all callbacks None, null odb), which `git_odb_init_backend` then
    // initializes as libgit2 asks of custom backends.
    let mut parent: raw::git_odb_backend = unsafe { std::mem::zeroed() };
    // SAFETY: `parent` is a live struct of the size libgit2 expects for this version.
    let rc = unsafe { raw::git_odb_init_backend(&mut parent, raw::GIT_ODB_BACKEND_VERSION) };
    if rc < 0 {
        // SAFETY: `writer` was made above and is not shared.
        unsafe { free_writer(writer) };
        return Err(git2::Error::last_error(rc));
    }
    parent.read = Some(read);
    parent.read_prefix = Some(read_prefix);
    parent.read_header = Some(read_header);
    parent.exists = Some(exists);
    parent.exists_prefix = Some(exists_prefix);
    parent.refresh = Some(refresh);
    parent.writepack = Some(writepack);
    parent.free = Some(free);
    let backend = Box::new(Backend { parent, writer, packs: Packs::new(objects_dir.join("pack")) });
    Ok(Box::into_raw(backend).cast())
}

/// # Safety
/// `writer` is null or a backend made by libgit2 and owned by the caller.
unsafe fn free_writer(writer: *mut raw::git_odb_backend) {
    if let Some(free) = writer.as_ref().and_then(|w| w.free) {
        free(writer);
    }
}

const NOT_FOUND: c_int = raw::GIT_ENOTFOUND as c_int;
const AMBIGUOUS: c_int = raw::GIT_EAMBIGUOUS as c_int;
const FAILED: c_int = -1;

/// Runs `f` on the backend, turning an I/O error or a panic into libgit2's error (with its message set).
fn with(backend: *mut raw::git_odb_backend, f: impl FnOnce(&Backend) -> std::io::Result<c_int>) -> c_int {
    // SAFETY: libgit2 passes back the pointer `new` returned, alive until `free`.
    let this = unsafe { &*(backend as *const Backend) };
    let failed = |message: String| {
        let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: a valid C string; libgit2 copies it.
        unsafe { raw::git_error_set_str(raw::GIT_ERROR_ODB as c_int, text.as_ptr()) };
        FAILED
    };
    match catch_unwind(AssertUnwindSafe(|| f(this))) {
        Ok(Ok(rc)) => rc,
        Ok(Err(e)) => failed(format!("reading the packs: {e}")),
        Err(_) => failed("reading the packs: an internal error".to_owned()),
    }
}

/// The id libgit2 passes.
///
/// # Safety
/// `oid` points to a live `git_oid`.
unsafe fn id(oid: *const raw::git_oid) -> Id {
    (*oid).id
}

/// Hands `data` to libgit2 in a buffer of its own allocator, as it frees read results.
///
/// # Safety
/// The out pointers are libgit2's, valid for writing.
unsafe fn hand_over(
    backend: *mut raw::git_odb_backend,
    (kind, data): (u8, Vec<u8>),
    data_p: *mut *mut c_void,
    len_p: *mut usize,
    type_p: *mut raw::git_object_t,
) -> c_int {
    let buf = raw::git_odb_backend_data_alloc(backend, data.len().max(1));
    if buf.is_null() {
        return FAILED;
    }
    std::ptr::copy_nonoverlapping(data.as_ptr(), buf.cast::<u8>(), data.len());
    *data_p = buf;
    *len_p = data.len();
    *type_p = raw::git_object_t::from(kind);
    0
}

extern "C" fn read(
    data_p: *mut *mut c_void,
    len_p: *mut usize,
    type_p: *mut raw::git_object_t,
    backend: *mut raw::git_odb_backend,
    oid: *const raw::git_oid,
) -> c_int {
    with(backend, |b| {
        // SAFETY: libgit2's arguments, valid for this call.
        Ok(match b.packs.read(&unsafe { id(oid) })? {
            Some(found) => unsafe { hand_over(backend, found, data_p, len_p, type_p) },
            None => NOT_FOUND,
        })
    })
}

extern "C" fn read_header(
    len_p: *mut usize,
    type_p: *mut raw::git_object_t,
    backend: *mut raw::git_odb_backend,
    oid: *const raw::git_oid,
) -> c_int {
    with(backend, |b| {
        // SAFETY: libgit2's arguments, valid for this call.
        Ok(match b.packs.header(&unsafe { id(oid) })? {
            Some((kind, size)) => unsafe {
                *len_p = size;
                *type_p = raw::git_object_t::from(kind);
                0
            },
            None => NOT_FOUND,
        })
    })
}

extern "C" fn exists(backend: *mut raw::git_odb_backend, oid: *const raw::git_oid) -> c_int {
    // SAFETY: libgit2's arguments, valid for this call.
    let rc = with(backend, |b| Ok(c_int::from(b.packs.find(&unsafe { id(oid) })?.is_some())));
    // libgit2 reads any non-zero as "exists": an error is "not here".
    rc.max(0)
}

/// The one id that starts with the first `len` hex digits of `short`.
fn unique(b: &Backend, short: *const raw::git_oid, len: usize) -> std::io::Result<Result<Id, c_int>> {
    // SAFETY: libgit2's argument, valid for this call.
    let found = b.packs.with_prefix(&unsafe { id(short) }, len.min(40))?;
    Ok(match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(NOT_FOUND),
        _ => Err(AMBIGUOUS),
    })
}

extern "C" fn exists_prefix(
    out: *mut raw::git_oid,
    backend: *mut raw::git_odb_backend,
    short: *const raw::git_oid,
    len: usize,
) -> c_int {
    with(backend, |b| {
        Ok(match unique(b, short, len)? {
            Ok(full) => {
                // SAFETY: libgit2's out pointer, valid for writing.
                unsafe { (*out).id = full };
                0
            }
            Err(rc) => rc,
        })
    })
}

extern "C" fn read_prefix(
    out: *mut raw::git_oid,
    data_p: *mut *mut c_void,
    len_p: *mut usize,
    type_p: *mut raw::git_object_t,
    backend: *mut raw::git_odb_backend,
    short: *const raw::git_oid,
    len: usize,
) -> c_int {
    with(backend, |b| {
        let full = match unique(b, short, len)? {
            Ok(full) => full,
            Err(rc) => return Ok(rc),
        };
        Ok(match b.packs.read(&full)? {
            // SAFETY: libgit2's out pointers, valid for writing.
            Some(found) => unsafe {
                (*out).id = full;
                hand_over(backend, found, data_p, len_p, type_p)
            },
            None => NOT_FOUND,
        })
    })
}

extern "C" fn refresh(backend: *mut raw::git_odb_backend) -> c_int {
    with(backend, |b| b.packs.refresh().map(|_| 0))
}

extern "C" fn writepack(
    out: *mut *mut raw::git_odb_writepack,
    backend: *mut raw::git_odb_backend,
    odb: *mut raw::git_odb,
    progress: raw::git_indexer_progress_cb,
    payload: *mut c_void,
) -> c_int {
    // SAFETY: `backend` is this backend (alive until `free`); its writer is libgit2's pack backend, which always
    // has `writepack`. The pack it writes lands in the folder this backend reads, and is seen on the next refresh.
    unsafe {
        let this = &*(backend as *const Backend);
        match (*this.writer).writepack {
            Some(write) => write(out, this.writer, odb, progress, payload),
            None => FAILED,
        }
    }
}

extern "C" fn free(backend: *mut raw::git_odb_backend) {
    // SAFETY: libgit2 calls `free` once, with the pointer `new` made from a Box.
    unsafe {
        let this = Box::from_raw(backend.cast::<Backend>());
        free_writer(this.writer);
    }
}
