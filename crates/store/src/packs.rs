//! The packs of one `objects/pack` folder, newest first, as a repo handle sees them. A pack opened once is shared
//! by every handle of the process (its sampled index is read once) until its files are gone from disk.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::pack::{Id, Pack};

/// Every pack this process has open, by index path.
static OPEN: Mutex<Option<HashMap<PathBuf, Arc<Pack>>>> = Mutex::new(None);

/// The pack whose index is `idx`, opened now or shared with another handle. The pack is opened (its index read)
/// without holding the list of open packs, which every handle's refresh takes.
fn shared(idx: &Path) -> io::Result<Arc<Pack>> {
    let known = |open: &Option<HashMap<PathBuf, Arc<Pack>>>| open.as_ref().and_then(|open| open.get(idx).cloned());
    if let Some(p) = known(&OPEN.lock().unwrap_or_else(|p| p.into_inner())) {
        return Ok(p);
    }
    let pack = Arc::new(Pack::open(idx)?);
    let mut guard = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    // Another handle may have opened it meanwhile: one copy is kept, and this one is let go.
    if let Some(p) = known(&guard) {
        return Ok(p);
    }
    guard.get_or_insert_with(HashMap::new).insert(idx.to_owned(), pack.clone());
    Ok(pack)
}

/// Forgets the packs of `folder` that are no longer on disk (a roll-up removed them): handles that still list one
/// keep reading it through their open files until they look at the folder again. Their cached objects are dropped
/// after the list of open packs is let go, in one pass.
fn forget_removed(folder: &Path, present: &[PathBuf]) {
    // Compared as bytes, in a set: `Path`'s own comparison walks components, and every batch's refresh compared
    // each open pack with each present one (a tenth of the writer's time with a few dozen packs).
    let present: std::collections::HashSet<&[u8]> = present.iter().map(|p| p.as_os_str().as_encoded_bytes()).collect();
    let folder = folder.as_os_str().as_encoded_bytes();
    let mut removed = std::collections::HashSet::new();
    if let Some(open) = OPEN.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        open.retain(|idx, pack| {
            let in_folder = idx.parent().is_some_and(|p| p.as_os_str().as_encoded_bytes() == folder);
            let keep = !in_folder || present.contains(idx.as_os_str().as_encoded_bytes());
            if !keep {
                removed.insert(pack.key());
            }
            keep
        });
    }
    crate::cache::forget(&removed);
}

/// Whether `path` is the index of a complete pack: `pack-*.idx` with its `.pack` beside it, as git and libgit2 take
/// them. A temporary file being written (`tmp_*`, whatever it ends in) or half a pack a killed process left is not.
fn is_pack_index(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.starts_with("pack-") && name.ends_with(".idx") && path.with_extension("pack").exists()
}

/// The first pack index in `folder` that is not of version 2, if any (an unreadable one counts as not). Only complete
/// packs count ([`is_pack_index`]): an index still being written would otherwise send every repo opened meanwhile to
/// libgit2's own store. Indexes this process has open are version 2 ([`Pack::open`] takes no other) and are not read
/// again.
pub fn first_index_not_v2(folder: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let entries = std::fs::read_dir(folder).ok()?;
    let guard = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    let known = |idx: &Path| guard.as_ref().is_some_and(|open| open.contains_key(idx));
    entries.flatten().map(|e| e.path()).filter(|p| is_pack_index(p)).find(|idx| {
        if known(idx) {
            return false;
        }
        let mut head = [0u8; 8];
        let read = std::fs::File::open(idx).and_then(|mut f| f.read_exact(&mut head));
        read.is_err() || head != [0xff, b't', b'O', b'c', 0, 0, 0, 2]
    })
}

/// The packs of one folder.
pub struct Packs {
    folder: PathBuf,
    /// None until the first lookup (or libgit2's first refresh): a handle that only reads refs never lists them.
    list: RwLock<Option<Vec<Arc<Pack>>>>,
    /// The pack of the last hit, looked in first (the objects a caller reads one after another are mostly in one).
    last: std::sync::atomic::AtomicUsize,
}

impl Packs {
    /// The packs of `folder` (`<repo>/objects/pack`; a missing folder holds none), listed on first use.
    pub fn new(folder: PathBuf) -> Self {
        Packs { folder, list: RwLock::new(None), last: Default::default() }
    }

    /// The packs, listed now if they never were.
    fn list(&self) -> std::sync::RwLockReadGuard<'_, Option<Vec<Arc<Pack>>>> {
        let guard = self.list.read().unwrap_or_else(|p| p.into_inner());
        if guard.is_some() {
            return guard;
        }
        drop(guard);
        if let Err(e) = self.refresh() {
            tracing::warn!(folder = %self.folder.display(), error = %e, "could not list the packs");
        }
        self.list.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks at the folder again: packs added since are read from now on, packs removed are let go.
    pub fn refresh(&self) -> io::Result<()> {
        let mut found = Vec::new();
        match std::fs::read_dir(&self.folder) {
            Ok(entries) => {
                for entry in entries {
                    let path = entry?.path();
                    if is_pack_index(&path) {
                        found.push(path);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        forget_removed(&self.folder, &found);
        let mut list = Vec::with_capacity(found.len());
        for idx in &found {
            match shared(idx) {
                Ok(p) => list.push(p),
                // Its pack is there (checked above), so this is a damaged or unreadable pack: its objects are
                // missing to this handle until it can be read.
                Err(e) => {
                    tracing::warn!(pack = %idx.display(), error = %e, "a pack could not be read; its objects are not found")
                }
            }
        }
        // Newest first: new objects are looked for where they are most likely to be.
        list.sort_by(|a, b| b.modified().cmp(&a.modified()).then_with(|| b.count().cmp(&a.count())));
        *self.list.write().unwrap_or_else(|p| p.into_inner()) = Some(list);
        Ok(())
    }

    /// The pack that holds `id`, and where.
    pub fn find(&self, id: &Id) -> io::Result<Option<(Arc<Pack>, u64)>> {
        use std::sync::atomic::Ordering;
        let guard = self.list();
        let list = guard.as_deref().unwrap_or_default();
        let last = self.last.load(Ordering::Relaxed);
        let order =
            list.get(last).map(|p| (last, p)).into_iter().chain(list.iter().enumerate().filter(|(i, _)| *i != last));
        for (i, pack) in order {
            if let Some(offset) = pack.find(id)? {
                self.last.store(i, Ordering::Relaxed);
                return Ok(Some((pack.clone(), offset)));
            }
        }
        Ok(None)
    }

    /// The kind and data of `id`.
    pub fn read(&self, id: &Id) -> io::Result<Option<(u8, Vec<u8>)>> {
        match self.find(id)? {
            Some((pack, offset)) => pack.read_at(offset, &|base| self.read(base)).map(Some),
            None => Ok(None),
        }
    }

    /// The kind and size of `id`.
    pub fn header(&self, id: &Id) -> io::Result<Option<(u8, usize)>> {
        match self.find(id)? {
            Some((pack, offset)) => pack.header_at(offset, &|base| self.header(base)).map(Some),
            None => Ok(None),
        }
    }

    /// Up to two ids, across every pack, that start with the first `hex_len` hex digits of `prefix`.
    pub fn with_prefix(&self, prefix: &Id, hex_len: usize) -> io::Result<Vec<Id>> {
        let mut out: Vec<Id> = Vec::new();
        let guard = self.list();
        for pack in guard.as_deref().unwrap_or_default() {
            for id in pack.with_prefix(prefix, hex_len)? {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            if out.len() > 1 {
                break;
            }
        }
        Ok(out)
    }
}
