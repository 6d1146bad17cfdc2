//! Keeping reads fast as the writer's packs accumulate (one per batch): in the background, the small packs are
//! rolled up into one, the way `git repack --geometric=2 -d` does. The new pack holds every object of the packs it
//! replaces and is on disk (synced) before they are removed, so no object a ref or a pending tag needs is ever
//! missing; a kill at any point leaves either the old packs, or the old and the new (the same objects twice), and a
//! half-written temporary file that the next run removes. Writes never wait for it: the writer only adds packs,
//! and this only removes packs it has replaced.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Consolidate once there are more packs than this.
pub const MAX_PACKS: usize = 8;
/// Each pack kept must hold at least this many times the objects of all smaller packs together.
const FACTOR: u64 = 2;

/// One pack: its index file and how many objects it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pack {
    idx: PathBuf,
    objects: u64,
}

/// What a consolidation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rolled {
    pub packs_before: usize,
    pub rolled_up: usize,
    pub objects: usize,
    /// Whole objects the new pack stores as deltas of their newer versions.
    pub new_deltas: usize,
}

fn pack_dir(repo_dir: &Path) -> PathBuf {
    repo_dir.join("objects").join("pack")
}

/// The object count a pack index names (its last fan-out entry), without reading the ids.
fn idx_count(path: &Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(8 + 255 * 4))?;
    let mut n = [0u8; 4];
    f.read_exact(&mut n)?;
    Ok(u32::from_be_bytes(n).into())
}

/// Every pack of the repo that is not marked `.keep`, smallest first.
fn packs(repo_dir: &Path) -> std::io::Result<Vec<Pack>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(pack_dir(repo_dir))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("idx") || path.with_extension("keep").exists() {
            continue;
        }
        if !path.with_extension("pack").exists() {
            continue;
        }
        out.push(Pack { objects: idx_count(&path)?, idx: path });
    }
    out.sort_by_key(|p| p.objects);
    Ok(out)
}

/// How many of the smallest packs to roll up, geometric-progression style: the fewest such that every pack kept
/// holds at least `FACTOR` times the objects of all packs smaller than it (the rolled-up one included). 0: the packs
/// already form such a progression.
fn to_roll(packs: &[Pack]) -> usize {
    let mut below = 0u64;
    let mut last_failing = None;
    for (j, p) in packs.iter().enumerate() {
        if j > 0 && p.objects < FACTOR * below {
            last_failing = Some(j);
        }
        below += p.objects;
    }
    last_failing.map_or(0, |j| j + 1)
}

/// How many of the smallest packs a consolidation rolls up: [`to_roll`]'s count, or, where the packs already form a
/// progression but are too many, all but the largest. That one then holds at least twice the objects of all the
/// others together, so the roll-up costs less than half of it, and what is left is two packs in progression; rolling
/// it up too would rewrite the whole repo (on a repo of 10,000 uploads a roll-up of seconds, during which a few
/// hundred new packs piled up).
fn roll_count(packs: &[Pack]) -> usize {
    match to_roll(packs) {
        0 => packs.len().saturating_sub(1),
        n => n,
    }
}

/// At start, before the writer runs: removes half packs a kill left (a `.pack` without its `.idx`, from a kill
/// between a roll-up's removal of an index and its pack or inside the pack writer's commit; an `.idx` or `.rev`
/// without its `.pack`). Neither half is read: a batch's branch moves only after its whole pack is on disk, and a
/// roll-up removes packs only after the pack replacing them is complete and synced. Only halves older than `age`
/// go: another process fetching into the repo (an external `railyard-export` reconciling) commits a pack's index
/// just before its pack, and that moment must not be taken for a kill.
pub fn remove_half_packs(repo_dir: &Path, age: Duration) {
    let dir = pack_dir(repo_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else { continue };
        let partner = match ext {
            "pack" => "idx",
            "idx" | "rev" => "pack",
            _ => continue,
        };
        if !name.starts_with("pack-") || path.with_extension(partner).exists() || !older_than(&entry, age) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(file = %path.display(), "removed half a pack a killed process left"),
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "could not remove half a pack"),
        }
    }
}

/// When the file was last modified (unknown: the epoch).
fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Whether the file was last modified longer than `age` ago (unknown times: no).
fn older_than(entry: &std::fs::DirEntry, age: Duration) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d > age)
}

