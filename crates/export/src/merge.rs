//! One pack written from several, for a roll-up ([`crate::packs::consolidate`]): every entry is copied as it is
//! stored (a delta's base offset rewritten to the new pack's), never inflated, deflated or hashed again: the ids and
//! offsets come from the packs' indexes, so the new index is written without reading the objects.
//!
//! Deltas: the writer stores each batch's objects whole, so the roll-up is where a directory that changed in one
//! entry stops costing its whole size again. For each commit in the packs, the trees and blobs it replaced (walked
//! only where its tree differs from its parent's) are written as deltas against the versions that replaced them, so
//! the newest version of a path stays whole and is read without resolving anything; a tree's delta is found entry by
//! entry (a copy of each run of unchanged entries), a blob's from its common start and end. Chains stop at
//! [`MAX_DEPTH`]. This replaced libgit2's pack builder, which searched every pair in a window of ten for deltas
//! (recomputing those the packs already held) and whose indexer then inflated and hashed every object again: at
//! 10,000 applications that was half the CPU of a run of deploys, and tens of MiB.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::objects::{out_failed, PackOut};
use git2::{Oid, Repository};

use railyard_store::pack::{parse_header, HeaderBase, BLOB, COMMIT, OFS_DELTA, TAG, TREE};

/// The longest chain of deltas a new delta may end (git's default `--depth`).
pub const MAX_DEPTH: u32 = 50;
/// Objects smaller than this are never made deltas: the saving would be a few bytes.
const DELTA_FROM: u64 = 1024;

/// What a merge wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The new pack's checksum in hex (its files are `pack-<name>.pack` and `.idx`).
    pub name: String,
    /// Distinct objects in it.
    pub objects: usize,
    /// Whole objects it stores as deltas against their newer versions.
    pub new_deltas: usize,
}

/// The base of a stored delta.
#[derive(Debug, Clone, Copy)]
enum Base {
    None,
    /// The entry (an index into [`Sources::entries`]) at the offset an `OFS_DELTA` names.
    Entry(usize),
    /// The object an `REF_DELTA` names.
    Id(Oid),
}

/// One entry of a source pack.
#[derive(Debug)]
struct Entry {
    src: usize,
    offset: u64,
    /// Bytes from its header to the next entry.
    len: u64,
    id: Oid,
    kind: u8,
    /// The size its header names (a delta's own, for a delta).
    size: u64,
    /// Bytes of the type-and-size header (an `OFS_DELTA`'s offset follows them).
    size_len: usize,
    /// Bytes before the deflated data (the size header, and an offset or a base id).
    header_len: usize,
    base: Base,
}

impl Entry {
    fn whole(&self) -> bool {
        matches!(self.kind, COMMIT | TREE | BLOB | TAG)
    }
}

struct Sources {
    files: Vec<File>,
    entries: Vec<Entry>,
    /// The first entry of each id, in the order the packs were given.
    first: HashMap<Oid, usize>,
}

impl Sources {
    /// The id of the base a stored delta is made from (None for a whole entry).
    fn stored_base(&self, e: &Entry) -> Option<Oid> {
        match e.base {
            Base::Entry(b) => Some(self.entries[b].id),
            Base::Id(id) => Some(id),
            Base::None => None,
        }
    }
}

fn bad(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()))
}

