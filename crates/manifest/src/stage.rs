//! A staged edit of a git tree: reads see the base tree through layers of pending changes; `write_tree`
//! builds the new tree touching only the directories on changed paths. No work tree, no checkout, no index.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use git2::{FileMode, ObjectType, Oid, Repository, Tree};

use crate::memory::MemoryObjects;

/// One pending change at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// A blob at this path (replacing whatever was there).
    File(Oid),
    /// Nothing at this path: a file removed.
    Removed,
    /// The directory at this path and everything under it removed (later writes below it may re-add files).
    RemovedDir,
}

type Layer = BTreeMap<String, Change>;

/// A kind of directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
}

/// The base tree plus layers of changes. The bottom layer is the batch; `begin` opens a layer for one
/// request that `keep` folds into the layer below or `discard` drops, so a failing request leaves no trace.
pub struct Stage<'r> {
    repo: &'r Repository,
    base: Option<Tree<'r>>,
    layers: Vec<Layer>,
    /// Big directories of the base tree already looked up (those of at least [`KEPT_DIR_ENTRIES`] entries), and
    /// directories found missing. The big ones (`applications/`, an environment's `applications/`) are on almost
    /// every path, and libgit2's object cache may have dropped them; the small ones (an application's directory in
    /// an environment) are read a few times each and stay in that cache, which is bounded: kept here, the 20,000 an
    /// environment-wide train reads would hold 60 MiB until the batch ends (10,000 apps).
    subtrees: RefCell<HashMap<String, Option<Tree<'r>>>>,
    /// Small contents already written in this stage (versions, authors, timestamps repeat across a train):
    /// libgit2 would hash them again and touch the existing object file each time.
    small_blobs: HashMap<Vec<u8>, Oid>,
    /// Marks the transformers set (e.g. "this environment's Argo CD file needs regenerating"), one set per layer
    /// like the changes, so the marks of a discarded request go with it.
    marks: Vec<BTreeSet<String>>,
    /// Where new objects go when not through the object database (the writer's mempack).
    memory: Option<MemoryObjects<'r>>,
    /// The trees and blobs the trees written so far name where the base named something else (see
    /// [`Stage::take_added`]).
    added: Vec<Oid>,
    /// Big directories of the tree an earlier stage wrote or read, by path ([`Stage::keep_big_dirs`]): one is used
    /// where the base names the same id.
    carried: BigDirs<'r>,
    /// The big directories the last [`Stage::write_tree`] wrote (at least [`KEPT_DIR_ENTRIES`] entries), by path.
    written_big: Vec<(String, Oid)>,
}

/// Big directories of a tree, parsed, by path (see [`Stage::keep_big_dirs`]).
pub type BigDirs<'r> = HashMap<String, Tree<'r>>;

/// Directories of the base with at least this many entries are kept by the stage once looked up (see
/// `Stage::subtrees`).
const KEPT_DIR_ENTRIES: usize = 64;

