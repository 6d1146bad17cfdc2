//! Objects a commit adds to a repo that holds its parent, found by walking the new tree only where it differs from
//! the parent's; and a pack of them written straight into an object store. The writer packs each batch this way,
//! and a push to a remote on this machine copies exactly these objects: the cost grows with the change, not with
//! the repo (libgit2's own push marks every tree of the remote's head before it packs anything).

use std::collections::HashSet;

use git2::{ObjectType, Odb, Oid, PackBuilder, Repository};

/// Appends to `out` the commit `new` and the trees and blobs of its tree that differ from `base`'s tree (a commit;
/// None: every object) and for which `known` is false. `seen` is shared across calls, so an object is listed once.
pub fn added_objects(
    repo: &Repository,
    base: Option<Oid>,
    new: Oid,
    known: &dyn Fn(Oid) -> bool,
    seen: &mut HashSet<Oid>,
    out: &mut Vec<Oid>,
) -> Result<(), git2::Error> {
    let commit = repo.find_commit(new)?;
    let old_tree = base.map(|b| repo.find_commit(b).map(|c| c.tree_id())).transpose()?;
    if seen.insert(new) {
        out.push(new);
    }
    // Down the new tree only where it differs from the base's: an entry with the base's id is there already.
    let mut stack = vec![(commit.tree_id(), old_tree)];
    while let Some((id, old)) = stack.pop() {
        if Some(id) == old || !seen.insert(id) || known(id) {
            continue;
        }
        out.push(id);
        let tree = repo.find_tree(id)?;
        let old_tree = old.map(|o| repo.find_tree(o)).transpose()?;
        for e in tree.iter() {
            let before = old_tree.as_ref().and_then(|t| t.get_name_bytes(e.name_bytes())).map(|o| o.id());
            if before == Some(e.id()) {
                continue;
            }
            match e.kind() {
                Some(ObjectType::Tree) => stack.push((e.id(), before)),
                Some(ObjectType::Blob) if seen.insert(e.id()) && !known(e.id()) => out.push(e.id()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Writes `pack` into `dest` as one pack with its index (in `objects/pack`), through the store's pack writer;
/// returns the pack's checksum (its name). Not synced.
///
/// `PackBuilder::write` is not used: in git2 0.21 it leaks its progress callback's payload.
pub fn store_pack(dest: &Odb<'_>, pack: &mut PackBuilder<'_>) -> Result<String, git2::Error> {
    let mut buf = git2::Buf::new();
    pack.write_buf(&mut buf)?;
    let mut writer = dest.packwriter()?;
    std::io::Write::write_all(&mut writer, &buf)
        .map_err(|e| git2::Error::from_str(&format!("writing the pack: {e}")))?;
    writer.commit()?;
    let trailer = buf.len().checked_sub(20).map(|at| &buf[at..]).unwrap_or_default();
    Ok(trailer.iter().map(|b| format!("{b:02x}")).collect())
}

/// Packs `ids` (objects of `repo`) into `dest`. Nothing is written when `ids` is empty.
pub fn pack_into(repo: &Repository, ids: &[Oid], dest: &Odb<'_>) -> Result<(), git2::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut pack = repo.packbuilder()?;
    pack.set_threads(1);
    for id in ids {
        pack.insert_object(*id, None)?;
    }
    store_pack(dest, &mut pack).map(|_| ())
}

/// Copies into `remote` every object of the commits from `new` back to (not including) `have`, a commit `remote`
/// holds, that `remote` lacks: each commit's tree is walked only where it differs from its first parent's. With
/// `have` None (or not in this repo), the walk stops at commits `remote` already holds.
pub fn send_objects(repo: &Repository, remote: &Repository, have: Option<Oid>, new: Oid) -> Result<usize, git2::Error> {
    let theirs = remote.odb()?;
    // No rescan of the pack folder per miss: a pack written since this handle looked only makes an object be sent twice.
    let known = |id: Oid| theirs.exists_ext(id, git2::OdbLookupFlags::NO_REFRESH);
    let mut walk = repo.revwalk()?;
    walk.push(new)?;
    if let Some(h) = have.filter(|h| repo.find_commit(*h).is_ok()) {
        walk.hide(h)?;
    }
    let (mut seen, mut ids) = (HashSet::new(), Vec::new());
    for commit in walk {
        let commit = commit?;
        if known(commit) {
            continue;
        }
        let parent = repo.find_commit(commit)?.parent_ids().next();
        added_objects(repo, parent, commit, &known, &mut seen, &mut ids)?;
    }
    pack_into(repo, &ids, &theirs)?;
    Ok(ids.len())
}
