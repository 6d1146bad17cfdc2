//! Objects a commit adds to a repo that holds its parent, found by walking the new tree only where it differs from
//! the parent's; and a pack of objects written straight into an object store. A push to a remote on this machine
//! copies exactly the objects its commits add: the cost grows with the change, not with the repo (libgit2's own push
//! marks every tree of the remote's head before it packs anything). The writer packs each batch the same way, with
//! the objects its stage reports (`Stage::take_added`) instead of a walk.

use std::collections::HashSet;

use git2::{ObjectType, Oid, Repository};

/// Appends to `out` the commit `new` and the trees and blobs of its tree that differ from `base`'s tree (a commit;
/// None: every object) and for which `known` is false. `seen` is shared across calls, so an object is listed once.
///
/// An object in `seen` is not walked again, so what lies under it must be listed (or known) already: `base` must
/// be known or have been passed to an earlier call, that is, the calls go oldest commit first. (Newest first, a
/// directory two commits both hold, at different paths, was walked beside the later commit's parent only, where
/// its entries that parent shares were skipped, and then skipped as seen in the earlier commit that added them.)
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
    let root = commit.tree_id();
    if Some(root) == old_tree || !seen.insert(root) || known(root) {
        return Ok(());
    }
    out.push(root);
    crate::rawtree::walk(&repo.odb()?, root, old_tree, crate::rawtree::Show::Changed, |e| {
        if e.before == Some(e.id) || e.gitlink || !seen.insert(e.id) || known(e.id) {
            return Ok(false);
        }
        out.push(e.id);
        Ok(true)
    })
}

/// Packs `ids` (objects of `repo`) into the repo `dest` as one pack of whole objects, with its index, as
/// `objects/pack/pack-<checksum>.{pack,idx}`. Nothing is written when `ids` is empty. Not synced: the caller's sync
/// follows.
///
/// No deltas and little compression: a batch's objects are few and new, and the roll-ups (`merge`) store the
/// versions they replace as deltas later, off the writer's path. Objects under [`STORED_ABOVE`]
/// are deflated at zlib's fastest level; larger ones (a directory of hundreds of entries, which are mostly ids that
/// do not compress) are stored. The index is written from the ids already known, so nothing is inflated or hashed
/// again (libgit2's pack builder searched for deltas and deflated at the default level; its indexer then inflated
/// and hashed every object once more: for a 10,000-entry tree, each of those cost milliseconds).
pub fn pack_into(repo: &Repository, ids: &[Oid], dest: &Repository) -> Result<(), git2::Error> {
    use std::io::Write;
    if ids.is_empty() {
        return Ok(());
    }
    let count = u32::try_from(ids.len()).map_err(|_| git2::Error::from_str("too many objects for one pack"))?;
    let source = repo.odb()?;
    let dir = dest.path().join("objects").join("pack");
    let mut out = PackOut::create(&dir, count)?;
    // (id, offset of its entry, CRC-32 of its entry), for the index.
    let mut entries = Vec::with_capacity(ids.len());
    let mut head = Vec::with_capacity(16);
    for &id in ids {
        let object = source.read(id)?;
        let kind: u8 = match object.kind() {
            ObjectType::Commit => 1,
            ObjectType::Tree => 2,
            ObjectType::Blob => 3,
            ObjectType::Tag => 4,
            other => return Err(git2::Error::from_str(&format!("object {id} has kind {other}, which no pack holds"))),
        };
        let offset = out.start_entry();
        head.clear();
        entry_header(&mut head, kind, object.data().len());
        out.put(&head)?;
        let level =
            if object.data().len() > STORED_ABOVE { flate2::Compression::none() } else { flate2::Compression::fast() };
        // Deflated straight into the file: a batch's pack (a train's holds tens of MiB) is never held whole.
        let mut z = flate2::write::ZlibEncoder::new(&mut out, level);
        z.write_all(object.data()).and_then(|_| z.finish().map(|_| ())).map_err(|e| out_failed("deflating", e))?;
        entries.push((id, offset, out.entry_crc()));
    }
    let (tmp, checksum) = out.finish()?;
    let index = pack_index(&mut entries, &checksum);
    install_pack(&dir, &tmp, &index, &Oid::from_bytes(&checksum)?.to_string())?;
    // The store looks at the pack folder again, so that it sees the new pack before any miss makes it look.
    dest.odb()?.refresh()
}

