use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use git2::{ObjectType, Oid, Repository, Signature};
use proptest::prelude::*;

use super::*;

fn git(dir: &Path, args: &[&str], input: Option<&str>) -> String {
    use std::io::Write as _;
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(dir).args(args);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("git");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or_default().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn pack_idx_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    v.sort();
    v
}

/// A tree `apps/` of `n` entries (each a blob naming its version), as the writer keeps `applications/`, with the
/// versions given; in a root tree beside a small file.
fn root_tree(repo: &Repository, versions: &[u32]) -> Oid {
    let mut apps = repo.treebuilder(None).unwrap();
    for (i, v) in versions.iter().enumerate() {
        let blob = repo.blob(format!("version {v}\n").as_bytes()).unwrap();
        apps.insert(format!("app-{i:05}"), blob, 0o100644).unwrap();
    }
    let apps = apps.write().unwrap();
    let mut root = repo.treebuilder(None).unwrap();
    root.insert("applications", apps, 0o040000).unwrap();
    root.insert("README", repo.blob(b"generated\n").unwrap(), 0o100644).unwrap();
    root.write().unwrap()
}

/// Commits `tree` on `parent` in `work` and copies its new objects into `dest` as one pack, as the writer does.
fn commit_as_pack(work: &Repository, dest: &Repository, parent: Option<Oid>, tree: Oid, n: usize) -> Oid {
    let sig = Signature::new("t", "t@t", &git2::Time::new(1_700_000_000 + n as i64, 0)).unwrap();
    let parents: Vec<git2::Commit<'_>> = parent.map(|p| work.find_commit(p).unwrap()).into_iter().collect();
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    let tree = work.find_tree(tree).unwrap();
    let c = work.commit(None, &sig, &sig, &format!("commit {n}"), &tree, &refs).unwrap();
    let theirs = dest.odb().unwrap();
    let known = |id: Oid| theirs.exists(id);
    let (mut seen, mut ids) = (std::collections::HashSet::new(), Vec::new());
    crate::objects::added_objects(work, parent, c, &known, &mut seen, &mut ids).unwrap();
    crate::objects::pack_into(work, &ids, dest).unwrap();
    c
}

/// Every object of every pack in `dir`, with its kind and content.
fn all_objects(dir: &Path) -> HashMap<Oid, (ObjectType, Vec<u8>)> {
    let repo = Repository::open_bare(dir).unwrap();
    let odb = repo.odb().unwrap();
    let mut out = HashMap::new();
    for idx in pack_idx_files(dir) {
        for (id, _) in read_index(&idx).unwrap() {
            let o = odb.read(id).unwrap();
            out.insert(id, (o.kind(), o.data().to_vec()));
        }
    }
    out
}