/// The ids and entry offsets of a version 2 pack index.
pub(crate) fn read_index(path: &Path) -> io::Result<Vec<(Oid, u64)>> {
    let data = std::fs::read(path)?;
    if data.len() < 8 + 256 * 4 || data[..4] != [0xff, b't', b'O', b'c'] || data[4..8] != [0, 0, 0, 2] {
        return Err(bad(path, "not a pack index v2"));
    }
    let word = |at: usize| -> io::Result<u32> {
        data.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad(path, "a pack index cut short"))
    };
    let count = word(8 + 255 * 4)? as usize;
    let ids_at = 8 + 256 * 4;
    let offsets_at = ids_at + count * 24;
    let large_at = offsets_at + count * 4;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let raw = data.get(ids_at + i * 20..ids_at + i * 20 + 20).ok_or_else(|| bad(path, "a pack index cut short"))?;
        let id = Oid::from_bytes(raw).map_err(|e| bad(path, e))?;
        let small = word(offsets_at + i * 4)?;
        let offset = if small & 0x8000_0000 == 0 {
            u64::from(small)
        } else {
            let at = large_at + (small & 0x7fff_ffff) as usize * 8;
            let b = data.get(at..at + 8).ok_or_else(|| bad(path, "a pack index cut short"))?;
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        };
        out.push((id, offset));
    }
    Ok(out)
}

/// The entries of the packs whose indexes are `idx_paths`.
fn read_sources(idx_paths: &[PathBuf]) -> io::Result<Sources> {
    let mut s = Sources { files: Vec::new(), entries: Vec::new(), first: HashMap::new() };
    for (src, idx) in idx_paths.iter().enumerate() {
        let pack_path = idx.with_extension("pack");
        let file = File::open(&pack_path)?;
        let pack_len = file.metadata()?.len();
        let mut listed = read_index(idx)?;
        listed.sort_by_key(|&(_, offset)| offset);
        let start = s.entries.len();
        let mut at_offset = HashMap::with_capacity(listed.len());
        for (k, &(id, offset)) in listed.iter().enumerate() {
            let end = listed.get(k + 1).map_or(pack_len.saturating_sub(20), |&(_, next)| next);
            if offset < 12 || end <= offset {
                return Err(bad(&pack_path, format!("an entry at {offset} that ends at {end}")));
            }
            let mut h = [0u8; 64];
            let n = file.read_at(&mut h[..(end - offset).min(64) as usize], offset)?;
            let header =
                parse_header(&h[..n]).ok_or_else(|| bad(&pack_path, format!("a damaged entry header at {offset}")))?;
            let base = match header.base {
                HeaderBase::Back(back) => {
                    let target = offset.checked_sub(back).filter(|_| back > 0);
                    match target.and_then(|t| at_offset.get(&t)) {
                        Some(&e) => Base::Entry(e),
                        None => return Err(bad(&pack_path, format!("the delta at {offset} has no base in its pack"))),
                    }
                }
                HeaderBase::Id(raw) => Base::Id(Oid::from_bytes(&raw).map_err(|e| bad(&pack_path, e))?),
                HeaderBase::None => Base::None,
            };
            at_offset.insert(offset, start + k);
            s.first.entry(id).or_insert(start + k);
            let (kind, size, size_len, header_len) = (header.kind, header.size, header.size_len, header.header_len);
            s.entries.push(Entry { src, offset, len: end - offset, id, kind, size, size_len, header_len, base });
        }
        s.files.push(file);
    }
    // A delta by id must find its base among these packs: the new pack is read on its own.
    for e in &s.entries {
        if let Base::Id(base) = e.base {
            if !s.first.contains_key(&base) {
                return Err(bad(
                    &idx_paths[e.src],
                    format!("the delta of {} has its base {base} in no pack merged", e.id),
                ));
            }
        }
    }
    Ok(s)
}

