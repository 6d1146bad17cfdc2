//! Pushing: the branch first, then each pending tag whose commit is on the remote.

use git2::{Oid, Repository};

use crate::refs::{self, branch_ref, exported_ref, failed_tag_ref, pending_tag_ref, replayed_ref};
use crate::{transport, Config, ExportError};

/// Pushes the branch if the remote is behind what was last exported; returns the local head (None: no branch yet)
/// and whether a push happened.
pub fn push_branch(repo: &Repository, cfg: &Config) -> Result<(Option<Oid>, bool), ExportError> {
    let Some(local) = refs::target(repo, &branch_ref(&cfg.branch))? else { return Ok((None, false)) };
    let exported = refs::target(repo, &exported_ref(&cfg.branch))?;
    if exported == Some(local) {
        return Ok((Some(local), false));
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
    // git refuses to move an existing tag on the client side, and libgit2 does not: look at the remote's tags first.
    let existing = remote_tags(&transport::list(repo, &cfg.git_url, &cfg.credentials)?);
    let mut refused: Vec<(String, Oid, String)> = Vec::new();
    let mut to_push = Vec::new();
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
        .map(|(name, _, _)| format!("{}:refs/tags/{name}", pending_tag_ref(name)))
        .collect();
    let rejected =
        if specs.is_empty() { Vec::new() } else { transport::push(repo, &cfg.git_url, &cfg.credentials, &specs)? };
    for (name, commit, _) in to_push {
        match rejected.iter().find(|(r, _)| *r == format!("refs/tags/{name}")) {
            // A held (or stale) lock on the remote is not a refusal of the name: the round fails and is retried.
            Some((refname, reason)) if reason.contains("lock") => {
                return Err(ExportError::Rejected { refname: refname.clone(), reason: reason.clone() })
            }
            Some((_, reason)) => refused.push((name, commit, reason.clone())),
            None => {
                repo.reference(&format!("refs/tags/{name}"), commit, true, "railyard-export: tag pushed")?;
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