fn parent_dirs(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

impl<'r> Stage<'r> {
    /// A stage over `base` (None: the empty tree of a new repo).
    pub fn new(repo: &'r Repository, base: Option<Tree<'r>>) -> Self {
        Self {
            repo,
            base,
            layers: vec![Layer::new()],
            subtrees: RefCell::new(HashMap::new()),
            small_blobs: HashMap::new(),
            marks: vec![BTreeSet::new()],
            memory: None,
            added: Vec::new(),
            carried: HashMap::new(),
            written_big: Vec::new(),
        }
    }

    /// A stage over `base` that reads the big directories of `carried` (what [`Stage::keep_big_dirs`] of the stage
    /// before returned) where `base` names them, instead of reading them from the object store again.
    pub fn with_big_dirs(repo: &'r Repository, base: Option<Tree<'r>>, carried: BigDirs<'r>) -> Self {
        Self { carried, ..Self::new(repo, base) }
    }

    /// The big directories (at least [`KEPT_DIR_ENTRIES`] entries) of the last tree written that this stage read or
    /// wrote, parsed, for the next stage over that tree ([`Stage::with_big_dirs`]). The writer's next batch reads
    /// them again (at 10,000 applications, `applications/` and an environment's `applications/` are 400 KiB trees that
    /// every deploy reads): without them it would read back each from its pack (inflating it) and parse it again,
    /// or find libgit2's object cache had dropped it. Held between batches, they are what one batch holds anyway.
    /// The written ones are read here, from where the stage wrote them (the writer's memory, before it is emptied).
    pub fn keep_big_dirs(&self) -> Result<BigDirs<'r>, git2::Error> {
        let mut kept = BigDirs::new();
        for (dir, id) in &self.written_big {
            let tree = match self.subtrees.borrow().get(dir.as_str()) {
                Some(Some(t)) if t.id() == *id => t.clone(),
                _ => self.repo.find_tree(*id)?,
            };
            kept.insert(dir.clone(), tree);
        }
        for (dir, tree) in self.subtrees.borrow().iter() {
            let Some(tree) = tree else { continue };
            if tree.len() >= KEPT_DIR_ENTRIES && !kept.contains_key(dir) && !self.changed_under(dir) {
                kept.insert(dir.clone(), tree.clone());
            }
        }
        Ok(kept)
    }

    /// Whether a change lies below `dir` (or removes it), in any layer.
    fn changed_under(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.layers.iter().any(|layer| {
            layer.range(prefix.clone()..).next().is_some_and(|(p, _)| p.starts_with(&prefix))
                || layer.get(dir).is_some()
                || parent_dirs(dir).any(|d| layer.get(d) == Some(&Change::RemovedDir))
        })
    }

    /// New blobs and trees go straight into `memory` (the writer's mempack, which its repo handle reads first).
    pub fn write_objects_to(&mut self, memory: MemoryObjects<'r>) {
        self.memory = Some(memory);
    }

    /// Writes an object: into the memory given to [`Stage::write_objects_to`], else through the object database.
    pub fn put_object(&self, kind: ObjectType, data: &[u8]) -> Result<Oid, git2::Error> {
        match &self.memory {
            Some(m) => m.write(kind, data),
            None => self.repo.odb()?.write(kind, data),
        }
    }

    /// The id of the base tree (None: none).
    pub fn base_id(&self) -> Option<Oid> {
        self.base.as_ref().map(Tree::id)
    }

    pub fn repo(&self) -> &'r Repository {
        self.repo
    }

    /// Opens a layer for one request.
    pub fn begin(&mut self) {
        self.layers.push(Layer::new());
        self.marks.push(BTreeSet::new());
    }

    /// Folds the top layer into the one below.
    pub fn keep(&mut self) {
        if self.layers.len() < 2 {
            return;
        }
        if let Some(marks) = self.marks.pop() {
            self.marks.last_mut().expect("one mark set per layer").extend(marks);
        }
        let top = self.layers.pop().unwrap_or_default();
        let below = self.layers.last_mut().expect("the bottom layer is never popped");
        // Directory removals first (shortest first), then files: within `top`, files under a removed directory
        // were written after its removal (an earlier write would have been dropped by `remove_dir`).
        let mut dirs: Vec<&String> = top.iter().filter(|(_, c)| **c == Change::RemovedDir).map(|(p, _)| p).collect();
        dirs.sort_by_key(|p| p.len());
        for dir in dirs {
            remove_under(below, dir);
            below.insert(dir.clone(), Change::RemovedDir);
        }
        for (path, change) in top {
            if change != Change::RemovedDir {
                below.insert(path, change);
            }
        }
    }

    /// Drops the top layer.
    pub fn discard(&mut self) {
        if self.layers.len() > 1 {
            self.layers.pop();
            self.marks.pop();
        }
    }

    /// Sets mark `key` in the top layer (kept or dropped with it).
    pub fn mark(&mut self, key: String) {
        self.marks.last_mut().expect("one mark set per layer").insert(key);
    }

    /// Takes the marks that start with `prefix` from every layer (without the prefix), sorted.
    pub fn take_marks(&mut self, prefix: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for layer in &mut self.marks {
            layer.retain(|m| match m.strip_prefix(prefix) {
                Some(rest) => {
                    out.insert(rest.to_owned());
                    false
                }
                None => true,
            });
        }
        out
    }

    /// True when no layer holds a change.
    pub fn is_unchanged(&self) -> bool {
        self.layers.iter().all(BTreeMap::is_empty)
    }

    /// The blob id at `path`, if a file is there.
    pub fn blob_id(&self, path: &str) -> Result<Option<Oid>, git2::Error> {
        for layer in self.layers.iter().rev() {
            if let Some(change) = layer.get(path) {
                return Ok(match change {
                    Change::File(oid) => Some(*oid),
                    Change::Removed | Change::RemovedDir => None,
                });
            }
            if parent_dirs(path).any(|d| layer.get(d) == Some(&Change::RemovedDir)) {
                return Ok(None);
            }
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let Some(tree) = self.base_dir(dir)? else { return Ok(None) };
        Ok(tree.get_name(name).filter(|e| e.kind() == Some(ObjectType::Blob)).map(|e| e.id()))
    }

    /// The tree at `dir` in the base (empty `dir`: the root), looked up once per stage.
    fn base_dir(&self, dir: &str) -> Result<Option<Tree<'r>>, git2::Error> {
        if dir.is_empty() {
            return Ok(self.base.clone());
        }
        if let Some(hit) = self.subtrees.borrow().get(dir) {
            return Ok(hit.clone());
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let found = match self.base_dir(parent)? {
            Some(parent) => match parent.get_name(name) {
                Some(e) if e.kind() == Some(ObjectType::Tree) => match self.carried.get(dir) {
                    Some(t) if t.id() == e.id() => Some(t.clone()),
                    _ => Some(self.repo.find_tree(e.id())?),
                },
                _ => None,
            },
            None => None,
        };
        if found.as_ref().is_none_or(|t| t.len() >= KEPT_DIR_ENTRIES) {
            self.subtrees.borrow_mut().insert(dir.to_owned(), found.clone());
        }
        Ok(found)
    }

    /// The content of the file at `path`.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, git2::Error> {
        match self.blob_id(path)? {
            Some(oid) => Ok(Some(self.repo.find_blob(oid)?.content().to_vec())),
            None => Ok(None),
        }
    }

    /// The content of the file at `path` as trimmed text (lossy UTF-8).
    pub fn read_text(&self, path: &str) -> Result<Option<String>, git2::Error> {
        Ok(self.read(path)?.map(|b| String::from_utf8_lossy(&b).trim().to_owned()))
    }

    /// True if a file is at `path`.
    pub fn exists(&self, path: &str) -> Result<bool, git2::Error> {
        Ok(self.blob_id(path)?.is_some())
    }

    /// The names in directory `dir`, sorted, with their kind. A missing directory lists as empty.
    pub fn list(&self, dir: &str) -> Result<Vec<(String, EntryKind)>, git2::Error> {
        let mut names: BTreeMap<String, EntryKind> = BTreeMap::new();
        {
            if let Some(tree) = self.base_dir(dir)? {
                for e in tree.iter() {
                    let kind = if e.kind() == Some(ObjectType::Tree) { EntryKind::Dir } else { EntryKind::File };
                    names.insert(String::from_utf8_lossy(e.name_bytes()).into_owned(), kind);
                }
            }
        }
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        for layer in &self.layers {
            if parent_dirs(&prefix).any(|d| layer.get(d) == Some(&Change::RemovedDir)) {
                names.clear();
            }
            for (path, change) in layer.range(prefix.clone()..) {
                let Some(rest) = path.strip_prefix(&prefix) else {
                    break;
                };
                match (rest.split_once('/'), change) {
                    (None, Change::File(_)) => {
                        names.insert(rest.to_owned(), EntryKind::File);
                    }
                    (None, Change::Removed | Change::RemovedDir) => {
                        names.remove(rest);
                    }
                    (Some((child, _)), Change::File(_)) => {
                        names.insert(child.to_owned(), EntryKind::Dir);
                    }
                    (Some(_), _) => {}
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Writes `content` as a blob at `path`.
    pub fn write(&mut self, path: &str, content: &[u8]) -> Result<(), git2::Error> {
        const SMALL: usize = 256;
        let oid = match self.small_blobs.get(content) {
            Some(oid) => *oid,
            None => {
                let oid = self.put_object(ObjectType::Blob, content)?;
                if content.len() <= SMALL {
                    self.small_blobs.insert(content.to_vec(), oid);
                }
                oid
            }
        };
        self.put_blob(path, oid);
        Ok(())
    }

    /// Writes `content` at `path` unless the file already holds exactly that; returns whether it changed.
    pub fn write_if_changed(&mut self, path: &str, content: &[u8]) -> Result<bool, git2::Error> {
        let oid = Oid::hash_object(ObjectType::Blob, content)?;
        if self.blob_id(path)? == Some(oid) {
            return Ok(false);
        }
        self.write(path, content)?;
        Ok(true)
    }

    /// Places an existing blob at `path` (e.g. a release's manifest copied into an environment).
    pub fn put_blob(&mut self, path: &str, oid: Oid) {
        self.top().insert(path.to_owned(), Change::File(oid));
    }

    /// Removes the file at `path` (nothing happens if none is there).
    pub fn remove(&mut self, path: &str) -> Result<bool, git2::Error> {
        if self.blob_id(path)?.is_none() {
            return Ok(false);
        }
        self.top().insert(path.to_owned(), Change::Removed);
        Ok(true)
    }

    /// Removes the directory `dir` and everything below it; returns whether anything was there.
    pub fn remove_dir(&mut self, dir: &str) -> Result<bool, git2::Error> {
        if self.list(dir)?.is_empty() {
            return Ok(false);
        }
        let top = self.top();
        remove_under(top, dir);
        top.insert(dir.to_owned(), Change::RemovedDir);
        Ok(true)
    }

    fn top(&mut self) -> &mut Layer {
        self.layers.last_mut().expect("a stage always has a layer")
    }

    /// Writes the new root tree: the base with every change applied. Only trees on changed paths are rebuilt.
    pub fn write_tree(&mut self) -> Result<Oid, git2::Error> {
        while self.layers.len() > 1 {
            self.keep();
        }
        let changes: Vec<(&str, Change)> = self.layers[0].iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let put = |kind, data: &[u8]| self.put_object(kind, data);
        let (mut added, mut big) = (Vec::new(), Vec::new());
        let mut out = Built { added: &mut added, big: &mut big };
        let root = match build(self, &put, "", self.base.as_ref(), &changes, &mut out)? {
            Some(oid) => oid,
            None => put(ObjectType::Tree, &[])?,
        };
        if self.base.as_ref().map(Tree::id) != Some(root) {
            added.push(root);
        }
        self.added.append(&mut added);
        self.written_big = big;
        Ok(root)
    }

    /// Takes the ids of the trees and blobs that the trees written since the last call (by [`Stage::write_tree`])
    /// name at a path where the base tree names another object or nothing: the new root, each new directory on a
    /// changed path and each file changed. Every object the written trees have and the base's lacks is among them,
    /// and every one of them is in a written tree; one may be in the base too, elsewhere (a blob of the same
    /// content), so the writer leaves out those already on disk. A batch's pack is made of these: no walk of the
    /// new tree beside the base's, which read both versions of a 10,000-entry directory again on every deploy.
    pub fn take_added(&mut self) -> Vec<Oid> {
        std::mem::take(&mut self.added)
    }
}

fn remove_under(layer: &mut Layer, dir: &str) {
    let prefix = format!("{dir}/");
    let doomed: Vec<String> =
        layer.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)).map(|(p, _)| p.clone()).collect();
    for p in doomed {
        layer.remove(&p);
    }
}

/// Writes an object (a stage's [`Stage::put_object`]).
type Put<'a> = &'a dyn Fn(ObjectType, &[u8]) -> Result<Oid, git2::Error>;

/// What [`build`] reports besides the tree.
struct Built<'a> {
    /// Each entry of a written tree that differs from the base's entry of that name.
    added: &'a mut Vec<Oid>,
    /// The path and id of each written tree of at least [`KEPT_DIR_ENTRIES`] entries.
    big: &'a mut Vec<(String, Oid)>,
}