/// The (older, newer) versions of each path that the commits among these packs changed, newest commits first:
/// candidates for storing the older as a delta against the newer.
fn replaced_versions(repo: &Repository, s: &Sources) -> Result<Vec<(Oid, Oid)>, git2::Error> {
    let commits: Vec<Oid> = s.first.iter().filter(|&(_, &e)| s.entries[e].kind == COMMIT).map(|(&id, _)| id).collect();
    let mut parent_of = HashMap::new();
    for &c in &commits {
        if let Some(p) = repo.find_commit(c)?.parent_ids().next() {
            parent_of.insert(c, p);
        }
    }
    let parents: HashSet<Oid> = parent_of.values().copied().collect();
    // Newest first: from each commit no other here descends from, down its first parents.
    let mut order = Vec::with_capacity(commits.len());
    let mut listed = HashSet::new();
    let mut heads: Vec<Oid> = commits.iter().copied().filter(|c| !parents.contains(c)).collect();
    heads.sort();
    for head in heads {
        let mut at = Some(head);
        while let Some(c) = at.filter(|c| s.first.contains_key(c) && listed.insert(*c)) {
            order.push(c);
            at = parent_of.get(&c).copied();
        }
    }
    let odb = repo.odb()?;
    let mut pairs = Vec::new();
    for c in order {
        let Some(parent) = parent_of.get(&c) else { continue };
        let Ok(parent) = repo.find_commit(*parent) else { continue };
        let (new, old) = (repo.find_commit(c)?.tree_id(), parent.tree_id());
        if new == old {
            continue;
        }
        crate::rawtree::walk(&odb, new, Some(old), crate::rawtree::Show::Changed, |e| {
            let Some(before) = e.before else { return Ok(false) };
            if before == e.id || e.gitlink || !s.first.contains_key(&e.id) {
                return Ok(false);
            }
            if s.first.contains_key(&before) {
                pairs.push((before, e.id));
            }
            Ok(true)
        })?;
    }
    Ok(pairs)
}

/// Which whole objects become deltas, and against what: each older version of a pair, where it is whole here,
/// large enough, no stored delta's base, not made a delta already, and its chain (through the newer version's)
/// would neither loop back to it nor be longer than [`MAX_DEPTH`].
fn plan(s: &Sources, pairs: &[(Oid, Oid)]) -> HashMap<Oid, Oid> {
    let bases: HashSet<Oid> = s.entries.iter().filter_map(|e| s.stored_base(e)).collect();
    let mut planned: HashMap<Oid, Oid> = HashMap::new();
    for &(old, new) in pairs {
        let e = &s.entries[s.first[&old]];
        if planned.contains_key(&old) || bases.contains(&old) || !e.whole() || e.size < DELTA_FROM {
            continue;
        }
        // The chain from `new`: through planned deltas and stored ones.
        let (mut at, mut depth, mut ok) = (new, 1u32, true);
        loop {
            if at == old || depth > MAX_DEPTH {
                ok = false;
                break;
            }
            match planned.get(&at).copied().or_else(|| s.stored_base(&s.entries[s.first[&at]])) {
                Some(n) => {
                    at = n;
                    depth += 1;
                }
                None => break,
            }
        }
        if ok {
            planned.insert(old, new);
        }
    }
    planned
}

