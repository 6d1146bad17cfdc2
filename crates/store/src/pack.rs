//! One pack and its index (version 2), read with positioned reads (`pread`), never mapped.
//!
//! The index is not kept in memory either: only every [`SAMPLE`]th id of it, so that a lookup reads one block of
//! [`SAMPLE`] ids and one offset. For a pack of 5 million objects that is 1.6 MiB of samples instead of a 142 MiB
//! mapping, all of which a few thousand lookups make resident (the kernel maps a page-cache folio of up to 2 MiB at
//! a time). A small pack (a recent batch's) keeps all its ids, so that a lookup that misses it reads nothing.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::cache;

/// One id out of this many is kept in memory; a lookup reads the block of ids between two samples.
pub const SAMPLE: usize = 64;

/// A pack of at most this many objects has all its ids in memory (2.5 MiB at most): the small packs of recent
/// batches are looked in first, and most lookups miss them, which then costs no read.
pub const ALL_IDS_UP_TO: u32 = 128 * 1024;

/// An object id (SHA-1).
pub type Id = [u8; 20];

/// The kinds of object a pack holds, numbered as git numbers them (and as libgit2's `git_object_t` does).
pub const COMMIT: u8 = 1;
pub const TREE: u8 = 2;
pub const BLOB: u8 = 3;
pub const TAG: u8 = 4;
pub const OFS_DELTA: u8 = 6;
pub const REF_DELTA: u8 = 7;

/// Reads a delta's base by id from the other packs: its kind and data.
pub type OtherObject<'a> = dyn Fn(&Id) -> io::Result<Option<(u8, Vec<u8>)>> + 'a;
/// Reads a delta's base's kind and size by id from the other packs.
pub type OtherHeader<'a> = dyn Fn(&Id) -> io::Result<Option<(u8, usize)>> + 'a;

/// Chains longer than this are taken for a loop in a damaged pack (git writes at most 4,095 deep).
const MAX_CHAIN: usize = 10_000;

fn corrupt(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// An opened pack: its two files and the sampled ids of its index.
pub struct Pack {
    /// A number no other pack of this process has (the delta-base cache's key).
    key: u64,
    idx_path: PathBuf,
    idx: ClosedAside,
    pack: ClosedAside,
    count: u32,
    /// Every `stride`-th id (1: all of them).
    sample: Vec<Id>,
    stride: usize,
    /// Where the index's ids, offsets and 64-bit offsets start.
    ids_at: u64,
    offsets_at: u64,
    large_at: u64,
    /// The pack's length less its trailing checksum: no entry starts at or beyond it.
    entries_end: u64,
    modified: SystemTime,
}

/// A pack's open file, closed by another thread when the pack is let go ([`close_aside`]).
struct ClosedAside(Option<File>);

impl std::ops::Deref for ClosedAside {
    type Target = File;

    fn deref(&self) -> &File {
        self.0.as_ref().expect("a pack's file is taken only when the pack is dropped")
    }
}

impl Drop for ClosedAside {
    fn drop(&mut self) {
        if let Some(file) = self.0.take() {
            close_aside(file);
        }
    }
}

/// Closes `file` on a thread of its own (or here, if that thread cannot be started).
///
/// A pack is let go when a roll-up has removed it, so closing its file frees its blocks, in the closing thread. On a
/// filesystem that discards freed blocks at once (ext4 mounted with `discard` and no journal, as on many VMs), that
/// thread waits for the device, behind its other writes: at 10,000 applications the writer, which lets go of the
/// packs a roll-up replaced when it next looks at the folder, waited up to tens of milliseconds there.
fn close_aside(file: File) {
    static CLOSER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<File>>> = std::sync::OnceLock::new();
    let closer = CLOSER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<File>();
        let spawned = std::thread::Builder::new().name("railyard-closer".into()).spawn(move || {
            for file in rx {
                drop(file);
            }
        });
        spawned.ok().map(|_| tx)
    });
    if let Some(tx) = closer {
        // The closing thread never stops, so a send does not fail; if it did, the file is closed here.
        let _ = tx.send(file);
    }
}

/// A pack entry's header.
struct Entry {
    kind: u8,
    size: usize,
    /// Where its deflated data starts.
    data_at: u64,
    base: Base,
}

enum Base {
    None,
    /// A delta on the entry at this offset of the same pack.
    Offset(u64),
    /// A delta on the object with this id.
    Id(Id),
}

