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
use std::sync::{Arc, Mutex};

use git2::{Oid, Repository};
use railyard_manifest::commit::request_trailers;
use railyard_manifest::history::{derive, CommitRecord, Entry};
use railyard_manifest::Identity;
use railyard_wire::{Author, HistoryEntry};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Bumped whenever the derivation changes: a file of another format is rebuilt.
const FORMAT: &str = "railyard-history 2";

/// A catch-up deriving more commits than this gives back the memory it used (see [`History::with_index`]).
const BIG_CATCH_UP: usize = 50;

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

/// "No string" among interned string ids.
const NONE: u32 = u32::MAX;

/// The strings entries repeat (names, teams, authors, actions, sources, messages), each kept once. A string is
/// never dropped (a branch rewrite leaves the few it alone used).
#[derive(Default)]
struct Strings {
    ids: HashMap<Arc<str>, u32>,
    all: Vec<Arc<str>>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.all.len() as u32;
        let shared: Arc<str> = Arc::from(s);
        self.all.push(shared.clone());
        self.ids.insert(shared, i);
        i
    }

    fn opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.id(s))
    }

    fn find(&self, s: Option<&str>) -> Option<u32> {
        match s {
            None => Some(NONE),
            Some(s) => self.ids.get(s).copied(),
        }
    }

    fn get(&self, i: u32) -> &str {
        self.all.get(i as usize).map_or("", |s| s)
    }

    fn get_opt(&self, i: u32) -> Option<String> {
        (i != NONE).then(|| self.get(i).to_owned())
    }

    fn identity(&self, (name, email): (u32, u32)) -> Identity {
        Identity { name: self.get(name).to_owned(), email: self.get(email).to_owned() }
    }
}

/// An [`Entry`] as the index keeps it: its strings interned, its request only by position (the JSON is read from
/// the commit's message when an entry is shown).
#[derive(Clone, Copy)]
struct Slim {
    action: u32,
    environment: u32,
    application: u32,
    team: u32,
    author: (u32, u32),
    source: u32,
    lock_id: u32,
    message: u32,
    request: u32,
    from_version: Option<u64>,
    to_version: Option<u64>,
    queued: bool,
}

/// A [`CommitRecord`] as the index keeps it (entry `n` is `entries[n]`).
struct Rec {
    commit: Oid,
    parent: Option<Oid>,
    origin: Option<Oid>,
    time: Box<str>,
    author: (u32, u32),
    entries: Box<[Slim]>,
}

impl Rec {
    /// The stable id of entry `n`: `<commit or origin>:<n>`.
    fn entry_id(&self, n: u32) -> String {
        format!("{}:{n}", self.origin.unwrap_or(self.commit))
    }
}

/// The index itself: records oldest first, and for each filter (environment and application, as interned ids) the
/// positions of its entries, ascending. It holds no request JSON: at 10,000 applications that is most of the
/// history's bytes, and git has it.
#[derive(Default)]
pub struct Index {
    strings: Strings,
    records: Vec<Rec>,
    pos: HashMap<Oid, usize>,
    origins: HashMap<Oid, usize>,
    lists: HashMap<(u32, u32), Vec<Pos>>,
}

impl Index {
    /// The newest commit indexed.
    pub fn tip(&self) -> Option<Oid> {
        self.records.last().map(|r| r.commit)
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

    pub fn commit_at(&self, position: usize) -> Oid {
        self.records[position].commit
    }

    /// The action of each entry of the record at `position`, by entry n.
    pub fn actions(&self, position: usize) -> impl Iterator<Item = (u32, &str)> + '_ {
        self.records[position].entries.iter().enumerate().map(|(n, e)| (n as u32, self.strings.get(e.action)))
    }

    /// The stable id of entry `n` of the record at `position`.
    pub fn entry_id(&self, position: usize, n: u32) -> String {
        self.records[position].entry_id(n)
    }

    fn key(&self, filter: &Filter) -> Option<(u32, u32)> {
        Some((self.strings.find(filter.environment.as_deref())?, self.strings.find(filter.application.as_deref())?))
    }

    /// True when some entry names this environment / application.
    pub fn knows(&self, filter: &Filter) -> bool {
        self.key(filter).is_some_and(|k| self.lists.contains_key(&k))
    }

