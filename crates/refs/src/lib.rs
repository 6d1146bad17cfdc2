//! Railyard's refs in the manifest repo, named in one place: the branch, what is exported, pending and failed
//! tags, replay records, the fetched remote branch, webhook cursors. The API and the exporter both read and move
//! them only through the helpers here; every update of a shared ref is a compare-and-swap ([`swap`]).

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

pub const PENDING_TAGS: &str = "refs/railyard/pending-tags/";

/// A tag the API recorded for the exporter to push: `refs/railyard/pending-tags/<name>`.
pub fn pending_tag_ref(name: &str) -> String {
    format!("{PENDING_TAGS}{name}")
}

pub const FAILED_TAGS: &str = "refs/railyard/failed-tags/";

/// A tag that could not be created, with the reason in its reflog: `refs/railyard/failed-tags/<name>`.
pub fn failed_tag_ref(name: &str) -> String {
    format!("{FAILED_TAGS}{name}")
}

/// A pushed (or learnt) tag: `refs/tags/<name>`.
pub fn tag_ref(name: &str) -> String {
    format!("refs/tags/{name}")
}

/// Where the remote branch is fetched to (after-push replicas follow it; the exporter adopts a moved branch from
/// it): `refs/railyard/remote/<branch>`.
pub fn remote_branch_ref(branch: &str) -> String {
    format!("refs/railyard/remote/{branch}")
}

/// A webhook subscriber's cursor, the last commit announced on `stream` (`written` or `exported`):
/// `refs/railyard/webhooks/<id>/<stream>`.
pub fn webhook_cursor_ref(id: &str, stream: &str) -> String {
    format!("refs/railyard/webhooks/{id}/{stream}")
}

/// Where the local repo knows tag names from: pushed or learnt from the remote, waiting to be pushed, refused.
const TAG_NAMESPACES: [&str; 3] = ["refs/tags/", PENDING_TAGS, FAILED_TAGS];

/// True when tags `a` and `b` cannot both exist: the same name, or one is a folder of the other (`a` and `a/b`
/// are a file and a directory of the same path in git's ref store, and a remote refuses the second).
pub fn tags_conflict(a: &str, b: &str) -> bool {
    let nested = |outer: &str, inner: &str| inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'));
    a == b || nested(a, b) || nested(b, a)
}

/// Why a tag name cannot be requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagConflict {
    /// A tag of this very name exists (pushed, learnt, pending or refused).
    Exists,
    /// This tag exists and is a folder of the name, or lies inside it.
    Nested(String),
}

/// Whether tag `name` conflicts with a tag the local repo knows: costs one lookup per folder of the name and one
/// listing under it, whatever the number of tags.
pub fn tag_conflict(repo: &Repository, name: &str) -> Result<Option<TagConflict>, git2::Error> {
    for ns in TAG_NAMESPACES {
        if target(repo, &format!("{ns}{name}"))?.is_some() {
            return Ok(Some(TagConflict::Exists));
        }
        let mut folder = name;
        while let Some((outer, _)) = folder.rsplit_once('/') {
            if target(repo, &format!("{ns}{outer}"))?.is_some() {
                return Ok(Some(TagConflict::Nested(outer.to_owned())));
            }
            folder = outer;
        }
        // Ref names cannot hold glob characters (`*`, `?`, `[`), so the name is literal in the pattern.
        if let Some(r) = repo.references_glob(&format!("{ns}{name}/*"))?.next() {
            let r = r?;
            let inner = r.name().ok().and_then(|n| n.strip_prefix(ns)).unwrap_or(name).to_owned();
            return Ok(Some(TagConflict::Nested(inner)));
        }
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn repo_with_commit() -> (tempfile::TempDir, Repository, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let commit = repo.commit(None, &sig, &sig, "c", &repo.find_tree(tree).unwrap(), &[]).unwrap();
        (dir, repo, commit)
    }

    #[test]
    fn nested_names_conflict_in_both_directions_and_in_every_namespace() {
        let (_dir, repo, c) = repo_with_commit();
        repo.reference("refs/tags/dtag", c, false, "").unwrap();
        repo.reference(&pending_tag_ref("ptag"), c, false, "").unwrap();
        repo.reference(&failed_tag_ref("f/inner"), c, false, "").unwrap();
        let conflict = |n: &str| tag_conflict(&repo, n).unwrap();
        assert_eq!(conflict("dtag"), Some(TagConflict::Exists));
        assert_eq!(conflict("dtag/sub2"), Some(TagConflict::Nested("dtag".into())));
        assert_eq!(conflict("ptag/x/y"), Some(TagConflict::Nested("ptag".into())));
        assert_eq!(conflict("f"), Some(TagConflict::Nested("f/inner".into())));
        assert_eq!(conflict("dtagx"), None);
        assert_eq!(conflict("d"), None);
        assert!(tags_conflict("a", "a/b") && tags_conflict("a/b", "a") && tags_conflict("a", "a"));
        assert!(!tags_conflict("a", "ab") && !tags_conflict("a/b", "a/c"));
    }

    /// Tag names of one to three segments over a tiny alphabet, so that prefixes and clashes are common.
    fn names() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(prop::collection::vec("[ab]{1,2}", 1..=3).prop_map(|s| s.join("/")), 1..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Requesting tags one after another, each recorded as a pending tag unless `tag_conflict` refuses it: the
        /// lookup agrees with the pairwise rule, and a tag it accepts can always be written as a ref and pushed to a
        /// remote holding the accepted tags (the refusal that used to stop export for good cannot happen).
        #[test]
        fn accepted_tags_can_always_be_recorded_and_pushed(requests in names()) {
            let (_dir, repo, c) = repo_with_commit();
            let remote_dir = tempfile::tempdir().unwrap();
            Repository::init_bare(remote_dir.path()).unwrap();
            let mut remote = repo.remote_anonymous(remote_dir.path().to_str().unwrap()).unwrap();
            let mut accepted: Vec<String> = Vec::new();
            for name in requests {
                let model = accepted.iter().any(|a| tags_conflict(a, &name));
                let found = tag_conflict(&repo, &name).unwrap();
                prop_assert_eq!(found.is_some(), model, "{} against {:?}", name, accepted);
                if found.is_none() {
                    repo.reference(&pending_tag_ref(&name), c, false, "").unwrap();
                    remote.push(&[format!("{}:refs/tags/{name}", pending_tag_ref(&name))], None).unwrap();
                    accepted.push(name);
                }
            }
        }
    }
}
