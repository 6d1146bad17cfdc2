//! Ref files the writer replaces, removed off its path.
//!
//! Moving the branch renames a new ref file over the old one (libgit2 and git both do): the old file loses its last
//! link and the kernel frees its block in the thread that renamed. On a filesystem that discards freed blocks at once
//! (ext4 mounted with `discard` and without a journal, as on many VMs; with a journal the discard waits for the
//! next commit instead), that thread then waits for the device to discard the block, behind whatever the device is
//! writing: measured at 10,000 applications beside a pack roll-up, up to 28 ms of a deploy's commit.
//!
//! So the writer first links the current ref file into `railyard/retired-refs/` ([`Retired::keep`]); after the
//! move, a thread at the lowest CPU priority removes that link ([`Retired::release`]), and the free (with its
//! discard) happens there. Links a killed process left are removed when the next one starts. Nothing here is ever
//! read: a ref is only ever what its file under `refs/` (or `packed-refs`) says.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// Where the links go, inside the repo (so on its filesystem, which a hard link needs) and outside `refs/`.
pub fn dir(repo_dir: &Path) -> PathBuf {
    repo_dir.join("railyard").join("retired-refs")
}

/// The writer's side: links made before a ref moves, handed to the thread that removes them.
pub struct Retired {
    dir: PathBuf,
    next: AtomicU64,
    remover: mpsc::Sender<PathBuf>,
}

impl Retired {
    /// Removes what an earlier process left in [`dir`] (a link or two per kill) and starts the removing thread.
    pub fn start(repo_dir: &Path) -> std::io::Result<Retired> {
        let dir = dir(repo_dir);
        std::fs::create_dir_all(&dir)?;
        remove_leftovers(&dir);
        let (remover, rx) = mpsc::channel::<PathBuf>();
        std::thread::Builder::new().name("railyard-retired".into()).spawn(move || {
            railyard_export::packs::lowest_priority_here();
            for path in rx {
                remove(&path);
            }
        })?;
        Ok(Retired { dir, next: AtomicU64::new(0), remover })
    }

    /// Links the loose file of `refname` (if it has one) into the retired folder, so that the move about to
    /// replace it does not free it. None when there is no loose file (a packed or new ref) or it cannot be linked:
    /// the move then frees it itself, as it always did.
    pub fn keep(&self, repo_dir: &Path, refname: &str) -> Option<PathBuf> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let link = self.dir.join(format!("{}-{n}", std::process::id()));
        match std::fs::hard_link(repo_dir.join(refname), &link) {
            Ok(()) => Some(link),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::debug!(refname, error = %e, "could not link a ref file before moving it; the move frees it");
                None
            }
        }
    }

    /// Hands a link [`Retired::keep`] made to the removing thread (or removes it here, if that thread is gone).
    pub fn release(&self, kept: Option<PathBuf>) {
        if let Some(path) = kept {
            if let Err(mpsc::SendError(path)) = self.remover.send(path) {
                remove(&path);
            }
        }
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %path.display(), error = %e, "could not remove a retired ref file");
        }
    }
}

fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        remove(&entry.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// The ref file the move replaces keeps a link until the removing thread takes it; the ref reads as moved all
    /// along, and nothing stays behind. A ref with no loose file is not linked.
    #[test]
    fn a_replaced_ref_file_lives_on_until_the_remover_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@localhost").unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let one = repo.commit(Some("refs/heads/main"), &sig, &sig, "one", &tree, &[]).unwrap();
        let two = repo.commit(None, &sig, &sig, "two", &tree, &[&repo.find_commit(one).unwrap()]).unwrap();
        // A leftover of a killed process goes when the next one starts.
        std::fs::create_dir_all(super::dir(dir.path())).unwrap();
        std::fs::write(super::dir(dir.path()).join("1-0"), b"x").unwrap();
        let retired = Retired::start(dir.path()).unwrap();
        let ref_file = dir.path().join("refs/heads/main");
        let inode = std::fs::metadata(&ref_file).unwrap().ino();
        let kept = retired.keep(dir.path(), "refs/heads/main").expect("linked");
        assert_eq!(std::fs::metadata(&kept).unwrap().ino(), inode);
        assert!(railyard_refs::swap(&repo, "refs/heads/main", Some(one), two, "two").unwrap());
        assert_eq!(railyard_refs::target(&repo, "refs/heads/main").unwrap(), Some(two));
        // The old file is the link now, and only the link.
        assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), one.to_string());
        assert_eq!(std::fs::metadata(&kept).unwrap().nlink(), 1);
        assert_ne!(std::fs::metadata(&ref_file).unwrap().ino(), inode);
        assert_eq!(retired.keep(dir.path(), "refs/heads/none"), None);
        retired.release(Some(kept));
        let empty = || std::fs::read_dir(super::dir(dir.path())).unwrap().count() == 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(empty(), "the link and the leftover are removed");
    }
}