/// Applies `changes` (paths relative to `base`, the stage's directory `dir`) and returns the new tree, or None when
/// it is empty. A directory of the stage's base is read through the stage ([`Stage::base_dir`]).
fn build(
    stage: &Stage<'_>,
    put: Put<'_>,
    dir: &str,
    base: Option<&Tree<'_>>,
    changes: &[(&str, Change)],
    out: &mut Built<'_>,
) -> Result<Option<Oid>, git2::Error> {
    let mut by_child: BTreeMap<&str, Vec<(&str, Change)>> = BTreeMap::new();
    let mut exact: BTreeMap<&str, Change> = BTreeMap::new();
    for (path, change) in changes {
        match path.split_once('/') {
            Some((child, rest)) => by_child.entry(child).or_default().push((rest, *change)),
            None => {
                exact.insert(path, *change);
            }
        }
    }
    // What becomes of each child named by a change: an entry (mode, id), or None for none.
    let mut edits: BTreeMap<&str, Option<(i32, Oid)>> = BTreeMap::new();
    let children: BTreeSet<&str> = by_child.keys().chain(exact.keys()).copied().collect();
    for child in children {
        if child.is_empty() || child == "." || child == ".." || child.contains('\0') {
            return Err(git2::Error::from_str(&format!("invalid tree entry name {child:?}")));
        }
        let here = exact.get(child).copied();
        let before = base.and_then(|b| b.get_name(child));
        let edit = match (here, by_child.get(child)) {
            (Some(Change::File(oid)), _) => Some((i32::from(FileMode::Blob), oid)),
            (here, Some(sub_changes)) => {
                let path = if dir.is_empty() { child.to_owned() } else { format!("{dir}/{child}") };
                let sub_base = match (here, &before) {
                    (Some(Change::RemovedDir), _) | (_, None) => None,
                    // The base's own directory there (this is the base's tree, or one of its directories).
                    (_, Some(e)) if e.kind() == Some(ObjectType::Tree) => match stage.base_dir(&path)? {
                        Some(t) if t.id() == e.id() => Some(t),
                        _ => Some(stage.repo.find_tree(e.id())?),
                    },
                    (_, Some(_)) => None,
                };
                build(stage, put, &path, sub_base.as_ref(), sub_changes, out)?
                    .map(|oid| (i32::from(FileMode::Tree), oid))
            }
            (Some(Change::Removed | Change::RemovedDir), None) | (None, None) => None,
        };
        if let Some((mode, oid)) = edit {
            if before.is_none_or(|e| e.id() != oid || e.filemode() != mode) {
                out.added.push(oid);
            }
        }
        edits.insert(child, edit);
    }
    let (tree, entries) = write_edited(put, base, &edits)?;
    if let Some(id) = tree.filter(|_| entries >= KEPT_DIR_ENTRIES && !dir.is_empty()) {
        out.big.push((dir.to_owned(), id));
    }
    Ok(tree)
}