/// A history of single-entry changes to a 3,000-entry directory (and one entry flipped back and forth, so tree ids
/// recur), one pack per commit; packs git wrote with offset deltas and with id deltas; an object in two packs: rolled
/// into one pack, every object is there byte for byte, plain git verifies the pack and finds the repo clean, the older
/// versions of the directory became deltas, and the pack is a fraction of the packs it replaced.
#[test]
fn a_merge_keeps_every_object_and_stores_older_versions_as_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let (work_dir, repo_dir) = (dir.path().join("work.git"), dir.path().join("repo.git"));
    let work = Repository::init_bare(&work_dir).unwrap();
    let dest = Repository::init_bare(&repo_dir).unwrap();
    let mut versions = vec![1u32; 3000];
    let mut head = None;
    for n in 0..60 {
        versions[(n * 37) % 3000] += 1;
        versions[7] = (n % 2) as u32;
        head = Some(commit_as_pack(&work, &dest, head, root_tree(&work, &versions), n));
    }
    // The last commit's objects again, in a pack of their own.
    let again: Vec<Oid> = {
        let (mut seen, mut ids) = (std::collections::HashSet::new(), Vec::new());
        crate::objects::added_objects(&work, None, head.unwrap(), &|_| false, &mut seen, &mut ids).unwrap();
        ids.truncate(5);
        ids
    };
    crate::objects::pack_into(&work, &again, &dest).unwrap();
    // Similar blobs packed by git: with offset deltas, then with id deltas.
    for (k, flag) in [(0, Some("--delta-base-offset")), (1, None)] {
        let mut list = String::new();
        for i in 0..20 {
            let body: String =
                (0..400).map(|l| format!("line {l} of a manifest {}\n", if l == i { k } else { 9 })).collect();
            list.push_str(&format!("{}\n", dest.blob(body.as_bytes()).unwrap()));
        }
        let mut args = vec!["pack-objects", "-q", "--window=20"];
        args.extend(flag);
        let base = repo_dir.join("objects/pack/pack");
        args.push(base.to_str().unwrap());
        git(&repo_dir, &args, Some(&list));
        git(&repo_dir, &["prune-packed"], None);
    }
    dest.reference("refs/heads/main", head.unwrap(), true, "t").unwrap();
    let verbose = |idx: &Path| git(&repo_dir, &["verify-pack", "-v", idx.to_str().unwrap()], None);
    let sources = pack_idx_files(&repo_dir);
    assert_eq!(sources.len(), 63);
    let kinds: String = sources.iter().map(|p| verbose(p)).collect();
    assert!(kinds.contains(" blob ") && kinds.lines().any(|l| l.split_whitespace().count() == 7), "git made deltas");
    let before = all_objects(&repo_dir);
    let size_before: u64 = sources.iter().map(|p| p.with_extension("pack").metadata().unwrap().len()).sum();

    // The newest first, as the roll-up orders them.
    let mut newest_first = sources.clone();
    newest_first.reverse();
    let merged = merge(&repo_dir, &newest_first).unwrap();
    assert_eq!(merged.objects, before.len());
    for p in &sources {
        for ext in ["idx", "pack"] {
            std::fs::remove_file(p.with_extension(ext)).unwrap();
        }
    }
    let after = pack_idx_files(&repo_dir);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].file_name().unwrap().to_str().unwrap(), format!("pack-{}.idx", merged.name));
    // git reads every object of the pack and checks its id, and the CRCs and offsets of the index.
    let listing = verbose(&after[0]);
    assert_eq!(all_objects(&repo_dir), before, "every object byte for byte");
    git(&repo_dir, &["fsck", "--strict", "--no-dangling", "--no-progress"], None);
    // 59 older versions of `applications/` (less those whose id recurs) are deltas now, chains at most MAX_DEPTH long.
    assert!(merged.new_deltas >= 50, "{merged:?}");
    let longest = listing
        .lines()
        .filter_map(|l| l.strip_prefix("chain length = ")?.split(':').next()?.trim().parse::<u32>().ok())
        .max()
        .unwrap();
    assert!(longest <= MAX_DEPTH + 1, "{listing}");
    let size_after = after[0].with_extension("pack").metadata().unwrap().len();
    assert!(size_after * 5 < size_before, "{size_after} bytes of {size_before}");
    // The newest directory stays whole: no delta to resolve on the path every write reads.
    let newest_apps = work.find_commit(head.unwrap()).unwrap().tree().unwrap().get_name("applications").unwrap().id();
    let row = listing.lines().find(|l| l.starts_with(&newest_apps.to_string())).unwrap();
    assert_eq!(row.split_whitespace().count(), 5, "{row}");
}

