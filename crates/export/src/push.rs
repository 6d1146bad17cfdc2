//! Pushing: the branch first, then each pending tag whose commit is on the remote.

use git2::{Oid, Repository};

use crate::{transport, Config, ExportError};
use railyard_refs::{self as refs, branch_ref, exported_ref, failed_tag_ref, pending_tag_ref, replayed_ref};

/// Pushes the branch if the remote is behind what was last exported; returns the local head (None: no branch yet)
/// and whether a push happened.
pub fn push_branch(repo: &Repository, cfg: &Config) -> Result<(Option<Oid>, bool), ExportError> {
    let Some(local) = refs::target(repo, &branch_ref(&cfg.branch))? else { return Ok((None, false)) };
    let exported = refs::target(repo, &exported_ref(&cfg.branch))?;
    if exported == Some(local) {
        return Ok((Some(local), false));
    }
    if let Some(dir) = transport::local_path(&cfg.git_url) {
        if push_branch_local(repo, cfg, &dir, local)? {
            refs::swap(repo, &exported_ref(&cfg.branch), exported, local, "railyard-export: pushed")?;
            return Ok((Some(local), true));
        }
    }
    let spec = format!("{0}:{0}", branch_ref(&cfg.branch));
    if let Some((refname, reason)) = transport::push(repo, &cfg.git_url, &cfg.credentials, &[spec])?.into_iter().next()
    {
        return Err(ExportError::Rejected { refname, reason });
    }
    // Someone else (a second exporter) may have recorded progress meanwhile; theirs is at least as recent.
    refs::swap(repo, &exported_ref(&cfg.branch), exported, local, "railyard-export: pushed")?;
    Ok((Some(local), true))
}

/// Pushes `local` to the branch of the remote repo at `dir` when that is a fast-forward of a commit this repo holds
/// (or the remote has no branch): the objects the remote lacks are copied as one pack (walking only what changed),
/// then the branch is moved with a compare-and-swap on the head read. False, with nothing done, when the remote's
/// head is not an ancestor here: libgit2's push decides (and reports) that case.
fn push_branch_local(repo: &Repository, cfg: &Config, dir: &std::path::Path, local: Oid) -> Result<bool, ExportError> {
    let branch = branch_ref(&cfg.branch);
    let remote_repo = railyard_store::open(dir)?;
    let there = refs::target(&remote_repo, &branch)?;
    let forward = match there {
        None => true,
        Some(t) if t == local => return Ok(true),
        Some(t) => repo.find_commit(t).is_ok() && repo.graph_descendant_of(local, t)?,
    };
    if !forward {
        return Ok(false);
    }
    crate::objects::send_objects(repo, &remote_repo, there, local)?;
    if !refs::swap(&remote_repo, &branch, there, local, "railyard-export: pushed")? {
        let reason = "the remote branch moved during the push".to_owned();
        return Err(ExportError::Rejected { refname: branch, reason });
    }
    drop(remote_repo);
    crate::packs::roll_up_remote(dir);
    Ok(true)
}

/// A tag on the remote: the commit it peels to.
pub(crate) fn remote_tags(heads: &[(String, Oid)]) -> Vec<(String, Oid)> {
    let mut tags: Vec<(String, Oid)> = Vec::new();
    for (name, oid) in heads {
        let Some(rest) = name.strip_prefix("refs/tags/") else { continue };
        // An annotated tag is listed twice: as itself and, with `^{}`, as the commit it peels to.
        match rest.strip_suffix("^{}") {
            Some(name) => match tags.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = *oid,
                None => tags.push((name.to_owned(), *oid)),
            },
            None => {
                if !tags.iter().any(|(n, _)| n == rest) {
                    tags.push((rest.to_owned(), *oid));
                }
            }
        }
    }
    tags
}

/// What a round did with the pending tags.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TagsPushed {
    pub pushed: Vec<String>,
    /// Refused by the remote (with `--fail-on-error-with-git-push-tags=false`) or failed in a replay.
    pub failed: Vec<String>,
}