impl Pack {
    /// Opens the pack whose index is `idx_path` (`pack-<checksum>.idx` beside `pack-<checksum>.pack`).
    pub fn open(idx_path: &Path) -> io::Result<Pack> {
        Self::open_with_stride(idx_path, None)
    }

    /// [`Pack::open`], keeping every `stride`-th id in memory (None: all of a small pack's, else every [`SAMPLE`]th).
    pub(crate) fn open_with_stride(idx_path: &Path, stride: Option<usize>) -> io::Result<Pack> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let idx = File::open(idx_path)?;
        let pack = File::open(idx_path.with_extension("pack"))?;
        let mut head = [0u8; 8 + 256 * 4];
        idx.read_exact_at(&mut head, 0)?;
        if head[..8] != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
            return Err(corrupt(format!("{} is not a version 2 pack index", idx_path.display())));
        }
        let fanout =
            |i: usize| u32::from_be_bytes([head[8 + 4 * i], head[9 + 4 * i], head[10 + 4 * i], head[11 + 4 * i]]);
        let count = fanout(255);
        let n = u64::from(count);
        let ids_at = head.len() as u64;
        let offsets_at = ids_at + n * 20 + n * 4;
        let large_at = offsets_at + n * 4;
        let idx_len = idx.metadata()?.len();
        if idx_len < large_at + 40 {
            return Err(corrupt(format!("{} is shorter than its {count} entries", idx_path.display())));
        }
        let meta = pack.metadata()?;
        let mut pack_head = [0u8; 12];
        pack.read_exact_at(&mut pack_head, 0)?;
        let version = u32::from_be_bytes([pack_head[4], pack_head[5], pack_head[6], pack_head[7]]);
        let objects = u32::from_be_bytes([pack_head[8], pack_head[9], pack_head[10], pack_head[11]]);
        if &pack_head[..4] != b"PACK" || !(2..=3).contains(&version) || objects != count || meta.len() < 32 {
            return Err(corrupt(format!("{} does not match its index", idx_path.with_extension("pack").display())));
        }
        // Every stride-th id, read a block of ids at a time.
        let stride = stride.unwrap_or(if count <= ALL_IDS_UP_TO { 1 } else { SAMPLE }).max(1);
        let mut sample = Vec::with_capacity(count as usize / stride + 1);
        let block = SAMPLE * 1024;
        let mut buf = vec![0u8; block * 20];
        let mut first = 0usize;
        while first < count as usize {
            let len = block.min(count as usize - first);
            idx.read_exact_at(&mut buf[..len * 20], ids_at + first as u64 * 20)?;
            for i in (0..len).step_by(stride) {
                let mut id = [0u8; 20];
                id.copy_from_slice(&buf[i * 20..i * 20 + 20]);
                sample.push(id);
            }
            first += len;
        }
        Ok(Pack {
            key: NEXT.fetch_add(1, Ordering::Relaxed),
            idx_path: idx_path.to_owned(),
            idx: ClosedAside(Some(idx)),
            pack: ClosedAside(Some(pack)),
            count,
            sample,
            stride,
            ids_at,
            offsets_at,
            large_at,
            entries_end: meta.len() - 20,
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    /// A number no other pack of this process has.
    pub fn key(&self) -> u64 {
        self.key
    }

    pub fn idx_path(&self) -> &Path {
        &self.idx_path
    }

    pub fn modified(&self) -> SystemTime {
        self.modified
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The ids of index positions `first..first + len`, as one read.
    fn ids(&self, first: usize, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len * 20];
        self.idx.read_exact_at(&mut buf, self.ids_at + first as u64 * 20)?;
        Ok(buf)
    }

    /// The position of `id` in the index, if the pack has it.
    pub fn position(&self, id: &Id) -> io::Result<Option<u32>> {
        if self.stride == 1 {
            return Ok(self.sample.binary_search(id).ok().map(|i| i as u32));
        }
        let after = self.sample.partition_point(|s| s <= id);
        if after == 0 {
            return Ok(None);
        }
        let first = (after - 1) * self.stride;
        let len = self.stride.min(self.count as usize - first);
        let block = self.ids(first, len)?;
        let (mut low, mut high) = (0, len);
        while low < high {
            let mid = (low + high) / 2;
            match block[mid * 20..mid * 20 + 20].cmp(&id[..]) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(Some((first + mid) as u32)),
            }
        }
        Ok(None)
    }

    /// The offset in the pack of the entry at index position `position`.
    fn offset(&self, position: u32) -> io::Result<u64> {
        let mut small = [0u8; 4];
        self.idx.read_exact_at(&mut small, self.offsets_at + u64::from(position) * 4)?;
        let small = u32::from_be_bytes(small);
        let offset = if small & 0x8000_0000 == 0 {
            u64::from(small)
        } else {
            let mut large = [0u8; 8];
            self.idx.read_exact_at(&mut large, self.large_at + u64::from(small & 0x7fff_ffff) * 8)?;
            u64::from_be_bytes(large)
        };
        if offset < 12 || offset >= self.entries_end {
            return Err(corrupt(format!("{}: an entry offset {offset} outside the pack", self.idx_path.display())));
        }
        Ok(offset)
    }

    /// Where the object `id` starts in the pack, if the pack has it.
    pub fn find(&self, id: &Id) -> io::Result<Option<u64>> {
        self.position(id)?.map(|p| self.offset(p)).transpose()
    }

    /// Up to two ids of this pack that start with the first `hex_len` hex digits of `prefix` (ascending).
    pub fn with_prefix(&self, prefix: &Id, hex_len: usize) -> io::Result<Vec<Id>> {
        let matches = |id: &[u8]| {
            let whole = hex_len / 2;
            id[..whole] == prefix[..whole] && (hex_len.is_multiple_of(2) || id[whole] >> 4 == prefix[whole] >> 4)
        };
        // The smallest id with this prefix is at or after the prefix padded with zeros.
        let mut low = *prefix;
        for (i, b) in low.iter_mut().enumerate() {
            if i * 2 >= hex_len {
                *b = 0;
            } else if i * 2 + 1 == hex_len {
                *b &= 0xf0;
            }
        }
        let mut first = self.sample.partition_point(|s| s < &low).saturating_sub(1) * self.stride;
        let mut out = Vec::new();
        while first < self.count as usize {
            let len = self.stride.max(SAMPLE).min(self.count as usize - first);
            for id in self.ids(first, len)?.chunks_exact(20) {
                if matches(id) {
                    let mut found = [0u8; 20];
                    found.copy_from_slice(id);
                    out.push(found);
                    if out.len() == 2 {
                        return Ok(out);
                    }
                } else if id > &low[..] {
                    return Ok(out);
                }
            }
            first += len;
        }
        Ok(out)
    }

    /// Reads `buf.len()` bytes at `at`, fewer only at the end of the file.
    fn read_some(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.pack.read_at(&mut buf[done..], at + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// The header of the entry at `offset`.
    fn entry(&self, offset: u64) -> io::Result<Entry> {
        let mut h = [0u8; 64];
        let n = self.read_some(&mut h, offset)?;
        let bad = || corrupt(format!("{}: a damaged entry header at {offset}", self.idx_path.display()));
        let header = parse_header(&h[..n]).ok_or_else(bad)?;
        let base = match header.base {
            HeaderBase::None => Base::None,
            HeaderBase::Back(back) if back == 0 || back > offset => return Err(bad()),
            HeaderBase::Back(back) => Base::Offset(offset - back),
            HeaderBase::Id(id) => Base::Id(id),
        };
        let size = usize::try_from(header.size).map_err(|_| bad())?;
        Ok(Entry { kind: header.kind, size, data_at: offset + header.header_len as u64, base })
    }

    /// Inflates the zlib stream at `at` that holds `size` bytes; with `stop_after`, only its first bytes.
    fn inflate(&self, at: u64, size: usize, stop_after: Option<usize>) -> io::Result<Vec<u8>> {
        use flate2::{Decompress, FlushDecompress, Status};
        let want = stop_after.map_or(size, |s| s.min(size));
        // One byte of room beyond `size`: a stream that inflates to more than its header said is damaged.
        let mut out = Vec::with_capacity(want + 1);
        let mut z = Decompress::new(true);
        // Deflated data is rarely longer than what it holds (stored, a few bytes more): one read usually does.
        let mut chunk = vec![0u8; (want + 128).clamp(128, 256 * 1024)];
        let mut pos = at;
        let bad = |what: &str| corrupt(format!("{}: entry data at {at}: {what}", self.idx_path.display()));
        loop {
            let n = self.read_some(&mut chunk, pos)?;
            let (before_in, before_out) = (z.total_in(), z.total_out());
            let status =
                z.decompress_vec(&chunk[..n], &mut out, FlushDecompress::None).map_err(|e| bad(&e.to_string()))?;
            pos += z.total_in() - before_in;
            if out.len() > size {
                return Err(bad("longer than its header says"));
            }
            if stop_after.is_some() && out.len() >= want {
                out.truncate(want);
                return Ok(out);
            }
            match status {
                Status::StreamEnd => break,
                _ if z.total_in() == before_in && z.total_out() == before_out => {
                    return Err(bad(if n == 0 { "cut short" } else { "does not inflate" }))
                }
                _ => {}
            }
        }
        if out.len() != size {
            return Err(bad("shorter than its header says"));
        }
        Ok(out)
    }

    /// The kind and data of the entry at `offset`, its deltas applied. `other` reads a delta's base that is not in
    /// this pack (by id: a pack fixed from a thin one may name a base in another pack).
    pub fn read_at(&self, offset: u64, other: &OtherObject<'_>) -> io::Result<(u8, Vec<u8>)> {
        // Down the chain to a whole object (or one already in the cache), then the deltas applied back up.
        let mut deltas: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut at = offset;
        let (kind, mut data) = loop {
            if let Some((kind, data)) = cache::get(self.key, at) {
                break (kind, data.to_vec());
            }
            let e = self.entry(at)?;
            match e.base {
                Base::None => {
                    let data = self.inflate(e.data_at, e.size, None)?;
                    if !deltas.is_empty() {
                        cache::put(self.key, at, e.kind, &data);
                    }
                    break (e.kind, data);
                }
                Base::Offset(base) => {
                    deltas.push((at, self.inflate(e.data_at, e.size, None)?));
                    at = base;
                }
                Base::Id(id) => {
                    deltas.push((at, self.inflate(e.data_at, e.size, None)?));
                    match self.find(&id)? {
                        Some(base) => at = base,
                        None => {
                            break other(&id)?.ok_or_else(|| {
                                corrupt(format!("{}: the delta base {} is missing", self.idx_path.display(), hex(&id)))
                            })?
                        }
                    }
                }
            }
            if deltas.len() > MAX_CHAIN {
                return Err(corrupt(format!("{}: a delta chain loops at {offset}", self.idx_path.display())));
            }
        };
        while let Some((at, delta)) = deltas.pop() {
            data = apply_delta(&data, &delta)
                .map_err(|e| corrupt(format!("{}: the delta at {at}: {e}", self.idx_path.display())))?;
            cache::put(self.key, at, kind, &data);
        }
        Ok((kind, data))
    }

    /// The kind and size of the entry at `offset`, reading only headers (and the first bytes of a delta).
    pub fn header_at(&self, offset: u64, other: &OtherHeader<'_>) -> io::Result<(u8, usize)> {
        let first = self.entry(offset)?;
        let size = match first.base {
            Base::None => return Ok((first.kind, first.size)),
            // A delta begins with its base's size, then the size of what it makes.
            _ => {
                let head = self.inflate(first.data_at, first.size, Some(20))?;
                let (_, used) = varint(&head, 0).map_err(corrupt)?;
                varint(&head, used).map_err(corrupt)?.0
            }
        };
        let mut e = first;
        for _ in 0..MAX_CHAIN {
            let at = match e.base {
                Base::None => return Ok((e.kind, size)),
                Base::Offset(base) => base,
                Base::Id(id) => match self.find(&id)? {
                    Some(base) => base,
                    None => {
                        let (kind, _) = other(&id)?.ok_or_else(|| {
                            corrupt(format!("{}: the delta base {} is missing", self.idx_path.display(), hex(&id)))
                        })?;
                        return Ok((kind, size));
                    }
                },
            };
            e = self.entry(at)?;
        }
        Err(corrupt(format!("{}: a delta chain loops at {offset}", self.idx_path.display())))
    }
}

/// A size of a delta's header: 7 bits a byte, low bits first. (value, index after it)
/// A pack entry's header as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    /// The inflated size of what follows (a delta's own size, for a delta).
    pub size: u64,
    /// Bytes of the kind and size.
    pub size_len: usize,
    /// Bytes before the deflated data (the kind and size, and a delta's base).
    pub header_len: usize,
    pub base: HeaderBase,
}

/// What a delta is made from, as its header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderBase {
    None,
    /// An offset delta: how far back in its pack its base's entry starts.
    Back(u64),
    /// An id delta: its base's id.
    Id(Id),
}

