use std::path::Path;
use std::process::Command;

use git2::{ObjectType, Oid, Repository};

use super::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=T", "-c", "user.email=t@localhost", "-c", "gc.auto=0"])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repo whose objects make deltas of every kind: 40 commits that each change a line of a text file, a few of a
/// 500-entry directory, and a 300 KiB file; an empty file; a 100 KiB file of bytes that do not compress.
fn history(dir: &Path) -> std::path::PathBuf {
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("apps")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let mut noise = 0x1234_5678u64;
    let bytes: Vec<u8> = (0..100 * 1024)
        .map(|_| {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            noise as u8
        })
        .collect();
    std::fs::write(work.join("noise.bin"), bytes).unwrap();
    std::fs::write(work.join("empty"), b"").unwrap();
    for round in 0..40 {
        let text: String =
            (0..200).map(|l| format!("line {l} of round {}\n", if l == round { round } else { 0 })).collect();
        std::fs::write(work.join("text.yaml"), text).unwrap();
        let big: String =
            (0..10_000).map(|l| format!("{l:06} {}\n", if l % 1000 == round { round } else { 0 })).collect();
        std::fs::write(work.join("big.txt"), big).unwrap();
        for app in (round * 7..round * 7 + 30).map(|a| a % 500) {
            std::fs::write(work.join("apps").join(format!("app-{app:03}")), format!("version {round}\n")).unwrap();
        }
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", &format!("round {round}")]);
    }
    git(&work, &["tag", "-a", "-m", "a tag", "v1"]);
    work.join(".git")
}

/// The repo at `git_dir` (with a work tree or bare) read through this store.
fn ours(git_dir: &Path) -> Repository {
    let repo = Repository::open(git_dir).unwrap();
    attach(&repo).unwrap();
    repo
}

fn all_ids(git_dir: &Path) -> Vec<Oid> {
    git(git_dir, &["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"])
        .lines()
        .map(|l| Oid::from_str(l).unwrap())
        .collect()
}

/// Every object reads the same through this store as through libgit2's own: kind, bytes, header.
fn same_as_libgit2(git_dir: &Path) -> usize {
    let theirs = Repository::open(git_dir).unwrap();
    let mine = ours(git_dir);
    let (a, b) = (theirs.odb().unwrap(), mine.odb().unwrap());
    let ids = all_ids(git_dir);
    for &id in &ids {
        let (x, y) = (a.read(id).unwrap(), b.read(id).unwrap_or_else(|e| panic!("{id}: {e}")));
        assert_eq!(x.kind(), y.kind(), "{id}");
        assert_eq!(x.data(), y.data(), "{id}");
        assert_eq!(a.read_header(id).unwrap(), b.read_header(id).unwrap(), "{id}");
        assert!(b.exists(id));
    }
    ids.len()
}

#[test]
fn every_object_of_a_delta_compressed_pack_reads_as_libgit2_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["repack", "-adfq", "--depth=50", "--window=50"]);
    let deltas = git(&git_dir, &["verify-pack", "-v", &pack_files(&git_dir)[0]]);
    assert!(deltas.lines().filter(|l| l.split_whitespace().count() == 7).count() > 50, "the pack has deltas");
    assert!(same_as_libgit2(&git_dir) > 200);
}

#[test]
fn deltas_on_a_base_named_by_id_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["-c", "repack.useDeltaBaseOffset=false", "repack", "-adfq", "--depth=50", "--window=50"]);
    assert!(same_as_libgit2(&git_dir) > 200);
}

#[test]
fn loose_objects_and_several_packs_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    // Packs of parts of the history, and the newest commit's objects left loose.
    git(&git_dir, &["repack", "-dq"]);
    let work = git_dir.parent().unwrap();
    std::fs::write(work.join("later"), b"loose").unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "later"]);
    assert!(same_as_libgit2(&git_dir) > 200);
}

fn pack_files(git_dir: &Path) -> Vec<String> {
    let mut packs: Vec<String> = std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    packs.sort();
    packs
}