/// Writes `base` with `edits` applied (a name mapped to its new entry, or to None to drop it) as a tree object, or
/// returns None when nothing is left; and the number of entries written. The entries are merged in git's tree order as they are serialized: a change to
/// a directory of 10,000 entries costs one pass over its entries, with no per-entry allocation and no sort, where
/// libgit2's tree builder copied every entry into a map and sorted them again.
fn write_edited(
    put: Put<'_>,
    base: Option<&Tree<'_>>,
    edits: &BTreeMap<&str, Option<(i32, Oid)>>,
) -> Result<(Option<Oid>, usize), git2::Error> {
    use std::io::Write;
    // The new entries in tree order.
    let mut added: Vec<(&str, i32, Oid)> =
        edits.iter().filter_map(|(name, e)| e.map(|(mode, oid)| (*name, mode, oid))).collect();
    added.sort_by(|a, b| tree_order(a.0.as_bytes(), a.1, b.0.as_bytes(), b.1));
    let mut out = Vec::with_capacity(base.map_or(0, |b| b.len() * 40) + added.len() * 40);
    let push = |out: &mut Vec<u8>, mode: i32, name: &[u8], id: Oid| {
        // The modes git writes, without formatting each one (which cost more than the rest of the entry).
        match mode {
            0o100644 => out.extend_from_slice(b"100644 "),
            0o040000 => out.extend_from_slice(b"40000 "),
            0o100755 => out.extend_from_slice(b"100755 "),
            0o120000 => out.extend_from_slice(b"120000 "),
            0o160000 => out.extend_from_slice(b"160000 "),
            other => drop(write!(out, "{other:o} ")),
        }
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(id.as_bytes());
    };
    let mut next = added.iter().peekable();
    let mut entries = added.len();
    for entry in base.into_iter().flat_map(|b| b.iter()) {
        let name = entry.name_bytes();
        if std::str::from_utf8(name).is_ok_and(|n| edits.contains_key(n)) {
            continue;
        }
        let mode = entry.filemode();
        while let Some((new_name, new_mode, id)) =
            next.next_if(|a| tree_order(a.0.as_bytes(), a.1, name, mode) == std::cmp::Ordering::Less)
        {
            push(&mut out, *new_mode, new_name.as_bytes(), *id);
        }
        push(&mut out, mode, name, entry.id());
        entries += 1;
    }
    for (new_name, new_mode, id) in next {
        push(&mut out, *new_mode, new_name.as_bytes(), *id);
    }
    if out.is_empty() {
        return Ok((None, 0));
    }
    Ok((Some(put(ObjectType::Tree, &out)?), entries))
}