/// Parses an entry's header from its first bytes (64 hold any header); None if they are not one.
pub fn parse_header(h: &[u8]) -> Option<Header> {
    let mut b = *h.first()?;
    let kind = (b >> 4) & 7;
    let mut size = u64::from(b & 0x0f);
    let (mut i, mut shift) = (1, 4);
    while b & 0x80 != 0 {
        b = *h.get(i)?;
        i += 1;
        if shift > 57 {
            return None;
        }
        size |= u64::from(b & 0x7f) << shift;
        shift += 7;
    }
    let size_len = i;
    let base = match kind {
        COMMIT | TREE | BLOB | TAG => HeaderBase::None,
        OFS_DELTA => {
            b = *h.get(i)?;
            i += 1;
            let mut back = u64::from(b & 0x7f);
            while b & 0x80 != 0 {
                b = *h.get(i)?;
                i += 1;
                back = back.checked_add(1)?.checked_mul(128)? | u64::from(b & 0x7f);
            }
            HeaderBase::Back(back)
        }
        REF_DELTA => {
            let id: Id = h.get(i..i + 20)?.try_into().ok()?;
            i += 20;
            HeaderBase::Id(id)
        }
        _ => return None,
    };
    Some(Header { kind, size, size_len, header_len: i, base })
}

