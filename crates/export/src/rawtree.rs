//! Trees read as stored, for the walks that compare a tree with the version before it (the objects a commit adds,
//! the versions a roll-up stores as deltas, what a push may reuse).
//!
//! They read through the object store, not libgit2's object lookup, for two reasons. libgit2's object cache has one
//! budget for the whole process (8 MiB, `transport::CACHE_BYTES`), and a handle that stores an object while the
//! process is over it evicts its own entries: a push or a roll-up reading a few dozen 400 KiB `applications/` trees
//! (at 10,000 applications) pushed the budget over, and each of the writer's next lookups then evicted from the
//! writer's cache, so deploys read and parsed that tree from its pack again (with a 32 MiB budget, which costs too
//! much memory, the writer's time per deploy fell from 11 to 6 ms: the misses are that much of it). And parsing
//! here costs a scan for two bytes per entry, where libgit2 builds an entry record of each.

use std::cmp::Ordering;

use git2::{ObjectType, Odb, OdbObject, Oid};

/// A tree's bytes and where each entry's name lies in them.
pub(crate) struct RawTree<'o> {
    object: OdbObject<'o>,
    /// (start of the entry, end of its name: the NUL before the 20-byte id).
    entries: Vec<(usize, usize)>,
}

impl<'o> RawTree<'o> {
    pub(crate) fn read(odb: &'o Odb<'_>, id: Oid) -> Result<RawTree<'o>, git2::Error> {
        let object = odb.read(id)?;
        if object.kind() != ObjectType::Tree {
            return Err(git2::Error::from_str(&format!("{id} is a {}, not a tree", object.kind())));
        }
        let raw = object.data();
        let mut entries = Vec::new();
        let mut at = 0;
        let damaged = || git2::Error::from_str(&format!("the tree {id} is damaged"));
        while at < raw.len() {
            let nul = at + memchr(0, &raw[at..]).ok_or_else(damaged)?;
            if nul + 21 > raw.len() || memchr(b' ', &raw[at..nul]).is_none() {
                return Err(damaged());
            }
            entries.push((at, nul));
            at = nul + 21;
        }
        Ok(RawTree { object, entries })
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries `from..to` of this tree outside of which every entry is, byte for byte, the entry of `old` at the
    /// same place counted from the same end: the longest common start and end of the two trees' bytes, cut back to
    /// whole entries (at the end, only where `old` has an entry starting at the same distance from its end).
    pub(crate) fn unchanged_ends(&self, old: &RawTree<'_>) -> (usize, usize) {
        let (a, b) = (self.raw(), old.raw());
        let start = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let end =
            a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count().min(a.len().min(b.len()) - start);
        // Entries ending within the common start.
        let from = self.entries.partition_point(|&(_, nul)| nul + 21 <= start);
        // Entries starting within the common end, where `old` starts one at the same distance from its end.
        let mut to = self.entries.partition_point(|&(at, _)| at < a.len() - end);
        while to < self.entries.len() {
            let at_old = self.entries[to].0 + b.len() - a.len();
            if old.entries.binary_search_by_key(&at_old, |&(at, _)| at).is_ok() {
                break;
            }
            to += 1;
        }
        (from, to.max(from))
    }

    fn raw(&self) -> &[u8] {
        self.object.data()
    }

    pub(crate) fn name(&self, i: usize) -> &[u8] {
        let (start, nul) = self.entries[i];
        let raw = self.raw();
        let space = start + memchr(b' ', &raw[start..nul]).unwrap_or(0);
        &raw[space + 1..nul]
    }

    pub(crate) fn id(&self, i: usize) -> Oid {
        let nul = self.entries[i].1;
        Oid::from_bytes(&self.raw()[nul + 1..nul + 21]).unwrap_or(Oid::ZERO_SHA1)
    }

    /// Whether entry `i` is a directory (mode 40000).
    pub(crate) fn is_tree(&self, i: usize) -> bool {
        let (start, _) = self.entries[i];
        self.raw()[start..].starts_with(b"40000 ")
    }