/// A pack of git's with an id delta merges on its own (its base is in it); a cut index is an error, not a panic.
#[test]
fn an_id_delta_pack_merges_and_a_cut_index_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo.git");
    let repo = Repository::init_bare(&repo_dir).unwrap();
    let body: String = (0..400).map(|l| format!("line {l}\n")).collect();
    let a = repo.blob(body.as_bytes()).unwrap();
    let b = repo.blob(format!("{body}one more\n").as_bytes()).unwrap();
    let base = repo_dir.join("objects/pack/pack");
    git(&repo_dir, &["pack-objects", "-q", base.to_str().unwrap()], Some(&format!("{a}\n{b}\n")));
    git(&repo_dir, &["prune-packed"], None);
    let only = pack_idx_files(&repo_dir);
    let s = read_sources(&only).unwrap();
    assert!(s.entries.iter().any(|e| matches!(e.base, Base::Id(_))), "git wrote an id delta");
    let before = all_objects(&repo_dir);
    // Copied entry for entry in the same order, it is the same pack, byte for byte (so the same name).
    let merged = merge(&repo_dir, &only).unwrap();
    let after = pack_idx_files(&repo_dir);
    assert_eq!(after, only, "{merged:?}");
    assert_eq!(after[0].file_name().unwrap().to_str().unwrap(), format!("pack-{}.idx", merged.name));
    git(&repo_dir, &["verify-pack", after[0].to_str().unwrap()], None);
    assert_eq!(all_objects(&repo_dir), before);
    let cut = dir.path().join("cut.idx");
    std::fs::write(&cut, &std::fs::read(&after[0]).unwrap()[..1050]).unwrap();
    std::fs::copy(after[0].with_extension("pack"), cut.with_extension("pack")).unwrap();
    assert!(read_sources(&[cut]).is_err());
}

#[test]
fn back_offsets_read_back_as_the_store_reads_them() {
    for back in [1u64, 127, 128, 129, 16_383, 16_384, 16_511, 16_512, 2_113_663, 2_113_664, 1 << 35] {
        let mut h = vec![0x60 | 5];
        back_offset(&mut h, back);
        let parsed = parse_header(&h).unwrap();
        let want = railyard_store::pack::Header {
            kind: OFS_DELTA,
            size: 5,
            size_len: 1,
            header_len: h.len(),
            base: HeaderBase::Back(back),
        };
        assert_eq!(parsed, want);
    }
}

fn tree_bytes(entries: &[(String, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, id) in entries {
        out.extend_from_slice(format!("100644 {name}\0").as_bytes());
        out.extend_from_slice(&[*id; 20]);
    }
    out
}

proptest! {
    /// A blob's delta from its common ends rebuilds it, whatever the two are (copies past 64 KiB included).
    #[test]
    fn an_ends_delta_rebuilds_its_target(
        base in proptest::collection::vec(0u8..4, 0..200_000),
        cut in 0usize..200_000,
        insert in proptest::collection::vec(any::<u8>(), 0..300),
        drop in 0usize..300,
    ) {
        let cut = cut.min(base.len());
        let mut target = base[..cut].to_vec();
        target.extend_from_slice(&insert);
        target.extend_from_slice(&base[(cut + drop).min(base.len())..]);
        let d = ends_delta(&base, &target);
        prop_assert_eq!(railyard_store::pack::apply_delta(&base, &d).unwrap(), target);
    }

    /// A tree's delta entry by entry rebuilds it, with entries changed, added and removed anywhere.
    #[test]
    fn a_tree_delta_rebuilds_its_target(
        n in 0usize..3000,
        changes in proptest::collection::vec((0usize..3000, 0u8..3), 0..40),
    ) {
        let base: Vec<(String, u8)> = (0..n).map(|i| (format!("app-{i:05}"), 1)).collect();
        let mut target = base.clone();
        for (at, what) in changes {
            let at = at.min(target.len());
            match what {
                0 if at < target.len() => target[at].1 = target[at].1.wrapping_add(1),
                1 if at < target.len() => { target.remove(at); }
                _ => target.insert(at, (format!("new-{at:05}"), 7)),
            }
        }
        let (base, target) = (tree_bytes(&base), tree_bytes(&target));
        let d = tree_delta(&base, &target).unwrap();
        prop_assert_eq!(railyard_store::pack::apply_delta(&base, &d).unwrap(), target);
    }
}

#[test]
fn one_entry_changed_in_ten_thousand_is_a_delta_of_a_few_dozen_bytes() {
    let base: Vec<(String, u8)> = (0..10_000).map(|i| (format!("app-{i:05}"), 1)).collect();
    let mut target = base.clone();
    target[4_321].1 = 2;
    let (base, target) = (tree_bytes(&base), tree_bytes(&target));
    let d = tree_delta(&base, &target).unwrap();
    assert!(d.len() < 100, "{} bytes", d.len());
    assert_eq!(railyard_store::pack::apply_delta(&base, &d).unwrap(), target);
    assert!(tree_entries(b"100644 name-without-end").is_none());
}