/// How old a temporary pack file must be before a roll-up, or a start beside an external exporter whose fetch may be
/// writing one, takes it for a killed process's.
pub const TEMPORARIES_QUIET_FOR: Duration = Duration::from_secs(600);

/// Removes temporary pack files a killed consolidation (or writer) left, once they are older than `age`: zero at
/// start with nothing else writing into the repo, [`TEMPORARIES_QUIET_FOR`] otherwise.
pub fn remove_stale_temporaries(repo_dir: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(pack_dir(repo_dir)) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let temporary = name.starts_with("tmp_") || name.starts_with("pack_git") || name.ends_with(".lock");
        if temporary && older_than(&entry, age) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "removed a temporary pack file a killed process left"),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not remove a stale temporary pack file")
                }
            }
        }
    }
}

/// Rolls the small packs of `repo_dir` up into one when there are more than `max_packs`. Returns what it did.
pub fn consolidate(
    repo_dir: &Path,
    max_packs: usize,
    sync: impl Fn() -> Result<(), git2::Error>,
) -> Result<Rolled, git2::Error> {
    let io = |e: std::io::Error| git2::Error::from_str(&format!("pack folder: {e}"));
    remove_stale_temporaries(repo_dir, TEMPORARIES_QUIET_FOR);
    let all = packs(repo_dir).map_err(io)?;
    let mut done = Rolled { packs_before: all.len(), ..Rolled::default() };
    if all.len() <= max_packs {
        return Ok(done);
    }
    let n = roll_count(&all);
    let mut chosen = all[..n].to_vec();
    // The newest first: the merge writes a path's newer versions before the older ones it stores as deltas of them.
    chosen.sort_by_key(|p| std::cmp::Reverse(modified(&p.idx.with_extension("pack"))));
    let idx_paths: Vec<PathBuf> = chosen.iter().map(|p| p.idx.clone()).collect();
    let merged = at_low_priority(|| crate::merge::merge(repo_dir, &idx_paths))?;
    let written = Some(format!("pack-{}.idx", merged.name));
    // The new pack is durable before any pack it replaces goes.
    sync()?;
    for p in chosen {
        if written.as_deref() == p.idx.file_name().and_then(|n| n.to_str()) {
            continue;
        }
        // The index first: a pack without one is ignored by readers; the other way round it would be an error.
        for file in [p.idx.clone(), p.idx.with_extension("pack"), p.idx.with_extension("rev")] {
            if let Err(e) = std::fs::remove_file(&file) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %file.display(), error = %e, "could not remove a rolled-up pack");
                }
            }
        }
    }
    done.rolled_up = n;
    done.objects = merged.objects;
    done.new_deltas = merged.new_deltas;
    Ok(done)
}

/// Runs `work` on a thread of its own at the lowest CPU priority (nice 19) and waits for it. A roll-up (copying the
/// packs it replaces, reading the trees its commits changed and computing their deltas) then takes only the CPU that
/// the writer, the requests and the pushes leave.
fn at_low_priority<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    at_priority(19, work)
}

/// Puts the calling thread at the lowest CPU priority (nice 19), for good: a thread of its own that only does
/// background work.
pub fn lowest_priority_here() {
    lower_nice(19);
}

/// Runs `work` on a thread of its own at nice `nice` (Linux keeps a nice value per thread, and a thread may not
/// raise its priority again, so a thread of a pool never gets one) and waits for it; elsewhere at the caller's.
pub fn at_priority<T: Send>(nice: i32, work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            lower_nice(nice);
            work()
        });
        worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Sets the calling thread's nice value (Linux; elsewhere nothing).
fn lower_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
        tracing::debug!(error = %e, nice, "could not lower a background thread's priority; it runs at normal priority");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Flushes the filesystem that holds `dir` (Linux; elsewhere a no-op): what was written there is durable.
