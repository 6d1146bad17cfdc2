//! The deployment history: the records of the branch's first-parent commits ([`railyard_manifest::history`]),
//! indexed by environment and application, kept in memory and in a file beside the repo
//! (`<repo>/railyard/history/index.jsonl`) so a restart does not derive 100,000 commits again.
//!
//! The file is never the only copy of anything: every line is derived from a commit and checked on load (a
//! checksum per line, each line's parent the line before it); the first bad line and everything after it are
//! dropped, and whatever the file lacks is derived again from the commits. Before every answer the index is brought
//! to the branch head: extended when behind; when the branch was rewritten (the exporter replayed local commits
//! onto an adopted remote branch), cut back to the newest commit still on the branch, then extended.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{Oid, Repository};
use railyard_manifest::history::{derive, CommitRecord, Entry};
use railyard_wire::{Author, HistoryEntry};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Bumped whenever the derivation changes: a file of another format is rebuilt.
const FORMAT: &str = "railyard-history 1";

/// Where the index lives, beside the repo (not in any tree Argo CD reads).
pub fn index_file(repo_dir: &Path) -> PathBuf {
    repo_dir.join("railyard").join("history").join("index.jsonl")
}

/// Which entries a query wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Filter {
    pub environment: Option<String>,
    pub application: Option<String>,
}

/// Where a page starts: entries older than this commit, or than this entry (`<commit>:<n>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    Commit(Oid),
    Entry(Oid, u32),
}