    fn push(&mut self, record: CommitRecord) {
        let p = self.records.len();
        let s = &mut self.strings;
        let oid = |o: Option<&str>| o.and_then(|o| Oid::from_str(o).ok());
        let entries: Box<[Slim]> = record
            .entries
            .iter()
            .map(|e| Slim {
                action: s.id(&e.action),
                environment: s.opt(e.environment.as_deref()),
                application: s.opt(e.application.as_deref()),
                team: s.opt(e.team.as_deref()),
                author: (s.id(&e.author.name), s.id(&e.author.email)),
                source: s.opt(e.source.as_deref()),
                lock_id: s.opt(e.lock_id.as_deref()),
                message: s.opt(e.message.as_deref()),
                request: e.request.map_or(NONE, |i| i as u32),
                from_version: e.from_version,
                to_version: e.to_version,
                queued: e.queued,
            })
            .collect();
        let author = (s.id(&record.author.name), s.id(&record.author.email));
        for (n, e) in entries.iter().enumerate() {
            let at = (p as u32, n as u32);
            let (env, app) = (e.environment, e.application);
            let mut keys = vec![(NONE, NONE)];
            if env != NONE {
                keys.push((env, NONE));
            }
            if app != NONE {
                keys.push((NONE, app));
            }
            if env != NONE && app != NONE {
                keys.push((env, app));
            }
            for k in keys {
                self.lists.entry(k).or_default().push(at);
            }
        }
        let commit = oid(Some(&record.commit)).unwrap_or(Oid::ZERO_SHA1);
        let origin = oid(record.origin.as_deref());
        if let Some(o) = origin {
            self.origins.insert(o, p);
        }
        self.pos.insert(commit, p);
        self.records.push(Rec {
            commit,
            parent: oid(record.parent.as_deref()),
            origin,
            time: record.time.into_boxed_str(),
            author,
            entries,
        });
    }

    /// The record at `position` as [`derive`] made it, without its requests' JSON (what the index file keeps).
    fn record(&self, position: usize) -> CommitRecord {
        let r = &self.records[position];
        CommitRecord {
            commit: r.commit.to_string(),
            parent: r.parent.map(|p| p.to_string()),
            origin: r.origin.map(|o| o.to_string()),
            time: r.time.to_string(),
            author: self.strings.identity(r.author),
            requests: Vec::new(),
            entries: r.entries.iter().enumerate().map(|(n, e)| self.full_entry(n as u32, e)).collect(),
        }
    }

    /// Entry `n` of a record with its strings copied out of the index.
    fn full_entry(&self, n: u32, e: &Slim) -> Entry {
        let s = &self.strings;
        Entry {
            n,
            action: s.get(e.action).to_owned(),
            environment: s.get_opt(e.environment),
            application: s.get_opt(e.application),
            team: s.get_opt(e.team),
            from_version: e.from_version,
            to_version: e.to_version,
            queued: e.queued,
            source: s.get_opt(e.source),
            lock_id: s.get_opt(e.lock_id),
            message: s.get_opt(e.message),
            request: (e.request != NONE).then_some(e.request as usize),
            author: s.identity(e.author),
        }
    }

    /// Keeps the first `keep` records.
    fn truncate(&mut self, keep: usize) {
        if keep >= self.records.len() {
            return;
        }
        for r in &self.records[keep..] {
            if let Some(o) = r.origin {
                self.origins.remove(&o);
            }
            self.pos.remove(&r.commit);
        }
        self.records.truncate(keep);
        for list in self.lists.values_mut() {
            let cut = list.partition_point(|&(p, _)| (p as usize) < keep);
            list.truncate(cut);
        }
        self.lists.retain(|_, l| !l.is_empty());
    }

    /// Up to `limit` entries matching `filter`, newest first, older than `before`.
    fn page(&self, repo: &Repository, filter: &Filter, limit: usize, before: Option<Pos>) -> Page {
        let empty = Vec::new();
        let list = self.key(filter).and_then(|k| self.lists.get(&k)).unwrap_or(&empty);
        let end = match before {
            Some(cut) => list.partition_point(|&p| p < cut),
            None => list.len(),
        };
        let start = end.saturating_sub(limit);
        let mut requests = Requests::new(repo);
        let entries: Vec<HistoryEntry> =
            list[start..end].iter().rev().filter_map(|&(p, n)| self.entry(&mut requests, p as usize, n)).collect();
        let next_before = (start > 0).then(|| {
            let (p, n) = list[start];
            self.records[p as usize].entry_id(n)
        });
        Page { entries, next_before }
    }

    /// Entry `n` of the record at `position`, as the API shows it (the history's pages and the webhooks' events).
    pub fn entry(&self, requests: &mut Requests<'_>, position: usize, n: u32) -> Option<HistoryEntry> {
        let r = &self.records[position];
        let e = self.full_entry(n, r.entries.get(n as usize)?);
        let request = e.request.and_then(|i| requests.get(r.commit, i));
        Some(HistoryEntry {
            id: r.entry_id(n),
            commit: r.commit.to_string(),
            time: r.time.to_string(),
            author: Author { name: e.author.name, email: e.author.email },
            action: e.action,
            environment: e.environment,
            application: e.application,
            team: e.team,
            from_version: e.from_version,
            to_version: e.to_version,
            queued: e.queued,
            source: e.source,
            lock_id: e.lock_id,
            message: e.message,
            request,
        })
    }
}

/// The `Railyard-Request` trailers of commits, read from their messages as entries are shown (the last commit's
/// kept: a page's entries come a commit at a time).
pub struct Requests<'r> {
    repo: &'r Repository,
    /// The last commit read, and its message.
    last: Option<(Oid, String)>,
}

impl<'r> Requests<'r> {
    pub fn new(repo: &'r Repository) -> Self {
        Self { repo, last: None }
    }