#[test]
fn packs_written_and_removed_after_opening_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["repack", "-adq"]);
    let repo = ours(&git_dir);
    let head = repo.head().unwrap().peel_to_commit().unwrap().id();
    let work = git_dir.parent().unwrap();
    std::fs::write(work.join("new"), b"a new file").unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "new"]);
    // The new objects in a second pack, then everything rolled into one and the old packs removed.
    git(&git_dir, &["repack", "-dq"]);
    let new = Oid::from_str(git(work, &["rev-parse", "HEAD"]).trim()).unwrap();
    let blob = Oid::from_str(git(work, &["rev-parse", "HEAD:new"]).trim()).unwrap();
    assert_eq!(repo.find_blob(blob).unwrap().content(), b"a new file", "a miss looks at the folder again");
    git(&git_dir, &["repack", "-adq"]);
    assert_eq!(pack_files(&git_dir).len(), 1);
    repo.odb().unwrap().refresh().unwrap();
    assert_eq!(repo.find_commit(new).unwrap().parent_id(0).unwrap(), head);
    assert!(repo.find_commit(head).is_ok());
}

#[test]
fn a_missing_object_is_not_found_and_a_short_id_finds_its_object() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["repack", "-adq"]);
    let repo = ours(&git_dir);
    let odb = repo.odb().unwrap();
    let missing = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
    assert!(!odb.exists(missing));
    assert_eq!(odb.read(missing).err().map(|e| e.code()), Some(git2::ErrorCode::NotFound));
    let head = repo.head().unwrap().peel_to_commit().unwrap().id();
    let short = Oid::from_str(&head.to_string()[..9]).unwrap();
    assert_eq!(odb.exists_prefix(short, 9).unwrap(), head);
    assert_eq!(repo.revparse_single(&head.to_string()[..9]).unwrap().id(), head);
    let none = Oid::from_str("0123456789").unwrap();
    assert_eq!(odb.exists_prefix(none, 10).err().map(|e| e.code()), Some(git2::ErrorCode::NotFound));
}

#[test]
fn a_pack_received_through_the_store_is_read_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = history(dir.path());
    let dest = dir.path().join("dest.git");
    Repository::init_bare(&dest).unwrap();
    let repo = open(&dest).unwrap();
    let pack = Command::new("git")
        .arg("-C")
        .arg(&source)
        .args(["pack-objects", "--all", "--stdout", "-q"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(pack.status.success());
    let odb = repo.odb().unwrap();
    let mut writer = odb.packwriter().unwrap();
    std::io::Write::write_all(&mut writer, &pack.stdout).unwrap();
    writer.commit().unwrap();
    odb.refresh().unwrap();
    let theirs = Repository::open(&source).unwrap();
    for id in all_ids(&source) {
        assert_eq!(odb.read(id).unwrap().data(), theirs.odb().unwrap().read(id).unwrap().data(), "{id}");
    }
    let fsck =
        Command::new("git").arg("--git-dir").arg(&dest).args(["fsck", "--strict", "--no-dangling"]).output().unwrap();
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
}

#[test]
fn a_damaged_pack_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["repack", "-adq"]);
    let ids = all_ids(&git_dir);
    let pack = &pack_files(&git_dir)[0];
    let len = std::fs::metadata(pack).unwrap().len();
    let mut perms = std::fs::metadata(pack).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(pack, perms).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(pack).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let repo = ours(&git_dir);
    let odb = repo.odb().unwrap();
    // The pack is now shorter than its index says: either it is not read at all or its later objects fail.
    let failed = ids.iter().filter(|&&id| odb.read(id).is_err()).count();
    assert!(failed > 0 && failed <= ids.len());
}