/// Writes the packs whose indexes are `idx_paths` (the newest first: a path's newer version comes before the older
/// ones made deltas against it) into `repo_dir` as one pack with its index; the packs are left as they are.
/// Not synced: the caller syncs before it removes them.
pub fn merge(repo_dir: &Path, idx_paths: &[PathBuf]) -> Result<Merged, git2::Error> {
    let s = read_sources(idx_paths).map_err(|e| out_failed("reading the packs to roll up", e))?;
    let repo = railyard_store::open(repo_dir)?;
    let pairs = replaced_versions(&repo, &s)?;
    let mut planned = plan(&s, &pairs);
    let odb = repo.odb()?;

    let dir = repo_dir.join("objects").join("pack");
    let count = u32::try_from(s.first.len()).map_err(|_| git2::Error::from_str("too many objects for one pack"))?;
    let mut out = PackOut::create(&dir, count)?;

    // Where each id went, and the index's (id, offset, CRC-32) rows.
    let mut written: HashMap<Oid, u64> = HashMap::with_capacity(s.first.len());
    let mut rows = Vec::with_capacity(s.first.len());
    let mut visiting: HashSet<Oid> = HashSet::new();
    let mut buf = Vec::new();
    let mut new_deltas = 0;
    for start in 0..s.entries.len() {
        if s.first[&s.entries[start].id] != start {
            continue;
        }
        // Bases before what is made of them (an offset delta's base must precede it).
        let mut stack = vec![start];
        while let Some(&e) = stack.last() {
            let entry = &s.entries[e];
            let id = entry.id;
            if written.contains_key(&id) {
                stack.pop();
                continue;
            }
            let base = planned.get(&id).copied().filter(|_| entry.whole()).or_else(|| s.stored_base(entry));
            if let Some(b) = base.filter(|b| !written.contains_key(b)) {
                if visiting.contains(&b) {
                    // A loop (two versions each planned against the other): this one stays whole.
                    if planned.remove(&id).is_some() {
                        continue;
                    }
                    return Err(git2::Error::from_str(&format!("the deltas of {id} and {b} name each other")));
                }
                visiting.insert(id);
                stack.push(s.first[&b]);
                continue;
            }
            visiting.remove(&id);
            stack.pop();
            let at = out.start_entry();
            let as_delta = match planned.get(&id).filter(|_| entry.whole()) {
                Some(b) => delta_of(&odb, id, *b, entry.kind)?,
                None => None,
            };
            let files = &s.files[entry.src];
            match (as_delta, entry.kind) {
                (Some(delta), _) => {
                    let mut h = Vec::with_capacity(24);
                    crate::objects::entry_header(&mut h, OFS_DELTA, delta.len());
                    back_offset(&mut h, at - written[&planned[&id]]);
                    out.put(&h)?;
                    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                    z.write_all(&delta).map_err(|e| out_failed("deflating", e))?;
                    out.put(&z.finish().map_err(|e| out_failed("deflating", e))?)?;
                    new_deltas += 1;
                }
                (None, OFS_DELTA) => {
                    // The size header as it was, the offset to where the base is now, the deflated delta as it was.
                    read_entry(files, entry, &mut buf).map_err(|e| out_failed("reading a pack", e))?;
                    let Base::Entry(b) = entry.base else { unreachable!("an offset delta has an entry for its base") };
                    let mut h = buf[..entry.size_len].to_vec();
                    back_offset(&mut h, at - written[&s.entries[b].id]);
                    out.put(&h)?;
                    out.put(&buf[entry.header_len..])?;
                }
                (None, _) => {
                    read_entry(files, entry, &mut buf).map_err(|e| out_failed("reading a pack", e))?;
                    out.put(&buf)?;
                }
            }
            written.insert(id, at);
            rows.push((id, at, out.entry_crc()));
        }
    }
    let (tmp, checksum) = out.finish()?;
    let index = crate::objects::pack_index(&mut rows, &checksum);
    let name = Oid::from_bytes(&checksum)?.to_string();
    crate::objects::install_pack(&dir, &tmp, &index, &name)?;
    Ok(Merged { name, objects: rows.len(), new_deltas })
}

/// The raw bytes of `entry` (header and deflated data) into `buf`.
fn read_entry(files: &File, entry: &Entry, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.resize(entry.len as usize, 0);
    files.read_exact_at(buf, entry.offset)
}

/// `id` as a delta against `base` (both of `kind`), when that is less than half its size.
fn delta_of(odb: &git2::Odb<'_>, id: Oid, base: Oid, kind: u8) -> Result<Option<Vec<u8>>, git2::Error> {
    let (target, source) = (odb.read(id)?, odb.read(base)?);
    let (target, source) = (target.data(), source.data());
    let delta =
        (if kind == TREE { tree_delta(source, target) } else { None }).unwrap_or_else(|| ends_delta(source, target));
    Ok((delta.len() < target.len() / 2).then_some(delta))
}

/// An offset delta's distance back to its base, as git encodes it: 7 bits per byte, highest first, each byte but the
/// last with its top bit set, and one added at each byte but the last.
fn back_offset(out: &mut Vec<u8>, mut back: u64) {
    let mut bytes = vec![(back & 0x7f) as u8];
    back >>= 7;
    while back > 0 {
        back -= 1;
        bytes.push(0x80 | (back & 0x7f) as u8);
        back >>= 7;
    }
    out.extend(bytes.iter().rev());
}

