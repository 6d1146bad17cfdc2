//! The refs the API and the exporter share in the local repo. Every update of a shared ref is a compare-and-swap.

use std::path::Path;
use std::time::{Duration, SystemTime};

use git2::{ErrorCode, Oid, Repository};

/// The local branch ref.
pub fn branch_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// Where the exporter keeps the last commit known to be on the remote: `refs/railyard/exported/<branch>`.
pub fn exported_ref(branch: &str) -> String {
    format!("refs/railyard/exported/{branch}")
}

pub(crate) const PENDING_TAGS: &str = "refs/railyard/pending-tags/";

/// A tag the API recorded for the exporter to push: `refs/railyard/pending-tags/<name>`.
pub fn pending_tag_ref(name: &str) -> String {
    format!("{PENDING_TAGS}{name}")
}

/// A tag that could not be created, with the reason in its reflog: `refs/railyard/failed-tags/<name>`.
pub fn failed_tag_ref(name: &str) -> String {
    format!("refs/railyard/failed-tags/{name}")
}

/// The commit that replaced `old` when local commits were replayed onto an adopted remote branch.
pub fn replayed_ref(old: Oid) -> String {
    format!("refs/railyard/replayed/{old}")
}

/// The target of `name`, None if it does not exist.
pub fn target(repo: &Repository, name: &str) -> Result<Option<Oid>, git2::Error> {
    match repo.find_reference(name) {
        Ok(r) => Ok(r.target()),
        Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Moves `name` from `old` to `new` only if it still points at `old` (None: only if it does not exist).
/// Returns false when someone else moved it first.
pub fn swap(repo: &Repository, name: &str, old: Option<Oid>, new: Oid, log: &str) -> Result<bool, git2::Error> {
    let result = match old {
        Some(old) => repo.reference_matching(name, new, true, old, log).map(|_| ()),
        None => repo.reference(name, new, false, log).map(|_| ()),
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The commit tag `name` names in the local repo: a tag already pushed or learnt from the remote
/// (`refs/tags/`), or one still waiting to be pushed.
pub fn resolve_tag(repo: &Repository, name: &str) -> Result<Option<Oid>, git2::Error> {
    for refname in [format!("refs/tags/{name}"), pending_tag_ref(name)] {
        match repo.find_reference(&refname) {
            Ok(r) => return Ok(Some(r.peel_to_commit()?.id())),
            Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The pending tags, by name, with the commit each names.
pub fn pending_tags(repo: &Repository) -> Result<Vec<(String, Oid)>, git2::Error> {
    let mut out = Vec::new();
    for r in repo.references_glob(&format!("{PENDING_TAGS}*"))? {
        let r = r?;
        if let (Some(name), Some(target)) = (r.name().ok().and_then(|n| n.strip_prefix(PENDING_TAGS)), r.target()) {
            out.push((name.to_owned(), target));
        }
    }
    Ok(out)
}

/// Removes ref lock files older than `age`: a process killed while updating a ref leaves its `.lock` behind, and
/// git would refuse every later update of that ref. A live update holds its lock for well under a millisecond.
pub fn clear_stale_locks(repo_dir: &Path, age: Duration) -> usize {
    let mut removed = 0;
    let mut dirs = vec![repo_dir.join("refs")];
    let mut candidates = vec![repo_dir.join("packed-refs.lock"), repo_dir.join("config.lock")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(path),
                Ok(_) if path.extension().is_some_and(|e| e == "lock") => candidates.push(path),
                _ => {}
            }
        }
    }
    for path in candidates {
        let old = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|d| d >= age);
        if old && std::fs::remove_file(&path).is_ok() {
            tracing::warn!(lock = %path.display(), "removed a stale lock file left by a killed process");
            removed += 1;
        }
    }
    removed
}
