//! Reconciling with the remote: learn the tags someone created there, and adopt a branch that moved outside
//! Railyard by replaying the local commits not yet pushed on top of it from their `Railyard-Request` trailers.

use git2::{Oid, Repository, Signature, Sort};
use railyard_manifest::commit::{self, FailedRequest};
use railyard_manifest::{Envelope, Stage};

use crate::push::remote_tags;
use crate::{transport, Config, ExportError};
use railyard_refs::{
    self as refs, branch_ref, exported_ref, failed_tag_ref, pending_tag_ref, remote_branch_ref, replayed_ref, tag_ref,
};

/// What a reconcile found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Tags created or moved on the remote by someone else, now known locally.
    pub learnt_tags: Vec<String>,
    pub adoption: Option<Adoption>,
}

/// The remote branch had commits the local branch did not: the local branch now builds on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The remote commit adopted.
    pub remote: Oid,
    /// Local commits replayed on top of it (0: the local branch only fast-forwarded).
    pub replayed: usize,
    /// Requests that no longer applied, recorded in the replayed commits' `Railyard-Failed-Request` trailers.
    pub failed_requests: Vec<FailedRequest>,
}

/// How often a replay is retried when the API's writer moves the branch in the middle of it.
const MAX_ATTEMPTS: usize = 16;

/// Fetches what is new on the remote (its branch and tags), learns tags, adopts a moved branch.
pub fn reconcile(repo: &Repository, cfg: &Config) -> Result<Reconciled, ExportError> {
    let heads = transport::list(repo, &cfg.git_url, &cfg.credentials)?;
    let remote_head = heads.iter().find(|(n, _)| *n == branch_ref(&cfg.branch)).map(|(_, oid)| *oid);
    let mut specs = Vec::new();
    if let Some(r) = remote_head {
        if repo.find_commit(r).is_err() {
            specs.push(format!("+{}:{}", branch_ref(&cfg.branch), remote_branch_ref(&cfg.branch)));
        }
    }
    // Tags: the remote's own ref (an annotated tag object or a commit), learnt unless one of ours is pending under
    // that name (pushing it decides then whether the remote's is the same).
    let peeled = remote_tags(&heads);
    let mut learn = Vec::new();
    for (name, oid) in &heads {
        let Some(tag) = name.strip_prefix("refs/tags/").filter(|t| !t.ends_with("^{}")) else { continue };
        if refs::target(repo, &pending_tag_ref(tag))?.is_some() || refs::target(repo, name)? == Some(*oid) {
            continue;
        }
        let commit_known = peeled.iter().find(|(t, _)| t == tag).is_some_and(|(_, c)| repo.find_commit(*c).is_ok());
        if repo.find_object(*oid, None).is_err() || !commit_known {
            specs.push(format!("+{name}:{name}"));
        }
        learn.push((tag.to_owned(), *oid));
    }
    if !specs.is_empty() {
        transport::fetch(repo, &cfg.git_url, &cfg.credentials, &specs)?;
    }
    let mut out = Reconciled::default();
    for (tag, oid) in learn {
        let name = tag_ref(&tag);
        let before = refs::target(repo, &name)?;
        repo.reference(&name, oid, true, "railyard-export: learnt from the remote")?;
        match before {
            Some(old) if old != oid => {
                tracing::warn!(tag = %tag, was = %old, now = %oid, "a tag was moved on the remote; following it")
            }
            _ => tracing::info!(tag = %tag, target = %oid, "learnt a tag created on the remote"),
        }
        out.learnt_tags.push(tag);
    }
    if let Some(r) = remote_head {
        out.adoption = adopt(repo, cfg, r)?;
    }
    Ok(out)
}

/// Brings the local branch and the exporter's progress in line with the remote branch at `remote`.
fn adopt(repo: &Repository, cfg: &Config, remote: Oid) -> Result<Option<Adoption>, ExportError> {
    let branch = branch_ref(&cfg.branch);
    for _ in 0..MAX_ATTEMPTS {
        let head = refs::target(repo, &branch)?;
        let exported = refs::target(repo, &exported_ref(&cfg.branch))?;
        let adoption = match head {
            // Remote behind or equal: nothing to adopt; the next push fast-forwards it. A remote rewound by hand is
            // fast-forwarded again: an acknowledged write is never dropped.
            Some(h) if h == remote || repo.graph_descendant_of(h, remote)? => None,
            // Remote ahead (or a new local repo): take its commits as they are.
            None => {
                if !refs::swap(repo, &branch, None, remote, "railyard-export: adopted the remote branch")? {
                    continue;
                }
                Some(Adoption { remote, replayed: 0, failed_requests: Vec::new() })
            }
            Some(h) if repo.graph_descendant_of(remote, h)? => {
                if !refs::swap(repo, &branch, Some(h), remote, "railyard-export: fast-forwarded to the remote")? {
                    continue;
                }
                Some(Adoption { remote, replayed: 0, failed_requests: Vec::new() })
            }
            // Diverged: the remote got commits from elsewhere while ours were not pushed yet.
            Some(h) => match replay(repo, &branch, h, remote, exported)? {
                Some(adoption) => Some(adoption),
                None => continue,
            },
        };
        if exported != Some(remote) {
            refs::swap(repo, &exported_ref(&cfg.branch), exported, remote, "railyard-export: seen on the remote")?;
        }
        if let Some(a) = &adoption {
            tracing::warn!(
                remote_commit = %a.remote, replayed = a.replayed, failed_requests = a.failed_requests.len(),
                "the remote branch moved outside Railyard; adopted it"
            );
            for f in &a.failed_requests {
                tracing::error!(reason = %f.reason, request = %f.trailer, "a request no longer applies on the adopted branch; recorded as failed");
            }
        }
        return Ok(adoption);
    }
    Err(ExportError::Busy)
}