    /// Whether entry `i` is a commit (a submodule's, mode 160000): no object of this repo.
    pub(crate) fn is_gitlink(&self, i: usize) -> bool {
        let (start, _) = self.entries[i];
        self.raw()[start..].starts_with(b"160000 ")
    }

    /// The entry of this tree named `name` of the same kind (directory or not) as `other`'s entry `at`, looked for
    /// first where the entries so far put it (`at + shift`, or one either side: an entry added or removed just
    /// before), else by binary search in git's order. A change touches few entries of a tree, so a walk of a
    /// 10,000-entry directory costs one comparison per entry instead of a search each.
    pub(crate) fn same_entry(&self, other: &RawTree<'_>, at: usize, shift: &mut isize) -> Option<usize> {
        let (name, dir) = (other.name(at), other.is_tree(at));
        for step in [0, -1, 1] {
            let index = at as isize + *shift + step;
            let hit = usize::try_from(index).ok().filter(|&i| i < self.len() && self.name(i) == name);
            if let Some(i) = hit {
                if self.is_tree(i) != dir {
                    return None;
                }
                *shift += step;
                return Some(i);
            }
        }
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match git_order(self.name(mid), self.is_tree(mid), name, dir) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

/// An entry of a tree met by [`walk`], beside the same entry of the tree it is compared with.
pub(crate) struct Pair {
    pub id: Oid,
    /// The other tree's entry of the same name and kind, if it has one.
    pub before: Option<Oid>,
    pub tree: bool,
    /// A submodule's commit: no object of this repo.
    pub gitlink: bool,
}

/// Which entries of a tree [`walk`] shows its visitor.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    /// Every entry.
    All,
    /// At least every entry that differs from its counterpart: the runs of entries at the start and at the end
    /// of a directory that are byte for byte those of its earlier version are left out (a deploy changes one entry
    /// of a 10,000-entry directory, and the visitors that ask for this do nothing with an unchanged entry).
    Changed,
}

/// Walks the tree `new` beside `old` (None: beside nothing): `visit` sees each entry (or each changed one, see
/// [`Show`]) with its counterpart, and the walk goes down into a directory (beside its counterpart) where `visit`
/// says so. The callers say where the two differ and what they keep: the objects a commit adds, what a push may
/// reuse, the versions a roll-up pairs.
pub(crate) fn walk(
    odb: &Odb<'_>,
    new: Oid,
    old: Option<Oid>,
    show: Show,
    mut visit: impl FnMut(&Pair) -> Result<bool, git2::Error>,
) -> Result<(), git2::Error> {
    let mut stack = vec![(new, old)];
    while let Some((new, old)) = stack.pop() {
        let tree = RawTree::read(odb, new)?;
        let old_tree = old.map(|o| RawTree::read(odb, o)).transpose()?;
        let mut shift = 0isize;
        let (from, to) = match (&old_tree, show) {
            (Some(old), Show::Changed) => tree.unchanged_ends(old),
            _ => (0, tree.len()),
        };
        for i in from..to {
            let before = old_tree.as_ref().and_then(|t| Some(t.id(t.same_entry(&tree, i, &mut shift)?)));
            let pair = Pair { id: tree.id(i), before, tree: tree.is_tree(i), gitlink: tree.is_gitlink(i) };
            if visit(&pair)? && pair.tree {
                stack.push((pair.id, pair.before));
            }
        }
    }
    Ok(())
}

/// git's order of tree entries: by name, a directory's name compared as if it ended in `/`.
fn git_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then_with(|| {
        let end = |name: &[u8], dir: bool| name.get(n).copied().unwrap_or(if dir { b'/' } else { 0 });
        end(a, a_dir).cmp(&end(b, b_dir))
    })
}

fn memchr(byte: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == byte)
}

