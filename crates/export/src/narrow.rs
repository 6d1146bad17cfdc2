//! What libgit2's push walks, cut down to what the push changes.
//!
//! Before it packs anything, libgit2's push marks every tree and blob under each commit the remote advertises as
//! "the remote has it" (`mark_edges_uninteresting` and `mark_tree_uninteresting` in its `pack-objects.c` recurse
//! through the whole tree), and only then walks the new commits, skipping what it marked. At 10,000 applications a
//! commit's tree holds millions of objects: one push of one deploy to a `git://` remote took 34–38 s and ~400 MiB
//! of the API's heap, nearly all of it in that marking (git's own `push`, sparse by default, sent the same change
//! in the time the remote took to take it).
//!
//! libgit2 packs from the repo handle the remote was made from. [`narrow`] gives that handle, in front of the
//! repo's object store, an in-memory store holding a copy of each advertised commit whose tree is replaced by one
//! flat tree listing only the objects the new commits reuse from the remote's head (found by walking each new tree
//! where it differs from the head's, as [`crate::objects::added_objects`] does): libgit2 marks those, walks the new
//! commits, stops at them, and packs exactly what the remote lacks. The copies live only in that handle's memory,
//! for one push; nothing is written to the repo, and the commits libgit2 packs are read from the repo as they are.
//!
//! Why it is sound: libgit2 leaves out of the pack only what it marked and what lies under it; every object
//! marked is an entry of the tree of a commit the remote has (so the remote has it and everything under it), and
//! the commits marked are the advertised ones, as without the copies. An object reused from elsewhere than the
//! head's tree at the same path is sent again, which costs bytes, never correctness.

use std::collections::HashSet;
use std::time::Instant;

use git2::{Binding, Mempack, ObjectType, Oid, Repository};

/// What [`narrow`] did, for the log.
#[derive(Debug, Default)]
pub(crate) struct Narrowed {
    /// Advertised commits given a cut-down tree.
    pub commits: usize,
    /// Objects listed in that tree: the ones the new commits reuse.
    pub reused: usize,
    pub ms: u128,
}