/// git's delta instructions, built up: the sizes, then copies from the base and inserted bytes.
struct Delta {
    out: Vec<u8>,
    pending: Vec<u8>,
}

impl Delta {
    fn new(base_len: usize, target_len: usize) -> Delta {
        let mut out = Vec::with_capacity(64);
        for mut n in [base_len, target_len] {
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
        }
        Delta { out, pending: Vec::new() }
    }

    fn insert(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    fn flush(&mut self) {
        for chunk in self.pending.chunks(0x7f) {
            self.out.push(chunk.len() as u8);
            self.out.extend_from_slice(chunk);
        }
        self.pending.clear();
    }

    /// Copies `len` bytes of the base from `from`, in instructions of at most 64 KiB (as git writes them).
    fn copy(&mut self, mut from: usize, mut len: usize) {
        self.flush();
        while len > 0 {
            let n = len.min(0x10000);
            let mut op = 0x80u8;
            let mut args = Vec::with_capacity(7);
            for k in 0..4 {
                let b = ((from >> (8 * k)) & 0xff) as u8;
                if b != 0 {
                    op |= 1 << k;
                    args.push(b);
                }
            }
            for k in 0..3 {
                let b = ((n >> (8 * k)) & 0xff) as u8;
                if b != 0 {
                    op |= 0x10 << k;
                    args.push(b);
                }
            }
            self.out.push(op);
            self.out.extend_from_slice(&args);
            from += n;
            len -= n;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

/// The entries of a raw tree: (start, end, name) of each `<mode> <name>\0<20-byte id>`; None if it is not one.
fn tree_entries(raw: &[u8]) -> Option<Vec<(usize, usize, &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let space = at + raw[at..].iter().position(|&b| b == b' ')?;
        let nul = space + raw[space..].iter().position(|&b| b == 0)?;
        let end = nul + 1 + 20;
        if end > raw.len() {
            return None;
        }
        out.push((at, end, &raw[space + 1..nul]));
        at = end;
    }
    Some(out)
}

/// `target` as a delta against `base`, both trees: each entry of `target` that `base` holds byte for byte is a copy
/// (runs of them one copy), the others are inserted. A change of one entry in 10,000 costs a few dozen bytes, and so
/// does each further entry changed wherever it is.
fn tree_delta(base: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    let old: HashMap<&[u8], (usize, usize)> =
        tree_entries(base)?.into_iter().map(|(start, end, name)| (name, (start, end))).collect();
    let mut d = Delta::new(base.len(), target.len());
    let mut run: Option<(usize, usize)> = None;
    for (start, end, name) in tree_entries(target)? {
        match old.get(name).filter(|&&(s, e)| base[s..e] == target[start..end]) {
            Some(&(s, e)) => {
                run = match run {
                    Some((from, len)) if from + len == s => Some((from, len + e - s)),
                    Some((from, len)) => {
                        d.copy(from, len);
                        Some((s, e - s))
                    }
                    None => Some((s, e - s)),
                }
            }
            None => {
                if let Some((from, len)) = run.take() {
                    d.copy(from, len);
                }
                d.insert(&target[start..end]);
            }
        }
    }
    if let Some((from, len)) = run {
        d.copy(from, len);
    }
    Some(d.finish())
}

/// `target` as a delta against `base`: their common start and end copied, what lies between inserted.
fn ends_delta(base: &[u8], target: &[u8]) -> Vec<u8> {
    let prefix = base.iter().zip(target).take_while(|(a, b)| a == b).count();
    let room = base.len().min(target.len()) - prefix;
    let suffix = base.iter().rev().zip(target.iter().rev()).take(room).take_while(|(a, b)| a == b).count();
    let mut d = Delta::new(base.len(), target.len());
    if prefix > 0 {
        d.copy(0, prefix);
    }
    d.insert(&target[prefix..target.len() - suffix]);
    if suffix > 0 {
        d.copy(base.len() - suffix, suffix);
    }
    d.finish()
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