/// A small seeded sequence for the crate's random tests: each call gives a number below `n`.
#[cfg(test)]
pub(crate) fn lcg(mut state: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shown only the changed entries, a walk meets every entry that differs from its counterpart (or has none),
    /// with the same counterpart a walk of every entry finds: random directories and their edited versions
    /// (entries added, removed, changed, a file becoming a directory), nested.
    #[test]
    fn a_walk_of_changed_entries_meets_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let blobs: Vec<Oid> = (0..3).map(|i| repo.blob(format!("{i}").as_bytes()).unwrap()).collect();
        let names: Vec<String> =
            (0..40).map(|i| format!("n{}", i * 7 % 40)).chain(["a".into(), "a.b".into()]).collect();
        let mut rand = lcg(1);
        let odb = repo.odb().unwrap();
        for _ in 0..200 {
            let mut old = repo.treebuilder(None).unwrap();
            for n in &names {
                if rand(3) > 0 {
                    old.insert(n, blobs[rand(3)], 0o100644).unwrap();
                }
            }
            let old_id = old.write().unwrap();
            let mut new = repo.treebuilder(Some(&repo.find_tree(old_id).unwrap())).unwrap();
            for _ in 0..rand(4) {
                let n = &names[rand(names.len())];
                match rand(4) {
                    0 => drop(new.remove(n)),
                    1 => drop(new.insert(n, old_id, 0o040000).unwrap()),
                    _ => drop(new.insert(n, blobs[rand(3)], 0o100644).unwrap()),
                }
            }
            let new_id = new.write().unwrap();
            let met = |show| {
                let mut out = Vec::new();
                walk(&odb, new_id, Some(old_id), show, |e| {
                    if e.before != Some(e.id) {
                        out.push((e.id, e.before, e.tree));
                    }
                    Ok(false)
                })
                .unwrap();
                out
            };
            assert_eq!(met(Show::Changed), met(Show::All));
        }
    }

    /// Entries in git's order, found at their place, off it (after additions and removals) and by search; a name
    /// that is a file in one tree and a directory in the other is no match.
    #[test]
    fn entries_are_found_where_git_puts_them() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let sub = {
            let mut t = repo.treebuilder(None).unwrap();
            t.insert("f", blob, 0o100644).unwrap();
            t.write().unwrap()
        };
        let tree = |names: &[(&str, bool)]| {
            let mut t = repo.treebuilder(None).unwrap();
            for (n, d) in names {
                t.insert(n, if *d { sub } else { blob }, if *d { 0o040000 } else { 0o100644 }).unwrap();
            }
            t.write().unwrap()
        };
        // "a.b" sorts before the directory "a" ("a/"), which sorts after the file "a-".
        let old = tree(&[("a", true), ("a-", false), ("a.b", false), ("b", false), ("c", true), ("z", false)]);
        let new = tree(&[("a", true), ("a.b", false), ("b", true), ("c", true), ("y", false), ("z", false)]);
        let odb = repo.odb().unwrap();
        let (old, new) = (RawTree::read(&odb, old).unwrap(), RawTree::read(&odb, new).unwrap());
        // The trees share only their first entry ("a.b" is the other's second) and their last.
        assert_eq!(new.unchanged_ends(&old), (0, 5));
        let names: Vec<&[u8]> = (0..old.len()).map(|i| old.name(i)).collect();
        assert_eq!(names, [&b"a-"[..], b"a.b", b"a", b"b", b"c", b"z"]);
        let mut shift = 0;
        let found: Vec<Option<&[u8]>> =
            (0..new.len()).map(|i| old.same_entry(&new, i, &mut shift).map(|j| old.name(j))).collect();
        assert_eq!(found, [Some(&b"a.b"[..]), Some(b"a"), None, Some(b"c"), None, Some(b"z")]);
        assert!(new.is_tree(1) && !new.is_tree(0) && new.id(1) == sub && new.id(0) == blob);
        // Every entry by search alone (a hint far off).
        for i in 0..old.len() {
            let mut far = 1000;
            assert_eq!(old.same_entry(&old, i, &mut far), Some(i));
        }
        assert!(RawTree::read(&odb, blob).is_err());
    }
}