/// The point of the store: reading every object of a repo leaves no pack file mapped into the process.
#[cfg(target_os = "linux")]
#[test]
fn reading_every_object_maps_no_pack_file() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["repack", "-adq"]);
    let repo = ours(&git_dir);
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    for c in walk {
        let tree = repo.find_commit(c.unwrap()).unwrap().tree().unwrap();
        tree.walk(git2::TreeWalkMode::PreOrder, |_, e| {
            if e.kind() == Some(ObjectType::Blob) {
                repo.find_blob(e.id()).unwrap();
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
    }
    assert_eq!(mapped_packs(&git_dir), Vec::<String>::new());
    // libgit2's own store maps them: the check above would see it.
    let theirs = Repository::open(&git_dir).unwrap();
    theirs.find_commit(repo.head().unwrap().target().unwrap()).unwrap();
    assert!(!mapped_packs(&git_dir).is_empty(), "libgit2 maps its packs");
}

/// The lines of this process's memory map that map a file of the repo's pack folder.
#[cfg(target_os = "linux")]
fn mapped_packs(git_dir: &Path) -> Vec<String> {
    let folder = git_dir.join("objects/pack").canonicalize().unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().filter(|l| l.contains(folder.to_str().unwrap())).map(str::to_owned).collect()
}

/// A pack being written beside the repo's packs (the writer's, a roll-up's, a fetch's: a temporary index of a few
/// bytes so far, or one without its pack) does not send a repo opened meanwhile to libgit2's own store.
#[cfg(target_os = "linux")]
#[test]
fn an_index_being_written_leaves_the_store_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["repack", "-adq"]);
    let folder = git_dir.join("objects/pack");
    std::fs::write(folder.join("tmp_railyard_1_0.idx"), b"\xfftO").unwrap();
    std::fs::write(folder.join("pack-0123456789abcdef0123456789abcdef01234567.idx"), b"").unwrap();
    let repo = ours(&git_dir);
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.message().ok(), Some("round 39\n"));
    assert_eq!(mapped_packs(&git_dir), Vec::<String>::new(), "read through libgit2's own store");
}

/// The big packs' path: ids sampled every `stride`, the rest read from the index file; every id is found, and reads
/// as libgit2 reads it; ids not in the pack and short ids are answered right at every block's edges.
#[test]
fn a_sampled_index_finds_every_object_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["repack", "-adfq", "--depth=50", "--window=50"]);
    let idx = std::path::PathBuf::from(pack_files(&git_dir)[0].replace(".pack", ".idx"));
    let theirs = Repository::open(&git_dir).unwrap();
    let odb = theirs.odb().unwrap();
    let mut ids = all_ids(&git_dir);
    ids.sort();
    let no_other = |_: &pack::Id| Ok(None);
    for stride in [1, 2, 7, 64, 100_000] {
        let p = pack::Pack::open_with_stride(&idx, Some(stride)).unwrap();
        for (i, id) in ids.iter().enumerate() {
            let raw: pack::Id = id.as_bytes().try_into().unwrap();
            assert_eq!(p.position(&raw).unwrap(), Some(i as u32), "stride {stride}, {id}");
            let (kind, data) = p.read_at(p.find(&raw).unwrap().unwrap(), &no_other).unwrap();
            let object = odb.read(*id).unwrap();
            assert_eq!(
                (i32::from(kind), data.as_slice()),
                (object.kind().raw(), object.data()),
                "stride {stride}, {id}"
            );
            // The ids just below and just above this one are not in the pack (but for its neighbours).
            for delta in [-1i32, 1] {
                let mut near = raw;
                let last = near[19] as i32 + delta;
                if !(0..=255).contains(&last) {
                    continue;
                }
                near[19] = last as u8;
                let expected = ids.iter().position(|x| x.as_bytes() == near).map(|i| i as u32);
                assert_eq!(p.position(&near).unwrap(), expected, "stride {stride}");
            }
            let found = p.with_prefix(&raw, 12).unwrap();
            assert_eq!(found, vec![raw], "stride {stride}, a 12-digit prefix of {id}");
        }
        assert_eq!(p.position(&[0; 20]).unwrap(), None);
        assert_eq!(p.position(&[0xff; 20]).unwrap(), None);
        assert_eq!(
            p.with_prefix(&[0; 20], 1).unwrap().len(),
            ids.iter().filter(|i| i.as_bytes()[0] < 0x10).count().min(2)
        );
    }
}

/// A repo with a version 1 pack index (git before 1.5.2) is left to libgit2's own store, which reads it.
#[test]
fn a_repo_with_a_version_1_pack_index_keeps_libgit2s_store() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = history(dir.path());
    git(&git_dir, &["repack", "-adq"]);
    let pack = pack_files(&git_dir)[0].clone();
    let idx = pack.replace(".pack", ".idx");
    std::fs::remove_file(&idx).unwrap();
    git(&git_dir, &["index-pack", "--index-version=1", "-o", &idx, &pack]);
    let repo = ours(&git_dir);
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.message().ok(), Some("round 39\n"));
    assert!(same_as_libgit2(&git_dir) > 200);
}