pub(crate) fn out_failed(what: &str, e: std::io::Error) -> git2::Error {
    git2::Error::from_str(&format!("{what}: {e}"))
}

/// A pack being written to a temporary file in a pack folder: its checksum over every byte so far, and the CRC-32 of
/// the entry being written (for the index). Dropped before [`PackOut::finish`], it removes its file.
pub(crate) struct PackOut {
    file: Option<std::io::BufWriter<std::fs::File>>,
    path: std::path::PathBuf,
    sha: sha1::Sha1,
    crc: flate2::Crc,
    at: u64,
}

impl PackOut {
    /// A new temporary pack file in `dir`, its header (`count` objects) written.
    pub(crate) fn create(dir: &std::path::Path, count: u32) -> Result<PackOut, git2::Error> {
        use sha1::Digest;
        let path = tempfile_in(dir, "pack");
        let file = std::fs::File::create(&path).map_err(|e| out_failed("writing the pack", e))?;
        let mut out = PackOut {
            file: Some(std::io::BufWriter::with_capacity(256 * 1024, file)),
            path,
            sha: sha1::Sha1::new(),
            crc: flate2::Crc::new(),
            at: 0,
        };
        let mut head = Vec::with_capacity(12);
        head.extend_from_slice(b"PACK");
        head.extend_from_slice(&2u32.to_be_bytes());
        head.extend_from_slice(&count.to_be_bytes());
        out.put(&head)?;
        Ok(out)
    }

    /// Where the next entry starts; its CRC-32 starts there too.
    pub(crate) fn start_entry(&mut self) -> u64 {
        self.crc = flate2::Crc::new();
        self.at
    }

    /// The CRC-32 of the entry since [`PackOut::start_entry`].
    pub(crate) fn entry_crc(&self) -> u32 {
        self.crc.sum()
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), git2::Error> {
        std::io::Write::write_all(self, bytes).map_err(|e| out_failed("writing the pack", e))
    }

    /// Writes the checksum; the temporary file's path and the checksum.
    pub(crate) fn finish(mut self) -> Result<(std::path::PathBuf, [u8; 20]), git2::Error> {
        use sha1::Digest;
        let checksum: [u8; 20] = std::mem::take(&mut self.sha).finalize().into();
        let mut file = self.file.take().ok_or_else(|| git2::Error::from_str("the pack was finished already"))?;
        std::io::Write::write_all(&mut file, &checksum).map_err(|e| out_failed("writing the pack", e))?;
        file.into_inner().map_err(|e| out_failed("writing the pack", e.into_error()))?;
        Ok((std::mem::take(&mut self.path), checksum))
    }
}

impl std::io::Write for PackOut {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        use sha1::Digest;
        let file = self.file.as_mut().ok_or_else(|| std::io::Error::other("the pack was finished already"))?;
        let n = file.write(bytes)?;
        self.sha.update(&bytes[..n]);
        self.crc.update(&bytes[..n]);
        self.at += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for PackOut {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Names the finished pack at `tmp` `pack-<name>.pack` in `dir` and writes its `index` beside it, both read-only:
/// the pack first, then its index, since readers ignore a pack without one. A kill before the renames leaves
/// `tmp_*` files, which `packs::remove_stale_temporaries` removes once they are old.
pub(crate) fn install_pack(
    dir: &std::path::Path,
    tmp: &std::path::Path,
    index: &[u8],
    name: &str,
) -> Result<(), git2::Error> {
    let idx_tmp = tempfile_in(dir, "idx");
    let done = (|| {
        std::fs::write(&idx_tmp, index)?;
        for path in [tmp, idx_tmp.as_path()] {
            let mut perms = std::fs::metadata(path)?.permissions();
            perms.set_readonly(true);
            std::fs::set_permissions(path, perms)?;
        }
        std::fs::rename(tmp, dir.join(format!("pack-{name}.pack")))?;
        std::fs::rename(&idx_tmp, dir.join(format!("pack-{name}.idx")))
    })();
    done.map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        let _ = std::fs::remove_file(&idx_tmp);
        out_failed("installing the pack", e)
    })
}

/// An object larger than this is stored in a batch's pack, not deflated (see [`pack_into`]).
pub const STORED_ABOVE: usize = 16 * 1024;