/// Replays the local commits after `onto` (and after `exported`: what was pushed once is the remote's to keep or
/// drop) on top of `onto`, one commit for each, then moves the branch from `head`. None: the branch moved meanwhile.
fn replay(
    repo: &Repository,
    branch: &str,
    head: Oid,
    onto: Oid,
    exported: Option<Oid>,
) -> Result<Option<Adoption>, ExportError> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    walk.push(head)?;
    walk.hide(onto)?;
    if let Some(e) = exported.filter(|e| repo.find_commit(*e).is_ok()) {
        walk.hide(e)?;
    }
    let committer = Signature::now("Railyard", "railyard@localhost")?;
    let mut parent = repo.find_commit(onto)?;
    let mut adoption = Adoption { remote: onto, replayed: 0, failed_requests: Vec::new() };
    let mut replaced: Vec<(Oid, Oid)> = Vec::new();
    let mut failed_tags: Vec<(String, Oid, String)> = Vec::new();
    for oid in walk {
        let old = repo.find_commit(oid?)?;
        let message = old.message().unwrap_or_default();
        let mut stage = Stage::new(repo, Some(parent.tree()?));
        let mut applied: Vec<Envelope> = Vec::new();
        let mut failed: Vec<FailedRequest> = Vec::new();
        for raw in commit::request_trailers(message) {
            match serde_json::from_str::<Envelope>(raw) {
                Ok(mut envelope) => match railyard_manifest::apply(&mut stage, &mut envelope) {
                    // A flow run that no longer succeeds keeps its (failed) record; its tags are not created.
                    Ok(railyard_manifest::Outcome::FlowRun(run))
                        if run.status != railyard_manifest::request::RunStatus::Succeeded =>
                    {
                        for tag in envelope.request.git_tags() {
                            let reason =
                                format!("its flow run failed in a replay: {}", run.error.clone().unwrap_or_default());
                            failed_tags.push((tag.to_string(), old.id(), reason));
                        }
                        applied.push(envelope);
                    }
                    Ok(_) => applied.push(envelope),
                    Err(e) => {
                        for tag in envelope.request.git_tags() {
                            failed_tags.push((
                                tag.to_string(),
                                old.id(),
                                format!("its request failed in a replay: {e}"),
                            ));
                        }
                        failed.push(FailedRequest { reason: e.to_string(), trailer: raw.to_owned() });
                    }
                },
                Err(e) => {
                    failed.push(FailedRequest { reason: format!("unreadable request: {e}"), trailer: raw.to_owned() })
                }
            }
        }
        // The generated Argo CD files, as the writer regenerates them before each commit.
        railyard_manifest::finish(&mut stage).map_err(|e| git2::Error::from_str(&format!("Argo CD files: {e}")))?;
        let tree = repo.find_tree(stage.write_tree()?)?;
        let summary = message.lines().next().unwrap_or_default();
        let applied_refs: Vec<&Envelope> = applied.iter().collect();
        let msg = commit::replay_message(old.id(), summary, &applied_refs, &failed);
        let new = repo.commit(None, &old.author(), &committer, &msg, &tree, &[&parent])?;
        replaced.push((old.id(), new));
        adoption.replayed += 1;
        adoption.failed_requests.extend(failed);
        parent = repo.find_commit(new)?;
    }
    // The records a pending tag follows are written before the branch moves: a crash in between leaves records of
    // commits not on the branch, which are ignored and rewritten by the next replay.
    for (old, new) in &replaced {
        repo.reference(&replayed_ref(*old), *new, true, "railyard-export: replayed")?;
    }
    for (tag, old, reason) in &failed_tags {
        if let Some((_, new)) = replaced.iter().find(|(o, _)| o == old) {
            repo.reference(&failed_tag_ref(tag), *new, true, reason)?;
        }
    }
    if !refs::swap(repo, branch, Some(head), parent.id(), "railyard-export: replayed onto the adopted remote branch")? {
        return Ok(None);
    }
    Ok(Some(adoption))
}