/// Pushes every pending tag whose commit is on the remote (`exported` or an ancestor of it). Others wait; none is
/// dropped: the writer records a tag only after its commit is on the branch. A tag whose commit was replaced by a
/// replay follows it to the replacement (or is failed, if its request failed in the replay).
pub fn push_tags(repo: &Repository, cfg: &Config, exported: Oid) -> Result<TagsPushed, ExportError> {
    let mut done = TagsPushed::default();
    let mut ready = Vec::new();
    for (name, mut commit) in refs::pending_tags(repo)? {
        if let Some(new) = refs::target(repo, &replayed_ref(commit))? {
            if refs::target(repo, &failed_tag_ref(&name))? == Some(new) {
                repo.find_reference(&pending_tag_ref(&name))?.delete()?;
                done.failed.push(name);
                continue;
            }
            if !refs::swap(repo, &pending_tag_ref(&name), Some(commit), new, "railyard-export: follows replay")? {
                continue;
            }
            commit = new;
        }
        if commit == exported || repo.graph_descendant_of(exported, commit)? {
            ready.push((name, commit));
        }
    }
    if ready.is_empty() {
        return Ok(done);
    }
    // git refuses to move an existing tag on the client side, and libgit2 does not: look at the remote's tags first,
    // as it lists them on the connection that pushes, so a tag another writer creates meanwhile is refused by the
    // remote (a tag it did not list is pushed as "must not exist yet") instead of moved.
    let mut refused: Vec<(String, Oid, String)> = Vec::new();
    let mut to_push = Vec::new();
    let decide = |heads: &[(String, Oid)]| {
        let existing = remote_tags(heads);
        for (name, commit) in ready {
            match existing.iter().find(|(n, _)| *n == name) {
                Some((_, there)) if *there == commit => to_push.push((name, commit, true)),
                Some((_, there)) => refused.push((name, commit, format!("already exists on the remote at {there}"))),
                None => to_push.push((name, commit, false)),
            }
        }
        let specs: Vec<String> = to_push
            .iter()
            .filter(|(_, _, there)| !there)
            .map(|(name, _, _)| format!("{}:{}", pending_tag_ref(name), refs::tag_ref(name)))
            .collect();
        Ok::<_, std::convert::Infallible>(specs)
    };
    // (libgit2's local transport, for a remote on this machine, moves refs by force: there the check is only as
    // fresh as the list.)
    let rejected =
        transport::push_decided(repo, &cfg.git_url, &cfg.credentials, decide)?.unwrap_or_else(|never| match never {});
    for (name, commit, _) in to_push {
        match rejected.iter().find(|(r, _)| *r == refs::tag_ref(&name)) {
            // A held (or stale) lock on the remote is not a refusal of the name: the round fails and is retried.
            Some((refname, reason)) if reason.contains("lock") => {
                return Err(ExportError::Rejected { refname: refname.clone(), reason: reason.clone() })
            }
            Some((_, reason)) => refused.push((name, commit, reason.clone())),
            None => {
                repo.reference(&refs::tag_ref(&name), commit, true, "railyard-export: tag pushed")?;
                repo.find_reference(&pending_tag_ref(&name))?.delete()?;
                tracing::info!(tag = %name, commit = %commit, "pushed tag");
                done.pushed.push(name);
            }
        }
    }
    for (name, commit, reason) in refused {
        if cfg.fail_on_error_with_git_push_tags {
            return Err(ExportError::TagRejected { tag: name, reason });
        }
        tracing::error!(tag = %name, commit = %commit, reason = %reason, "the remote refused a tag; recorded under refs/railyard/failed-tags and skipped");
        repo.reference(&failed_tag_ref(&name), commit, true, &reason)?;
        repo.find_reference(&pending_tag_ref(&name))?.delete()?;
        done.failed.push(name);
    }
    Ok(done)
}

/// What a compare-and-swap push found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasPush {
    /// The remote branch now names the new commit.
    Done,
    /// The remote branch was not at the expected commit (another writer moved it): it is at this one now, if
    /// known.
    Moved(Option<Oid>),
}