/// A fresh temporary file name in `dir` (`tmp_railyard_<pid>_<n>.<ext>`), not yet created. `objects/pack` exists
/// in every repo git or libgit2 initializes, so it is not looked for on every batch.
pub(crate) fn tempfile_in(dir: &std::path::Path, ext: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!("tmp_railyard_{}_{n}.{ext}", std::process::id()))
}

/// A pack index, version 2, of `entries` (id, offset, CRC-32; sorted here by id) for the pack whose checksum is
/// `pack_checksum`: the 256-entry fan-out, the ids, their CRCs, their offsets (31 bits, or an index into the table
/// of 64-bit ones that follows), the pack's checksum and the index's own.
pub(crate) fn pack_index(entries: &mut [(Oid, u64, u32)], pack_checksum: &[u8; 20]) -> Vec<u8> {
    use sha1::Digest;
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::with_capacity(8 + 256 * 4 + entries.len() * 28 + 40);
    out.extend_from_slice(&[0xff, b't', b'O', b'c', 0, 0, 0, 2]);
    let mut fanout = [0u32; 256];
    for (id, _, _) in entries.iter() {
        fanout[usize::from(id.as_bytes()[0])] += 1;
    }
    let mut total = 0u32;
    for n in fanout {
        total += n;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for (id, _, _) in entries.iter() {
        out.extend_from_slice(id.as_bytes());
    }
    for (_, _, crc) in entries.iter() {
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for &(_, offset, _) in entries.iter() {
        let small = match u32::try_from(offset) {
            Ok(o) if o < 0x8000_0000 => o,
            _ => {
                large.push(offset);
                0x8000_0000 | (large.len() as u32 - 1)
            }
        };
        out.extend_from_slice(&small.to_be_bytes());
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(pack_checksum);
    let own: [u8; 20] = sha1::Sha1::digest(&out).into();
    out.extend_from_slice(&own);
    out
}

/// A pack entry's header: the kind in bits 4–6 of the first byte, the inflated size below it, 4 bits and then 7 per
/// byte, low bits first, each byte but the last with its top bit set.
pub(crate) fn entry_header(out: &mut Vec<u8>, kind: u8, size: usize) {
    let mut byte = (kind << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest > 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

/// Copies into `remote` every object of the commits from `new` back to (not including) `have`, a commit `remote`
/// holds, that `remote` lacks: each commit's tree is walked only where it differs from its first parent's. With
/// `have` None (or not in this repo), the walk stops at commits `remote` already holds.
pub fn send_objects(repo: &Repository, remote: &Repository, have: Option<Oid>, new: Oid) -> Result<usize, git2::Error> {
    let theirs = remote.odb()?;
    // No rescan of the pack folder per miss: a pack written since this handle looked only makes an object be sent twice.
    let known = |id: Oid| theirs.exists_ext(id, git2::OdbLookupFlags::NO_REFRESH);
    let mut walk = repo.revwalk()?;
    // Oldest first: each commit's parent is known or listed before the commit is walked (see `added_objects`).
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
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
    pack_into(repo, &ids, remote)?;
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects of every kind and of sizes on each side of the header's byte boundaries (4 bits, then 7 per byte)
    /// reach the other store byte for byte, as one pack that plain git checks clean.
    #[test]
    fn a_pack_of_whole_objects_is_read_back_byte_for_byte_and_git_fsck_is_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from.git"), dir.path().join("to.git"));
        let (repo, dest) = (Repository::init_bare(&from).unwrap(), Repository::init_bare(&to).unwrap());
        let mut ids = Vec::new();
        let mut tree = repo.treebuilder(None).unwrap();
        for (i, size) in [0usize, 1, 15, 16, 2047, 2048, 262_143, 262_144, 3_000_000].into_iter().enumerate() {
            let content: Vec<u8> = (0..size).map(|b| (b * 31 + i * 7 % 251) as u8).collect();
            let blob = repo.blob(&content).unwrap();
            tree.insert(format!("f{i}"), blob, 0o100644).unwrap();
            ids.push(blob);
        }
        let tree = tree.write().unwrap();
        let commit = commit_on(&repo, tree, None, "one\n");
        ids.extend([tree, commit]);
        pack_into(&repo, &ids, &dest).unwrap();
        let packs: Vec<_> = std::fs::read_dir(to.join("objects/pack")).unwrap().flatten().collect();
        assert_eq!(packs.len(), 2, "one pack and its index: {packs:?}");
        let (source, copy) = (repo.odb().unwrap(), dest.odb().unwrap());
        for id in &ids {
            let (a, b) = (source.read(*id).unwrap(), copy.read(*id).unwrap());
            assert_eq!((a.kind(), a.data()), (b.kind(), b.data()), "{id}");
        }
        dest.reference("refs/heads/main", commit, true, "test").unwrap();
        assert_fsck_clean(&to);
    }

    /// Asserts plain git finds the repo at `dir` clean (`git fsck --strict`; dangling objects are no error).
    fn assert_fsck_clean(dir: &std::path::Path) {
        let mut fsck = std::process::Command::new("git");
        let fsck = fsck.args(["fsck", "--strict", "--no-dangling"]).current_dir(dir).output().expect("git");
        assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    }

    /// Commits the tree `tree` on `parent` (None: a root commit), the branch left as it is.
    fn commit_on(repo: &Repository, tree: Oid, parent: Option<Oid>, message: &str) -> Oid {
        let sig = git2::Signature::new("T", "t@localhost", &git2::Time::new(0, 0)).unwrap();
        let parents: Vec<_> = parent.map(|p| repo.find_commit(p).unwrap()).into_iter().collect();
        let tree = repo.find_tree(tree).unwrap();
        repo.commit(None, &sig, &sig, message, &tree, &parents.iter().collect::<Vec<_>>()).unwrap()
    }

    /// A local repo and an empty remote beside it, in `dir`.
    fn local_and_remote(dir: &std::path::Path) -> (Repository, Repository) {
        (Repository::init_bare(dir.join("local.git")).unwrap(), Repository::init_bare(dir.join("remote.git")).unwrap())
    }

    /// Two commits sent together, where the second swaps two directories the first added (each now where the
    /// other was): the entry both directories share, which only the first commit adds, reaches the remote. Walked
    /// newest first, the second commit's walk listed each directory and skipped their shared entry as "the
    /// parent's at that path", and the first commit's walk then skipped both directories as listed already: the
    /// remote got trees naming a blob it never got (`git fsck`: missing, broken link).
    #[test]
    fn commits_sent_together_that_move_a_directory_leave_the_remote_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, remote) = local_and_remote(dir.path());
        let blob = |s: &str| repo.blob(s.as_bytes()).unwrap();
        let dir_of = |entries: &[(&str, Oid)]| {
            let mut t = repo.treebuilder(None).unwrap();
            for (name, id) in entries {
                t.insert(name, *id, 0o100644).unwrap();
            }
            t.write().unwrap()
        };
        let commit_of = |dirs: &[(&str, Oid)], parent: Option<Oid>| {
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("README", blob("r"), 0o100644).unwrap();
            for (name, id) in dirs {
                root.insert(name, *id, 0o040000).unwrap();
            }
            commit_on(&repo, root.write().unwrap(), parent, "c\n")
        };
        let base = commit_of(&[], None);
        assert!(send_objects(&repo, &remote, None, base).unwrap() > 0);
        let shared = blob("in both");
        let u = dir_of(&[("a", shared), ("b", blob("u"))]);
        let t = dir_of(&[("a", shared), ("b", blob("t"))]);
        let first = commit_of(&[("x", u), ("z", t)], Some(base));
        let second = commit_of(&[("x", t), ("z", u)], Some(first));
        send_objects(&repo, &remote, Some(base), second).unwrap();
        remote.reference("refs/heads/main", second, true, "test").unwrap();
        let odb = remote.odb().unwrap();
        for id in [first, second, u, t, shared] {
            assert!(odb.exists(id), "the remote lacks {id}");
        }
        assert_fsck_clean(&dir.path().join("remote.git"));
    }

    /// Random histories pushed a few commits at a time leave the remote whole: every object under every commit it
    /// holds is there. Each commit sets some of a root's directories to a new directory, to a copy of another
    /// directory (of this tree or an earlier one), to a nested one, or removes them; directories share files.
    #[test]
    fn random_histories_sent_a_few_commits_at_a_time_leave_the_remote_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, remote) = local_and_remote(dir.path());
        let mut rand = crate::rawtree::lcg(7);
        let blobs: Vec<Oid> = (0..6).map(|i| repo.blob(format!("file {i}").as_bytes()).unwrap()).collect();
        let names = ["a", "b", "c", "d", "e"];
        let mut made: Vec<Oid> = Vec::new();
        let mut slots: Vec<Option<Oid>> = vec![None; names.len()];
        let (mut sent, mut head): (Option<Oid>, Option<Oid>) = (None, None);
        let mut since_sent = 0;
        for n in 0..300 {
            for _ in 0..1 + rand(3) {
                let slot = rand(names.len());
                slots[slot] = match rand(5) {
                    0 => None,
                    1 if !made.is_empty() => Some(made[rand(made.len())]),
                    2 => slots[rand(names.len())],
                    k => {
                        let mut t = repo.treebuilder(None).unwrap();
                        for name in names.iter().take(1 + rand(4)) {
                            t.insert(name, blobs[rand(blobs.len())], 0o100644).unwrap();
                        }
                        if k == 3 && !made.is_empty() {
                            t.insert("sub", made[rand(made.len())], 0o040000).unwrap();
                        }
                        let id = t.write().unwrap();
                        made.push(id);
                        Some(id)
                    }
                };
            }
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("README", blobs[0], 0o100644).unwrap();
            for (name, id) in names.iter().zip(&slots) {
                if let Some(id) = id {
                    root.insert(name, *id, 0o040000).unwrap();
                }
            }
            head = Some(commit_on(&repo, root.write().unwrap(), head, &format!("{n}\n")));
            since_sent += 1;
            if rand(4) == 0 || n == 299 {
                send_objects(&repo, &remote, sent, head.unwrap()).unwrap();
                sent = head;
                assert_whole(&remote, head.unwrap(), since_sent);
                since_sent = 0;
            }
        }
    }

    /// Asserts `remote` holds `commit`, its ancestors and every object under their trees.
    fn assert_whole(remote: &Repository, commit: Oid, sent: usize) {
        let odb = remote.odb().unwrap();
        let mut walk = remote.revwalk().unwrap();
        walk.push(commit).unwrap();
        let mut checked = HashSet::new();
        for c in walk {
            let mut trees = vec![remote.find_commit(c.unwrap()).unwrap().tree_id()];
            while let Some(t) = trees.pop() {
                if !checked.insert(t) {
                    continue;
                }
                let tree = remote.find_tree(t).unwrap_or_else(|e| panic!("after {sent} commits sent: tree {t}: {e}"));
                for entry in tree.iter() {
                    assert!(odb.exists(entry.id()), "after {sent} commits sent: {} lacks {}", t, entry.id());
                    if entry.kind() == Some(ObjectType::Tree) {
                        trees.push(entry.id());
                    }
                }
            }
        }
    }

    /// A commit that adds, removes and changes entries of a big directory lists exactly the new objects: the walk's
    /// positional guess survives entries shifting either way.
    #[test]
    fn added_objects_lists_exactly_what_a_commit_adds_when_entries_shift() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let commit_of = |files: &[(String, Vec<u8>)], parent: Option<Oid>| {
            let mut big = repo.treebuilder(None).unwrap();
            for (name, content) in files {
                big.insert(name, repo.blob(content).unwrap(), 0o100644).unwrap();
            }
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("apps", big.write().unwrap(), 0o040000).unwrap();
            commit_on(&repo, root.write().unwrap(), parent, "c\n")
        };
        let mut files: Vec<(String, Vec<u8>)> = (0..500).map(|i| (format!("app-{i:03}"), vec![b'a'; i % 7])).collect();
        let base = commit_of(&files, None);
        files.remove(100); // every later entry shifts down by one…
        files.insert(300, ("app-299a".into(), b"new".to_vec())); // …and back up
        files[400].1 = b"changed".to_vec();
        let new = commit_of(&files, Some(base));
        let (mut seen, mut ids) = (HashSet::new(), Vec::new());
        added_objects(&repo, Some(base), new, &|_| false, &mut seen, &mut ids).unwrap();
        let c = repo.find_commit(new).unwrap();
        let apps = c.tree().unwrap().get_name("apps").unwrap().id();
        let blob = |n: &str| repo.find_tree(apps).unwrap().get_name(n).unwrap().id();
        let want: HashSet<Oid> = [new, c.tree_id(), apps, blob("app-299a"), blob("app-400")].into();
        assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), want);
        assert_eq!(ids.len(), want.len(), "each object once");
    }
}