pub fn sync_dir(dir: &Path) -> Result<(), git2::Error> {
    #[cfg(target_os = "linux")]
    {
        let f = std::fs::File::open(dir)
            .map_err(|e| git2::Error::from_str(&format!("cannot open {}: {e}", dir.display())))?;
        rustix::fs::syncfs(&f)
            .map_err(|e| git2::Error::from_str(&format!("cannot sync {} to disk: {e}", dir.display())))?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    Ok(())
}

/// A remote on this machine gets one pack per push (the objects the push adds): after a push, the thread that made
/// it rolls the remote's small packs up the same way, so that a push (which opens the remote and looks objects up
/// in every pack) does not get slower with every push before it. In the pushing thread, never beside it: nothing
/// else in this process touches that repo meanwhile.
pub fn roll_up_remote(dir: &Path) {
    // A roll-up runs once there are twice the packs allowed locally, so that pushes do not roll the same few packs
    // up again and again.
    match consolidate(dir, 2 * MAX_PACKS, || sync_dir(dir)) {
        Ok(r) if r.rolled_up > 0 => tracing::debug!(
            packs_before = r.packs_before,
            rolled_up = r.rolled_up,
            objects = r.objects,
            "rolled the local remote's small packs up into one"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(remote = %dir.display(), error = %e, "could not roll the local remote's packs up; will try after the next push")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(objects: u64) -> Pack {
        Pack { idx: PathBuf::from(format!("{objects}.idx")), objects }
    }

    /// The roll-up's own thread runs at nice 19, an export round's at nice 10; the caller's priority is left as it
    /// was.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_roll_up_runs_at_the_lowest_priority_and_leaves_the_callers_alone() {
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = nice();
        assert_eq!(at_low_priority(nice), 19);
        assert_eq!(nice(), before);
        // (A thread already at a lower priority may not be able to take 10.)
        let round = at_priority(crate::exporter::EXPORT_NICE, nice);
        assert!(round == 10 || (before > 10 && round == before), "nice {round}");
        assert_eq!(nice(), before);
    }

    #[test]
    fn the_small_packs_are_rolled_up_and_a_dominant_one_is_kept() {
        // 1+1+2+3 = 7 objects below 100: the 100 is kept, the four small ones are rolled up.
        assert_eq!(to_roll(&[p(1), p(1), p(2), p(3), p(100)]), 4);
        // Already geometric: nothing to do.
        assert_eq!(to_roll(&[p(1), p(4), p(16)]), 0);
        // All about the same size: roll all of them.
        assert_eq!(to_roll(&[p(5), p(5), p(6), p(6)]), 4);
    }

    #[test]
    fn too_many_packs_in_progression_leave_the_largest_alone() {
        // 1, 3, 9, …, 6561: each at least twice all below it. Nine packs are too many; the eight small ones (3,280
        // objects) are rolled up, not the 6,561 of the largest.
        let progression: Vec<Pack> = (0..9).map(|k| p(3u64.pow(k))).collect();
        assert_eq!(to_roll(&progression), 0);
        assert_eq!(roll_count(&progression), 8);
        // Out of progression, to_roll's count stands, the largest included where it must be.
        assert_eq!(roll_count(&[p(1), p(1), p(2), p(3), p(100)]), 4);
        assert_eq!(roll_count(&[p(5), p(5), p(6), p(6)]), 4);
    }

    #[test]
    fn a_consolidation_keeps_every_object_and_leaves_fewer_packs() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let mut ids = Vec::new();
        for i in 0..20 {
            let mut pb = repo.packbuilder().unwrap();
            for j in 0..3 {
                let id = repo.blob(format!("blob {i} {j}").as_bytes()).unwrap();
                pb.insert_object(id, None).unwrap();
                ids.push(id);
            }
            pb.write(&pack_dir(dir.path()), 0o444).unwrap();
        }
        // The loose copies go: only the packs hold the objects now.
        std::fs::read_dir(dir.path().join("objects"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().len() == 2)
            .for_each(|e| std::fs::remove_dir_all(e.path()).unwrap());
        assert_eq!(packs(dir.path()).unwrap().len(), 20);
        let rolled = consolidate(dir.path(), 4, || Ok(())).unwrap();
        assert_eq!(rolled.packs_before, 20);
        let after = packs(dir.path()).unwrap();
        assert!(after.len() <= 4, "{} packs left: {after:?}", after.len());
        let fresh = git2::Repository::open_bare(dir.path()).unwrap();
        for id in ids {
            assert!(fresh.find_blob(id).is_ok(), "object {id} lost");
        }
    }
}