    /// Trailer `i` of `commit`, parsed (None: the commit cannot be read, or its trailer is not JSON).
    fn get(&mut self, commit: Oid, i: usize) -> Option<Value> {
        if self.last.as_ref().is_none_or(|(c, _)| *c != commit) {
            let c = self.repo.find_commit(commit).ok()?;
            self.last = Some((commit, String::from_utf8_lossy(c.message_bytes()).into_owned()));
        }
        let raw = request_trailers(&self.last.as_ref()?.1).nth(i)?;
        serde_json::from_str(raw).ok()
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
            None => railyard_store::open(&self.repo_dir)?,
        };
        let result = self.refresh(inner, &repo).map(|derived| (derived, f(&inner.index, &repo)));
        if matches!(result, Ok((derived, _)) if derived > BIG_CATCH_UP) {
            // Deriving read (and freed) every tree those commits changed, and left the handle's object cache full
            // of trees nobody reads again: the next call opens a fresh handle.
            drop(repo);
            railyard_export::memory::give_back();
        } else {
            inner.repo = Some(repo);
        }
        result.map(|(_, out)| out)
    }

    /// Brings the index to the branch head; how many commits it derived.
    fn refresh(&self, inner: &mut Inner, repo: &Repository) -> Result<usize, HistoryError> {
        if !inner.loaded {
            let (index, written, rewrite) = load(&index_file(&self.repo_dir));
            inner.index = index;
            inner.written = written;
            inner.rewrite = rewrite;
            inner.loaded = true;
        }
        let head = railyard_refs::target(repo, &self.branch_ref)?;
        let mut derived = 0;
        if head != inner.index.tip() {
            let kept = catch_up(repo, &mut inner.index, head)?;
            derived = inner.index.len() - kept;
            if kept < inner.written {
                inner.rewrite = true;
            }
            if let Err(e) = persist(&self.repo_dir, inner) {
                // The index answers from memory; the file is only a head start for the next process.
                tracing::warn!(error = %e, "could not write the history index file; it will be rebuilt");
            }
        }
        Ok(derived)
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
            Ok(index.page(repo, filter, limit, cut))
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
        for p in 0..inner.index.len() {
            out.write_all(record_line(&inner.index.record(p)).as_bytes())?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &file)?;
    } else {
        let mut out = std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(&file)?);
        for p in inner.written..inner.index.len() {
            out.write_all(record_line(&inner.index.record(p)).as_bytes())?;
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

    fn record(commit: &str, parent: Option<&str>, entries: Vec<Entry>) -> CommitRecord {
        CommitRecord {
            commit: commit.into(),
            parent: parent.map(Into::into),
            origin: None,
            time: "2026-12-04T10:00:00Z".into(),
            author: Identity { name: "Ann".into(), email: "ann@example.com".into() },
            requests: vec![r#"{"kind":"deploy"}"#.into()],
            entries,
        }
    }

    fn entry(n: u32, action: &str, env: Option<&str>, app: Option<&str>) -> Entry {
        Entry {
            n,
            action: action.into(),
            environment: env.map(Into::into),
            application: app.map(Into::into),
            team: Some("team-a".into()),
            from_version: Some(1),
            to_version: Some(2),
            queued: n == 1,
            source: Some("abc".into()),
            lock_id: None,
            message: Some("why".into()),
            request: Some(0),
            author: Identity { name: "Bob".into(), email: "bob@example.com".into() },
        }
    }

    #[test]
    fn the_index_gives_back_every_field_it_was_given_but_the_request_json() {
        let (a, b) = ("1".repeat(40), "2".repeat(40));
        let first =
            record(&a, None, vec![entry(0, "deploy", Some("dev"), Some("web")), entry(1, "lock", Some("dev"), None)]);
        let second = record(&b, Some(&a), vec![entry(0, "release", None, Some("web"))]);
        let mut index = Index::default();
        index.push(first.clone());
        index.push(second.clone());
        for (p, original) in [first, second].into_iter().enumerate() {
            assert_eq!(index.record(p), CommitRecord { requests: Vec::new(), ..original });
        }
        let f = |env: Option<&str>, app: Option<&str>| Filter {
            environment: env.map(Into::into),
            application: app.map(Into::into),
        };
        assert!(index.knows(&f(Some("dev"), Some("web"))));
        assert!(index.knows(&f(None, Some("web"))));
        assert!(!index.knows(&f(Some("dev"), Some("api"))), "no entry names api");
        assert!(!index.knows(&f(Some("prod"), None)));
        assert_eq!(index.lists[&index.key(&f(None, Some("web"))).unwrap()], vec![(0, 0), (1, 0)]);
        index.truncate(1);
        assert_eq!(index.tip(), Some(Oid::from_str(&a).unwrap()));
        assert_eq!(index.lists[&index.key(&f(None, Some("web"))).unwrap()], vec![(0, 0)]);
        assert_eq!(index.position(Oid::from_str(&b).unwrap()), None);
    }

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