impl Before {
    /// Parses `<commit>` or `<commit>:<n>` (full 40-hex ids).
    pub fn parse(raw: &str) -> Option<Self> {
        let (c, n) = match raw.split_once(':') {
            Some((c, n)) => (c, Some(n.parse::<u32>().ok()?)),
            None => (raw, None),
        };
        if c.len() != 40 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let oid = Oid::from_str(c).ok()?;
        Some(n.map_or(Before::Commit(oid), |n| Before::Entry(oid, n)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("commit {0} is not in the branch's history")]
    UnknownCommit(String),
    #[error("no {what} {name}")]
    NotFound { what: &'static str, name: String },
}

/// A page of entries, newest first.
pub struct Page {
    pub entries: Vec<HistoryEntry>,
    /// The `before` of the next page (None: this is the last page).
    pub next_before: Option<String>,
}

/// Entry positions: (commit position, entry n).
type Pos = (u32, u32);

/// The index itself: records oldest first, and for each filter the positions of its entries, ascending.
#[derive(Default)]
pub struct Index {
    records: Vec<CommitRecord>,
    ids: Vec<Oid>,
    pos: HashMap<Oid, usize>,
    origins: HashMap<Oid, usize>,
    lists: HashMap<Filter, Vec<Pos>>,
}

impl Index {
    /// The newest commit indexed.
    pub fn tip(&self) -> Option<Oid> {
        self.ids.last().copied()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The position of a commit on the branch (also found by the local commit a replayed commit stands for).
    pub fn position(&self, commit: Oid) -> Option<usize> {
        self.pos.get(&commit).or_else(|| self.origins.get(&commit)).copied()
    }

    pub fn record(&self, position: usize) -> &CommitRecord {
        &self.records[position]
    }

    pub fn commit_at(&self, position: usize) -> Oid {
        self.ids[position]
    }

    /// True when some entry names this environment / application.
    pub fn knows(&self, filter: &Filter) -> bool {
        self.lists.contains_key(filter)
    }

    fn push(&mut self, record: CommitRecord) {
        let p = self.records.len();
        let id = Oid::from_str(&record.commit).unwrap_or(Oid::ZERO_SHA1);
        for e in &record.entries {
            let at = (p as u32, e.n);
            let (env, app) = (e.environment.clone(), e.application.clone());
            let mut keys = vec![Filter::default()];
            if env.is_some() {
                keys.push(Filter { environment: env.clone(), application: None });
            }
            if app.is_some() {
                keys.push(Filter { environment: None, application: app.clone() });
            }
            if env.is_some() && app.is_some() {
                keys.push(Filter { environment: env, application: app });
            }
            for k in keys {
                self.lists.entry(k).or_default().push(at);
            }
        }
        if let Some(o) = record.origin.as_deref().and_then(|o| Oid::from_str(o).ok()) {
            self.origins.insert(o, p);
        }
        self.pos.insert(id, p);
        self.ids.push(id);
        self.records.push(record);
    }

    /// Keeps the first `keep` records.
    fn truncate(&mut self, keep: usize) {
        if keep >= self.records.len() {
            return;
        }
        for r in &self.records[keep..] {
            if let Some(o) = r.origin.as_deref().and_then(|o| Oid::from_str(o).ok()) {
                self.origins.remove(&o);
            }
        }
        for id in &self.ids[keep..] {
            self.pos.remove(id);
        }
        self.records.truncate(keep);
        self.ids.truncate(keep);
        for list in self.lists.values_mut() {
            let cut = list.partition_point(|&(p, _)| (p as usize) < keep);
            list.truncate(cut);
        }
        self.lists.retain(|_, l| !l.is_empty());
    }

    /// Up to `limit` entries matching `filter`, newest first, older than `before`.
    fn page(&self, filter: &Filter, limit: usize, before: Option<Pos>) -> Page {
        let empty = Vec::new();
        let list = self.lists.get(filter).unwrap_or(&empty);
        let end = match before {
            Some(cut) => list.partition_point(|&p| p < cut),
            None => list.len(),
        };
        let start = end.saturating_sub(limit);
        let entries: Vec<HistoryEntry> =
            list[start..end].iter().rev().filter_map(|&(p, n)| self.entry(p as usize, n)).collect();
        let next_before = (start > 0).then(|| {
            let (p, n) = list[start];
            self.records[p as usize].entry_id(n)
        });
        Page { entries, next_before }
    }

    /// Entry `n` of the record at `position`, as the API shows it.
    fn entry(&self, position: usize, n: u32) -> Option<HistoryEntry> {
        let r = &self.records[position];
        r.entries.get(n as usize).map(|e| entry(r, e))
    }
}

/// One entry as the API shows it (the history's pages and the webhooks' events).
pub fn entry(r: &CommitRecord, e: &Entry) -> HistoryEntry {
    let request = e.request.and_then(|i| r.requests.get(i)).and_then(|t| serde_json::from_str::<Value>(t).ok());
    HistoryEntry {
        id: r.entry_id(e.n),
        commit: r.commit.clone(),
        time: r.time.clone(),
        author: Author { name: e.author.name.clone(), email: e.author.email.clone() },
        action: e.action.clone(),
        environment: e.environment.clone(),
        application: e.application.clone(),
        team: e.team.clone(),
        from_version: e.from_version,
        to_version: e.to_version,
        queued: e.queued,
        source: e.source.clone(),
        lock_id: e.lock_id.clone(),
        message: e.message.clone(),
        request,
    }
}

struct Inner {
    repo: Option<Repository>,
    index: Index,
    /// Lines the file holds (records); beyond that, records are appended.
    written: usize,
    /// The file must be written anew (it was cut, or did not parse).
    rewrite: bool,
    loaded: bool,
}

/// The history of one branch, shared by the routes and the webhooks.
pub struct History {
    repo_dir: PathBuf,
    branch_ref: String,
    inner: Mutex<Inner>,
}

impl History {
    pub fn new(repo_dir: &Path, branch: &str) -> Self {
        Self {
            repo_dir: repo_dir.to_owned(),
            branch_ref: railyard_refs::branch_ref(branch),
            inner: Mutex::new(Inner { repo: None, index: Index::default(), written: 0, rewrite: false, loaded: false }),
        }
    }

    /// Brings the index to the branch head, then runs `f` on it with the repo (blocking).
    pub fn with_index<T>(&self, f: impl FnOnce(&Index, &Repository) -> T) -> Result<T, HistoryError> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *guard;
        let repo = match inner.repo.take() {
            Some(r) => r,
            None => Repository::open_bare(&self.repo_dir)?,
        };
        let result = self.refresh(inner, &repo).map(|()| f(&inner.index, &repo));
        inner.repo = Some(repo);
        result
    }

    fn refresh(&self, inner: &mut Inner, repo: &Repository) -> Result<(), HistoryError> {
        if !inner.loaded {
            let (index, written, rewrite) = load(&index_file(&self.repo_dir));
            inner.index = index;
            inner.written = written;
            inner.rewrite = rewrite;
            inner.loaded = true;
        }
        let head = railyard_refs::target(repo, &self.branch_ref)?;
        if head != inner.index.tip() {
            let kept = catch_up(repo, &mut inner.index, head)?;
            if kept < inner.written {
                inner.rewrite = true;
            }
            if let Err(e) = persist(&self.repo_dir, inner) {
                // The index answers from memory; the file is only a head start for the next process.
                tracing::warn!(error = %e, "could not write the history index file; it will be rebuilt");
            }
        }
        Ok(())
    }

    /// A page of history (blocking). Unknown environment or application (neither in the current state nor in any
    /// entry): NotFound; a `before` commit not on the branch: UnknownCommit.
    pub fn page(&self, filter: &Filter, limit: usize, before: Option<Before>) -> Result<Page, HistoryError> {
        self.with_index(|index, repo| {
            check_known(index, repo, &self.branch_ref, filter)?;
            let cut = match before {
                None => None,
                Some(Before::Commit(c)) => {
                    Some((index.position(c).ok_or_else(|| HistoryError::UnknownCommit(c.to_string()))? as u32, 0))
                }
                Some(Before::Entry(c, n)) => {
                    Some((index.position(c).ok_or_else(|| HistoryError::UnknownCommit(c.to_string()))? as u32, n))
                }
            };
            Ok(index.page(filter, limit, cut))
        })?
    }
}

fn check_known(index: &Index, repo: &Repository, branch_ref: &str, filter: &Filter) -> Result<(), HistoryError> {
    // Names with entries are known without reading the tree.
    if filter.environment.is_none() || filter.application.is_none() || index.knows(filter) {
        let single = |f: Filter| f == Filter::default() || index.knows(&f);
        let env_known = single(Filter { environment: filter.environment.clone(), application: None });
        let app_known = single(Filter { environment: None, application: filter.application.clone() });
        if env_known && app_known {
            return Ok(());
        }
    }
    let tree = match railyard_refs::target(repo, branch_ref)? {
        Some(h) => Some(repo.find_commit(h)?.tree()?),
        None => None,
    };
    let exists = |path: String| tree.as_ref().is_some_and(|t| t.get_path(Path::new(&path)).is_ok());
    if let Some(env) = &filter.environment {
        let f = Filter { environment: Some(env.clone()), application: None };
        if !index.knows(&f) && !exists(format!("{}/{env}", railyard_manifest::layout::ENVIRONMENTS)) {
            return Err(HistoryError::NotFound { what: "environment", name: env.clone() });
        }
    }
    if let Some(app) = &filter.application {
        let f = Filter { environment: None, application: Some(app.clone()) };
        if !index.knows(&f) && !exists(format!("{}/{app}", railyard_manifest::layout::APPLICATIONS)) {
            return Err(HistoryError::NotFound { what: "application", name: app.clone() });
        }
    }
    Ok(())
}

/// Extends (or cuts back, then extends) `index` to `head`, walking first parents from the head to the newest
/// commit the index has.
fn catch_up(repo: &Repository, index: &mut Index, head: Option<Oid>) -> Result<usize, git2::Error> {
    let mut new = Vec::new();
    let mut cur = head;
    let keep = loop {
        match cur {
            None => break 0,
            Some(c) => {
                if let Some(&p) = index.pos.get(&c) {
                    break p + 1;
                }
                new.push(c);
                cur = repo.find_commit(c)?.parent_ids().next();
            }
        }
    };
    if keep < index.len() {
        tracing::info!(kept = keep, dropped = index.len() - keep, "the branch was rewritten; history index cut back");
    }
    index.truncate(keep);
    let many = new.len() > 1000;
    if many {
        tracing::info!(commits = new.len(), "indexing the history");
    }
    for c in new.into_iter().rev() {
        index.push(derive(repo, &repo.find_commit(c)?)?);
    }
    if many {
        tracing::info!(commits = index.len(), "history indexed");
    }
    Ok(keep)
}

fn checksum(line: &str) -> String {
    let d = Sha256::digest(line.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reads the index file: the records up to the first line that is torn, altered or out of chain; the number of
/// records the file holds; whether it must be rewritten.
fn load(file: &Path) -> (Index, usize, bool) {
    let mut index = Index::default();
    let Ok(f) = std::fs::File::open(file) else { return (index, 0, true) };
    let mut lines = std::io::BufReader::new(f).lines();
    if !matches!(lines.next(), Some(Ok(h)) if h == FORMAT) {
        tracing::info!(file = %file.display(), "history index missing or of another format; rebuilding");
        return (index, 0, true);
    }
    let mut bad = false;
    for line in lines {
        let Ok(line) = line else {
            bad = true;
            break;
        };
        let record = line
            .split_once(' ')
            .filter(|(sum, json)| *sum == checksum(json))
            .and_then(|(_, json)| serde_json::from_str::<CommitRecord>(json).ok());
        let chained = |r: &CommitRecord| r.parent.as_deref().and_then(|p| Oid::from_str(p).ok()) == index.tip();
        match record {
            Some(r) if chained(&r) => index.push(r),
            _ => {
                bad = true;
                break;
            }
        }
    }
    if bad {
        tracing::warn!(file = %file.display(), kept = index.len(), "history index damaged; the rest is derived again");
    }
    let n = index.len();
    (index, n, bad)
}

fn record_line(r: &CommitRecord) -> String {
    let json = serde_json::to_string(r).unwrap_or_default();
    format!("{} {json}\n", checksum(&json))
}

/// Appends the records the file lacks, or writes it anew (temp file, then rename) when it was cut.
fn persist(repo_dir: &Path, inner: &mut Inner) -> std::io::Result<()> {
    let file = index_file(repo_dir);
    let dir = file.parent().unwrap_or(repo_dir);
    std::fs::create_dir_all(dir)?;
    if inner.rewrite || !file.exists() {
        let tmp = dir.join("index.jsonl.tmp");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        writeln!(out, "{FORMAT}")?;
        for r in &inner.index.records {
            out.write_all(record_line(r).as_bytes())?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &file)?;
    } else {
        let mut out = std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(&file)?);
        for r in &inner.index.records[inner.written..] {
            out.write_all(record_line(r).as_bytes())?;
        }
        out.flush()?;
    }
    inner.written = inner.index.len();
    inner.rewrite = false;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_takes_a_commit_or_an_entry_id() {
        let c = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(Before::parse(c), Some(Before::Commit(Oid::from_str(c).unwrap())));
        assert_eq!(Before::parse(&format!("{c}:3")), Some(Before::Entry(Oid::from_str(c).unwrap(), 3)));
        for bad in ["", "abc", "0123456789abcdef0123456789abcdef0123456z", &format!("{c}:x"), &format!("{c}:")] {
            assert_eq!(Before::parse(bad), None, "{bad}");
        }
    }
}