/// Pushes `new` to the remote branch if, and only if, the remote branch is at `base` (None: it has no commit). The
/// head is read from the same connection's advertisement that the push's old value comes from, and the remote moves
/// the ref under its lock only if it still holds that old value: two writers can never both move it from `base`.
pub fn push_if_at(repo: &Repository, cfg: &Config, base: Option<Oid>, new: Oid) -> Result<CasPush, ExportError> {
    if let Some(dir) = transport::local_path(&cfg.git_url) {
        return push_if_at_local(repo, cfg, &dir, base, new);
    }
    let branch_ref = branch_ref(&cfg.branch);
    let spec = format!("{new}:{branch_ref}");
    let pushed = transport::push_decided(repo, &cfg.git_url, &cfg.credentials, |heads| {
        let there = heads.iter().find(|(n, _)| *n == branch_ref).map(|(_, id)| *id);
        if there == base {
            Ok(vec![spec])
        } else {
            Err(there)
        }
    });
    match pushed {
        Ok(Err(there)) => Ok(CasPush::Moved(there)),
        // libgit2 refuses a push that is not a fast-forward of what the remote advertised (which was `base`).
        Err(e) if e.code() == git2::ErrorCode::NotFastForward => Ok(CasPush::Moved(base)),
        Err(e) => Err(e.into()),
        Ok(Ok(rejected)) => match rejected.into_iter().next() {
            // A held lock on the remote is worth a retry like a moved branch; any refusal means "not moved by us".
            Some((_, reason)) => {
                tracing::info!(reason = %reason, "the remote refused the branch update");
                Ok(CasPush::Moved(None))
            }
            None => Ok(CasPush::Done),
        },
    }
}

/// [`push_if_at`] for a remote on this machine. libgit2's local transport moves a ref by force (under its lock, but
/// not on the old value), and its pack walk marks every tree of the remote's head; so the objects the batch adds are
/// copied into the remote as one pack, and the branch is then moved with a compare-and-swap in the remote repo
/// itself (git's ref lock plus a check of the old value).
fn push_if_at_local(
    repo: &Repository,
    cfg: &Config,
    dir: &std::path::Path,
    base: Option<Oid>,
    new: Oid,
) -> Result<CasPush, ExportError> {
    let branch_ref = branch_ref(&cfg.branch);
    let remote_repo = railyard_store::open(dir)?;
    let there = refs::target(&remote_repo, &branch_ref)?;
    if there != base {
        return Ok(CasPush::Moved(there));
    }
    // The batch was built on `base`, so this repo holds it: only what the batch adds is copied.
    crate::objects::send_objects(repo, &remote_repo, base, new)?;
    match refs::swap(&remote_repo, &branch_ref, base, new, "railyard: pushed") {
        Ok(true) => {
            drop(remote_repo);
            crate::packs::roll_up_remote(dir);
            Ok(CasPush::Done)
        }
        // Moved by another replica, or under its lock right now: either way, not moved by us.
        Ok(false) => Ok(CasPush::Moved(refs::target(&remote_repo, &branch_ref)?)),
        Err(e) if e.code() == git2::ErrorCode::Locked => Ok(CasPush::Moved(refs::target(&remote_repo, &branch_ref)?)),
        Err(e) => Err(e.into()),
    }
}

/// The remote branch's head as the remote lists it now (None: no branch there); nothing is fetched.
pub fn remote_head(repo: &Repository, cfg: &Config) -> Result<Option<Oid>, ExportError> {
    let branch_ref = branch_ref(&cfg.branch);
    if let Some(dir) = transport::local_path(&cfg.git_url) {
        return Ok(refs::target(&railyard_store::open(&dir)?, &branch_ref)?);
    }
    let listed = transport::list(repo, &cfg.git_url, &cfg.credentials)?;
    Ok(listed.iter().find(|(n, _)| *n == branch_ref).map(|(_, o)| *o))
}

/// The remote branch's head, fetched into `into` when its objects are not here yet (None: no branch there).
pub fn fetch_head(repo: &Repository, cfg: &Config, into: &str) -> Result<Option<Oid>, ExportError> {
    let branch_ref = branch_ref(&cfg.branch);
    let listed = transport::list(repo, &cfg.git_url, &cfg.credentials)?;
    let head = listed.iter().find(|(n, _)| *n == branch_ref).map(|(_, o)| *o);
    if let Some(h) = head {
        if !repo.odb()?.exists(h) {
            transport::fetch(repo, &cfg.git_url, &cfg.credentials, &[format!("+{branch_ref}:{into}")])?;
        }
    }
    // The remote's tags (other writers' too), so a tag name already taken is refused before a commit is made.
    let odb = repo.odb()?;
    for (name, commit) in remote_tags(&listed) {
        let refname = refs::tag_ref(&name);
        if odb.exists(commit) && repo.find_reference(&refname).is_err() {
            repo.reference(&refname, commit, false, "railyard: the remote's tag")?;
        }
    }
    Ok(head)
}