fn varint(d: &[u8], mut i: usize) -> Result<(usize, usize), &'static str> {
    let (mut value, mut shift) = (0usize, 0u32);
    loop {
        let b = *d.get(i).ok_or("a size cut short")?;
        i += 1;
        if shift > 56 {
            return Err("a size too large");
        }
        value |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok((value, i));
        }
    }
}

/// Applies a git delta (base size, result size, then copy and insert instructions) to `base`.
pub fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (base_size, i) = varint(delta, 0)?;
    if base_size != base.len() {
        return Err("its base has another size");
    }
    let (size, mut i) = varint(delta, i)?;
    let mut out = Vec::with_capacity(size);
    while i < delta.len() {
        let op = delta[i];
        i += 1;
        if op & 0x80 != 0 {
            let (mut from, mut len) = (0usize, 0usize);
            for k in 0..4 {
                if op & (1 << k) != 0 {
                    from |= usize::from(*delta.get(i).ok_or("a copy cut short")?) << (8 * k);
                    i += 1;
                }
            }
            for k in 0..3 {
                if op & (0x10 << k) != 0 {
                    len |= usize::from(*delta.get(i).ok_or("a copy cut short")?) << (8 * k);
                    i += 1;
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            let part = from.checked_add(len).and_then(|end| base.get(from..end)).ok_or("a copy beyond its base")?;
            out.extend_from_slice(part);
        } else if op != 0 {
            let part = delta.get(i..i + usize::from(op)).ok_or("an insert cut short")?;
            out.extend_from_slice(part);
            i += usize::from(op);
        } else {
            return Err("an unknown instruction");
        }
        if out.len() > size {
            return Err("longer than it says");
        }
    }
    if out.len() != size {
        return Err("shorter than it says");
    }
    Ok(out)
}

/// An id in hex.
pub fn hex(id: &Id) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_copies_and_inserts() {
        let base = b"hello, world";
        // base size 12, result size 11: copy "hello" (offset 0, len 5), insert " git", copy "ld" (offset 10, len 2).
        let delta = [12, 11, 0x90, 5, 4, b' ', b'g', b'i', b't', 0x91, 10, 2];
        assert_eq!(apply_delta(base, &delta).unwrap(), b"hello gitld");
        assert!(apply_delta(b"short", &delta).is_err(), "wrong base size");
        assert!(apply_delta(base, &[12, 3, 0x91, 11, 5]).is_err(), "copy beyond the base");
        assert!(apply_delta(base, &[12, 3, 0]).is_err(), "instruction 0");
        assert!(apply_delta(base, &[12, 4, 2, b'a', b'b']).is_err(), "shorter than it says");
        assert!(apply_delta(base, &[12, 1, 2, b'a', b'b']).is_err(), "longer than it says");
        assert!(apply_delta(base, &[12]).is_err(), "cut short");
    }
}
