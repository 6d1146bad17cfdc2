//! The overview kept per head commit: `GET /api/overview` and the web UI's pages read one snapshot of every
//! environment until the branch moves, so a read costs a ref lookup while nothing changes (and `304 Not Modified`
//! answers a client that already holds it).

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use git2::{Oid, Repository};
use railyard_manifest::{state, EnvironmentOverview, Stage};

use crate::error::ApiResult;

/// Every environment with what it runs, as of `head`.
pub struct Snapshot {
    /// The branch head it was read from (None: the branch has no commit yet).
    pub head: Option<Oid>,
    pub environments: Vec<EnvironmentOverview>,
    /// `{"environments": …}`, serialised on first use.
    json: OnceLock<Bytes>,
}

impl Snapshot {
    /// The answer of `GET /api/overview`.
    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                // Straight from the snapshot: `json!` would first copy it into a `Value` tree (80 MiB at 10,000
                // apps × 10 environments, and a second of the first answer).
                #[derive(serde::Serialize)]
                struct Body<'a> {
                    environments: &'a [EnvironmentOverview],
                }
                let mut json = serde_json::to_vec(&Body { environments: &self.environments }).unwrap_or_default();
                // The buffer grew by doubling: up to twice the answer (18 MiB at 10,000 apps × 10 environments).
                json.shrink_to_fit();
                Bytes::from(json)
            })
            .clone()
    }

    /// The entity tag of the snapshot: the head commit.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.head.map(|h| h.to_string()).unwrap_or_else(|| "empty".into()))
    }
}

/// The last snapshot read. Readers that miss wait for one read instead of each reading the whole tree.
#[derive(Default)]
pub struct Cache {
    last: Mutex<Option<Arc<Snapshot>>>,
}

impl Cache {
    /// The snapshot of `branch_ref`'s current head in `repo`: the kept one if the head has not moved. The handle is
    /// dropped before a full read gives its memory back (its object cache and pack caches are freed with it).
    pub fn get(&self, repo: Repository, branch_ref: &str) -> ApiResult<Arc<Snapshot>> {
        let (snapshot, full_read) = self.read(&repo, branch_ref)?;
        drop(repo);
        if full_read {
            // Reading every environment read (and freed) every application's directory in each.
            railyard_export::memory::give_back();
        }
        Ok(snapshot)
    }

    /// The snapshot, and whether every environment was read in full for it.
    fn read(&self, repo: &Repository, branch_ref: &str) -> ApiResult<(Arc<Snapshot>, bool)> {
        let head = railyard_refs::target(repo, branch_ref)?;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = last.as_ref().filter(|s| s.head == head) {
            return Ok((s.clone(), false));
        }
        let tree = head.map(|c| repo.find_commit(c).and_then(|c| c.tree())).transpose()?;
        let updated = match (last.as_ref(), &tree) {
            (Some(before), Some(new)) => Self::update(repo, before, new)?,
            _ => None,
        };
        let (environments, full_read) = match updated {
            Some(envs) => (envs, false),
            None => (state::overview(&Stage::new(repo, tree))?, true),
        };
        let snapshot = Arc::new(Snapshot { head, environments, json: OnceLock::new() });
        *last = Some(snapshot.clone());
        Ok((snapshot, full_read))
    }

    /// The overview of `new` from the snapshot `before`, reading only what the change between them touched (None:
    /// a change to read in full: a new or removed environment, or a very large one).
    fn update(
        repo: &Repository,
        before: &Snapshot,
        new: &git2::Tree<'_>,
    ) -> ApiResult<Option<Vec<EnvironmentOverview>>> {
        let Some(old) = before.head.map(|h| repo.find_commit(h).and_then(|c| c.tree())).transpose()? else {
            return Ok(None);
        };
        let Some(changed) = state::changed_paths(repo, &old, new, MAX_UPDATE_PATHS)? else {
            return Ok(None);
        };
        let stage = Stage::new(repo, Some(new.clone()));
        Ok(state::overview_update(&stage, &before.environments, &changed)?)
    }
}

/// A change touching more paths than this is read in full: the update would read as much.
const MAX_UPDATE_PATHS: usize = 50_000;