/// Git's order of tree entries: by name, a directory's name compared as if it ended in '/'.
fn tree_order(a: &[u8], a_mode: i32, b: &[u8], b_mode: i32) -> std::cmp::Ordering {
    let dir = i32::from(FileMode::Tree);
    let slash = |mode: i32| (mode == dir).then_some(&b'/');
    a.iter().chain(slash(a_mode)).cmp(b.iter().chain(slash(b_mode)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The merge in `write_edited` writes exactly the tree libgit2's tree builder writes, for random directories
    /// and edits (names that sort differently as files and as directories: `a`, `a.b`, `a-b`, `a0`; a file that
    /// becomes a directory of the same name, and back; removals of what is and is not there).
    #[test]
    fn an_edited_tree_is_byte_for_byte_the_tree_builders() {
        let (_d, repo) = repo();
        let blob = repo.blob(b"x").unwrap();
        let sub = {
            let mut tb = repo.treebuilder(None).unwrap();
            tb.insert("f", blob, 0o100644).unwrap();
            tb.write().unwrap()
        };
        let names = ["a", "a.b", "a-b", "a0", "a_", "b", "ab", "a~", "app-00001", "app-00010", "app-0001", "z"];
        let mut rand = xorshift(0x2545_f491_4f6c_dd1du64);
        for _ in 0..500 {
            let mut base = repo.treebuilder(None).unwrap();
            for name in names {
                match rand(4) {
                    0 => {}
                    1 => drop(base.insert(name, sub, 0o040000).unwrap()),
                    2 => drop(base.insert(name, blob, 0o100755).unwrap()),
                    _ => drop(base.insert(name, blob, 0o100644).unwrap()),
                }
            }
            let base = repo.find_tree(base.write().unwrap()).unwrap();
            let mut edits = BTreeMap::new();
            let mut expected = repo.treebuilder(Some(&base)).unwrap();
            for name in names {
                let edit = match rand(5) {
                    0 => Some(None),
                    1 => Some(Some((0o040000, sub))),
                    2 => Some(Some((0o100644, blob))),
                    _ => None,
                };
                match edit {
                    Some(Some((mode, id))) => drop(expected.insert(name, id, mode).unwrap()),
                    Some(None) if expected.get(name).unwrap().is_some() => expected.remove(name).unwrap(),
                    _ => {}
                }
                if let Some(e) = edit {
                    edits.insert(name, e);
                }
            }
            let want = if expected.is_empty() { None } else { Some(expected.write().unwrap()) };
            assert_eq!(
                write_edited(&|k, d| repo.odb()?.write(k, d), Some(&base), &edits).unwrap().0,
                want,
                "edits {edits:?}"
            );
        }
    }

    /// Every object reachable from `tree` (itself included).
    fn reachable(repo: &Repository, tree: Oid, out: &mut BTreeSet<Oid>) {
        if !out.insert(tree) {
            return;
        }
        for e in repo.find_tree(tree).unwrap().iter() {
            if e.kind() == Some(ObjectType::Tree) {
                reachable(repo, e.id(), out);
            } else {
                out.insert(e.id());
            }
        }
    }

    /// What `take_added` lists, less what the base has, is exactly what the written trees have and the base lacks
    /// (the objects a batch's pack must hold), and it lists nothing the written trees lack: random writes, removals,
    /// directory removals, a file becoming a directory of its name and back, discarded layers, contents that repeat
    /// across paths and back to what the base had, several trees written from one stage (a batch's segments).
    #[test]
    fn the_objects_listed_as_added_are_those_the_written_trees_add() {
        let (_d, repo) = repo();
        let names = ["a", "b", "a.b", "c"];
        let mut rand = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut base: Option<Oid> = None;
        for round in 0..300 {
            let mut s = Stage::new(&repo, base.map(|b| repo.find_tree(b).unwrap()));
            let mut roots = Vec::new();
            for _ in 0..1 + rand(3) {
                for _ in 0..1 + rand(6) {
                    let depth = 1 + rand(3);
                    let path: Vec<&str> = (0..depth).map(|_| names[rand(names.len())]).collect();
                    let path = path.join("/");
                    let layer = rand(3) == 0;
                    if layer {
                        s.begin();
                    }
                    match rand(6) {
                        0 => drop(s.remove(&path).unwrap()),
                        1 => drop(s.remove_dir(&path).unwrap()),
                        _ => s.write(&path, format!("{}", rand(4)).as_bytes()).unwrap(),
                    }
                    if layer {
                        if rand(2) == 0 {
                            s.keep()
                        } else {
                            s.discard()
                        }
                    }
                }
                roots.push(s.write_tree().unwrap());
            }
            let mut before = BTreeSet::new();
            if let Some(b) = base {
                reachable(&repo, b, &mut before);
            }
            let mut after = BTreeSet::new();
            for &r in &roots {
                reachable(&repo, r, &mut after);
            }
            let listed: BTreeSet<Oid> = s.take_added().into_iter().collect();
            assert!(listed.is_subset(&after), "round {round}: listed an object no written tree has");
            let new: BTreeSet<Oid> = after.difference(&before).copied().collect();
            let listed_new: BTreeSet<Oid> = listed.difference(&before).copied().collect();
            assert_eq!(listed_new, new, "round {round}");
            assert!(s.take_added().is_empty(), "taken once");
            base = roots.last().copied();
        }
    }

    /// A number below `n`, from a fixed sequence.
    fn xorshift(mut seed: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        }
    }

    fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        (dir, repo)
    }

    fn files(repo: &Repository, tree: Oid) -> Vec<(String, String)> {
        let tree = repo.find_tree(tree).unwrap();
        let mut out = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |root, e| {
            if e.kind() == Some(ObjectType::Blob) {
                let blob = repo.find_blob(e.id()).unwrap();
                out.push((
                    format!("{root}{}", e.name().unwrap()),
                    String::from_utf8_lossy(blob.content()).into_owned(),
                ));
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        out
    }

    #[test]
    fn writes_read_back_and_build_nested_trees() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        s.write("a/b/c", b"1").unwrap();
        s.write("a/d", b"2").unwrap();
        assert_eq!(s.read("a/b/c").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(s.list("a").unwrap(), vec![("b".into(), EntryKind::Dir), ("d".into(), EntryKind::File)]);
        let t = s.write_tree().unwrap();
        assert_eq!(files(&repo, t), vec![("a/b/c".into(), "1".into()), ("a/d".into(), "2".into())]);
    }

    #[test]
    fn discarded_layer_leaves_no_trace_and_kept_layer_stays() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        s.begin();
        s.write("x", b"kept").unwrap();
        s.keep();
        s.begin();
        s.write("y", b"dropped").unwrap();
        s.remove("x").unwrap();
        s.discard();
        let t = s.write_tree().unwrap();
        assert_eq!(files(&repo, t), vec![("x".into(), "kept".into())]);
    }

    #[test]
    fn removing_a_dir_prunes_empty_parents_and_later_writes_survive() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        s.write("e/locks/l1/message", b"m").unwrap();
        s.write("e/locks/l1/created_at", b"t").unwrap();
        s.write("e/config.json", b"{}").unwrap();
        let t1 = s.write_tree().unwrap();
        let base = repo.find_tree(t1).unwrap();
        let mut s = Stage::new(&repo, Some(base));
        s.begin();
        assert!(s.remove_dir("e/locks/l1").unwrap());
        assert!(s.read("e/locks/l1/message").unwrap().is_none());
        assert!(s.list("e/locks").unwrap().is_empty());
        s.keep();
        s.begin();
        s.write("e/locks/l1/message", b"again").unwrap();
        s.keep();
        let t2 = s.write_tree().unwrap();
        assert_eq!(
            files(&repo, t2),
            vec![("e/config.json".into(), "{}".into()), ("e/locks/l1/message".into(), "again".into())]
        );

        let mut s = Stage::new(&repo, Some(repo.find_tree(t2).unwrap()));
        s.remove_dir("e/locks/l1").unwrap();
        let t3 = s.write_tree().unwrap();
        // the emptied `locks` directory is gone too
        assert!(repo.find_tree(t3).unwrap().get_path(std::path::Path::new("e/locks")).is_err());
        assert_eq!(files(&repo, t3), vec![("e/config.json".into(), "{}".into())]);
    }

    #[test]
    fn untouched_subtrees_keep_their_ids() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        s.write("big/1", b"1").unwrap();
        s.write("small/1", b"1").unwrap();
        let t1 = repo.find_tree(s.write_tree().unwrap()).unwrap();
        let big_before = t1.get_name("big").unwrap().id();
        let mut s = Stage::new(&repo, Some(t1));
        s.write("small/2", b"2").unwrap();
        let t2 = repo.find_tree(s.write_tree().unwrap()).unwrap();
        assert_eq!(t2.get_name("big").unwrap().id(), big_before);
    }

    /// The big directories a stage read or wrote are kept for the next stage, in their versions of the last tree
    /// written (what the stage read and did not change, what it wrote, nothing it removed), and a kept directory is
    /// used only where the base names its id: over another tree, reads see that tree.
    #[test]
    fn big_directories_are_carried_to_the_next_stage_by_id() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        for i in 0..100 {
            s.write(&format!("big/{i:03}"), b"1").unwrap();
            s.write(&format!("also/{i:03}"), b"1").unwrap();
            s.write(&format!("gone/{i:03}"), b"1").unwrap();
        }
        s.write("small/x", b"1").unwrap();
        let t1 = repo.find_tree(s.write_tree().unwrap()).unwrap();
        let kept = s.keep_big_dirs().unwrap();
        let mut paths: Vec<&str> = kept.keys().map(String::as_str).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["also", "big", "gone"], "the big ones written, not the small one nor the root");
        assert_eq!(kept["big"].id(), t1.get_name("big").unwrap().id());

        // Over t1: reads `also` (unchanged), changes `big`, removes `gone`.
        let mut s = Stage::with_big_dirs(&repo, Some(t1.clone()), kept.clone());
        assert_eq!(s.list("also").unwrap().len(), 100);
        assert_eq!(s.list("gone").unwrap().len(), 100);
        s.write("big/000", b"2").unwrap();
        assert!(s.remove_dir("gone").unwrap());
        let t2 = repo.find_tree(s.write_tree().unwrap()).unwrap();
        let next = s.keep_big_dirs().unwrap();
        let mut paths: Vec<&str> = next.keys().map(String::as_str).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["also", "big"]);
        assert_eq!(next["big"].id(), t2.get_name("big").unwrap().id(), "the version written");
        assert_eq!(next["also"].id(), kept["also"].id());

        // Carried into a stage over t1 again (the branch went back): `big` there is t1's, not the kept t2 version.
        let s = Stage::with_big_dirs(&repo, Some(t1), next);
        assert_eq!(s.read_text("big/000").unwrap().as_deref(), Some("1"));
        assert_eq!(s.list("gone").unwrap().len(), 100);
    }

    #[test]
    fn marks_of_a_discarded_layer_go_with_it() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        s.begin();
        s.mark("a:kept".into());
        s.mark("b:other".into());
        s.keep();
        s.begin();
        s.mark("a:dropped".into());
        s.discard();
        s.begin();
        s.mark("a:open".into());
        assert_eq!(s.take_marks("a:").into_iter().collect::<Vec<_>>(), ["kept", "open"]);
        assert!(s.take_marks("a:").is_empty());
        assert_eq!(s.take_marks("b:").len(), 1);
    }

    #[test]
    fn write_if_changed_detects_identical_content() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        assert!(s.write_if_changed("f", b"a").unwrap());
        assert!(!s.write_if_changed("f", b"a").unwrap());
        assert!(s.write_if_changed("f", b"b").unwrap());
    }
}