/// Prepares `view` (a fresh handle on `repo`'s store, from which libgit2 will push `specs` to a remote that
/// advertised `heads`) as the module describes. Must run before anything reads through `view`.
pub(crate) fn narrow(
    repo: &Repository,
    view: &Repository,
    heads: &[(String, Oid)],
    specs: &[String],
) -> Result<Narrowed, git2::Error> {
    let started = Instant::now();
    let odb = repo.odb()?;
    // The commits libgit2 hides: each advertised id this repo holds, peeled to its commit.
    let peel = |id: Oid| -> Option<Oid> {
        if !odb.exists(id) {
            return None;
        }
        repo.find_object(id, None).and_then(|o| o.peel_to_commit()).ok().map(|c| c.id())
    };
    let mut hidden: Vec<Oid> = heads.iter().filter_map(|(_, id)| peel(*id)).collect();
    hidden.sort();
    hidden.dedup();
    if hidden.is_empty() {
        return Ok(Narrowed::default());
    }
    // What the new commits are compared with: the heads their destinations have now (else every branch head).
    let destinations: Vec<&str> =
        specs.iter().filter_map(|s| s.trim_start_matches('+').split_once(':')).map(|(_, d)| d).collect();
    let mut bases: Vec<Oid> =
        heads.iter().filter(|(n, _)| destinations.contains(&n.as_str())).filter_map(|(_, id)| peel(*id)).collect();
    if bases.is_empty() {
        bases = heads.iter().filter(|(n, _)| n.starts_with("refs/heads/")).filter_map(|(_, id)| peel(*id)).collect();
    }
    bases.sort();
    bases.dedup();
    let base_trees: Vec<Oid> =
        bases.iter().map(|b| repo.find_commit(*b).map(|c| c.tree_id())).collect::<Result<_, _>>()?;
    // The commits libgit2 will pack: what the sources reach and the remote does not have.
    let mut walk = repo.revwalk()?;
    let mut sources = 0;
    for spec in specs {
        let source = spec.trim_start_matches('+').split_once(':').map_or(spec.as_str(), |(s, _)| s);
        if let Ok(commit) = repo.revparse_single(source).and_then(|o| o.peel_to_commit()) {
            walk.push(commit.id())?;
            sources += 1;
        }
    }
    let mut reused: HashSet<Oid> = HashSet::new();
    if sources > 0 {
        for &h in &hidden {
            walk.hide(h)?;
        }
        let mut compared: HashSet<(Oid, Oid)> = HashSet::new();
        for commit in walk {
            let tree = repo.find_commit(commit?)?.tree_id();
            for &base in &base_trees {
                reused_from(repo, base, tree, &mut compared, &mut reused)?;
            }
        }
    }
    // The flat tree of reused objects (each as a file entry: libgit2 marks a file's id without reading it), then
    // each hidden commit with that tree in place of its own.
    let mut listed: Vec<Oid> = reused.into_iter().collect();
    listed.sort();
    let mut tree = Vec::with_capacity(listed.len() * 36);
    for (i, id) in listed.iter().enumerate() {
        tree.extend_from_slice(format!("100644 {i:08x}\0").as_bytes());
        tree.extend_from_slice(id.as_bytes());
    }
    let tree_id = Oid::hash_object(ObjectType::Tree, &tree)?;
    let view_odb = view.odb()?;
    let store = view_odb.add_new_mempack_backend(1000)?;
    put(&store, tree_id, ObjectType::Tree, &tree)?;
    let mut commits = 0;
    let hex = tree_id.to_string();
    for &h in &hidden {
        let object = odb.read(h)?;
        let data = object.data();
        // `tree <40 hex digits>\n` opens every commit; any other shape is left alone (libgit2 then walks it whole).
        if data.len() < 46 || !data.starts_with(b"tree ") || data[45] != b'\n' {
            continue;
        }
        let mut copy = Vec::with_capacity(data.len());
        copy.extend_from_slice(b"tree ");
        copy.extend_from_slice(hex.as_bytes());
        copy.extend_from_slice(&data[45..]);
        put(&store, h, ObjectType::Commit, &copy)?;
        commits += 1;
    }
    // The copies are read under their commits' ids, which libgit2 checks only when told to (`init_libgit2` tells it
    // not to, for the whole process; so does this, for a caller that did not call it).
    git2::opts::strict_hash_verification(false);
    Ok(Narrowed { commits, reused: listed.len(), ms: started.elapsed().as_millis() })
}

/// Adds to `out` the entries of the tree `new` that are in the tree `base` under the same name, walking down only
/// where both hold a directory and the two differ. `compared` holds the pairs walked already.
fn reused_from(
    repo: &Repository,
    base: Oid,
    new: Oid,
    compared: &mut HashSet<(Oid, Oid)>,
    out: &mut HashSet<Oid>,
) -> Result<(), git2::Error> {
    if new == base {
        out.insert(new);
        return Ok(());
    }
    if !compared.insert((new, base)) {
        return Ok(());
    }
    crate::rawtree::walk(&repo.odb()?, new, Some(base), crate::rawtree::Show::All, |e| {
        let Some(before) = e.before else { return Ok(false) };
        if before == e.id {
            out.insert(e.id);
            return Ok(false);
        }
        Ok(e.tree && compared.insert((e.id, before)))
    })
}

/// Stores `data` in the in-memory store `store` as the object `id` of kind `kind`.
#[allow(unsafe_code)]
fn put(store: &Mempack<'_>, id: Oid, kind: ObjectType, data: &[u8]) -> Result<(), git2::Error> {
    let backend = store.raw();
    // SAFETY: `backend` is the in-memory store libgit2 made and added to the view's object store, which owns it and
    // outlives this call (`store` borrows it); its write function copies `data`, and `id` and `data` outlive the
    // call.
    let code = unsafe {
        match (*backend).write {
            Some(write) => write(backend, id.raw(), data.as_ptr().cast(), data.len(), kind.raw()),
            None => -1,
        }
    };
    if code < 0 {
        return Err(git2::Error::from_str(&format!("cannot keep object {id} in memory for the push")));
    }
    Ok(())
}
