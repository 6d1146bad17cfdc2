use git2::{Oid, Repository, Signature};
use railyard_manifest::commit;
use railyard_manifest::{Envelope, Stage};
use railyard_refs::{
    clear_stale_locks, exported_ref, failed_tag_ref, pending_tag_ref, pending_tags, replayed_ref, resolve_tag,
};
use serde_json::json;

use super::*;

struct Setup {
    _dir: tempfile::TempDir,
    local: Repository,
    remote: Repository,
    cfg: Config,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let local = Repository::init_bare(dir.path().join("local.git")).unwrap();
    let remote_path = dir.path().join("remote.git");
    ensure_local_remote(remote_path.to_str().unwrap(), "main").unwrap();
    let remote = Repository::open_bare(&remote_path).unwrap();
    let cfg = Config {
        repo_dir: dir.path().join("local.git"),
        git_url: remote_path.to_str().unwrap().into(),
        branch: "main".into(),
        fail_on_error_with_git_push_tags: true,
        credentials: Credentials::default(),
    };
    Setup { _dir: dir, local, remote, cfg }
}

/// A commit of a tree holding `files` on top of `parent`, moving `refs/heads/main` of `repo`.
fn commit(repo: &Repository, parent: Option<Oid>, files: &[(&str, &str)], message: &str) -> Oid {
    let base = parent.map(|p| repo.find_commit(p).unwrap().tree().unwrap());
    let mut stage = Stage::new(repo, base);
    for (path, content) in files {
        if content.is_empty() {
            stage.remove_dir(path).unwrap();
        } else {
            stage.write(path, content.as_bytes()).unwrap();
        }
    }
    let tree = repo.find_tree(stage.write_tree().unwrap()).unwrap();
    let sig = Signature::now("t", "t@t").unwrap();
    let parents: Vec<git2::Commit<'_>> = parent.map(|p| repo.find_commit(p).unwrap()).into_iter().collect();
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    let oid = repo.commit(None, &sig, &sig, message, &tree, &refs).unwrap();
    repo.reference("refs/heads/main", oid, true, "t").unwrap();
    oid
}

/// A Railyard commit: applies `requests` (JSON) to the head of `repo` and commits them with their trailers.
fn railyard_commit(repo: &Repository, requests: &[serde_json::Value]) -> Oid {
    let head = repo.refname_to_id("refs/heads/main").ok();
    let base = head.map(|h| repo.find_commit(h).unwrap().tree().unwrap());
    let mut stage = Stage::new(repo, base);
    let mut envelopes: Vec<Envelope> = Vec::new();
    for r in requests {
        let mut e: Envelope = serde_json::from_value(
            json!({"author": {"name": "a", "email": "a@x"}, "at": "2026-11-23T10:00:00Z", "request": r}),
        )
        .unwrap();
        railyard_manifest::apply(&mut stage, &mut e).unwrap();
        envelopes.push(e);
    }
    railyard_manifest::finish(&mut stage).unwrap();
    let tree = stage.write_tree().unwrap();
    let refs: Vec<&Envelope> = envelopes.iter().collect();
    let oid = commit::write_commit(repo, head, tree, &railyard_manifest::Identity::default(), &commit::message(&refs))
        .unwrap();
    repo.reference("refs/heads/main", oid, true, "t").unwrap();
    oid
}

fn lock(env: &str, id: &str) -> serde_json::Value {
    json!({"kind": "create-lock", "target": {"scope": "environment", "environment": env}, "lock_id": id, "message": "m"})
}

fn env(name: &str) -> serde_json::Value {
    json!({"kind": "create-environment", "name": name})
}

fn file(repo: &Repository, commit: Oid, path: &str) -> Option<String> {
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    Some(String::from_utf8(repo.find_blob(entry.id()).unwrap().content().to_vec()).unwrap())
}

fn remote_head(s: &Setup) -> Oid {
    s.remote.refname_to_id("refs/heads/main").unwrap()
}

#[test]
fn pushes_branch_records_progress_and_counts_lag() {
    let s = setup();
    assert_eq!(round(&s.cfg, true).unwrap().head, None);
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    let c2 = commit(&s.local, Some(c1), &[("b", "2")], "b");
    assert_eq!(lag(&s.cfg.repo_dir, "main").unwrap().commits, 2);
    let r = round(&s.cfg, false).unwrap();
    assert_eq!((r.head, r.pushed), (Some(c2), true));
    assert_eq!(remote_head(&s), c2);
    assert_eq!(s.local.refname_to_id(&exported_ref("main")).unwrap(), c2);
    assert_eq!(lag(&s.cfg.repo_dir, "main").unwrap().commits, 0);
    assert!(!round(&s.cfg, true).unwrap().pushed, "nothing new: no push");
}

#[test]
fn a_created_local_remote_has_its_head_on_the_branch() {
    let s = setup();
    assert_eq!(s.remote.find_reference("HEAD").unwrap().symbolic_target().unwrap(), Some("refs/heads/main"));
}

#[test]
fn unreachable_remote_is_an_error_not_a_loss() {
    let mut s = setup();
    s.cfg.git_url = "git://127.0.0.1:9/none.git".into();
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    assert!(round(&s.cfg, true).is_err());
    assert_eq!(s.local.refname_to_id("refs/heads/main").unwrap(), c1);
    assert_eq!(lag(&s.cfg.repo_dir, "main").unwrap().commits, 1);
}

#[test]
fn tags_are_pushed_after_their_commit_and_refusals_follow_the_flag() {
    let mut s = setup();
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    s.local.reference(&pending_tag_ref("v1"), c1, false, "t").unwrap();
    let orphan = {
        let tree = s.local.find_commit(c1).unwrap().tree().unwrap();
        let sig = Signature::now("t", "t@t").unwrap();
        s.local.commit(None, &sig, &sig, "orphan", &tree, &[]).unwrap()
    };
    s.local.reference(&pending_tag_ref("ghost"), orphan, false, "t").unwrap();
    let r = round(&s.cfg, true).unwrap();
    assert_eq!(r.tags.pushed, vec!["v1".to_owned()]);
    assert_eq!(s.remote.refname_to_id("refs/tags/v1").unwrap(), c1);
    // a tag whose commit is not on the remote waits; it is never dropped
    assert!(s.remote.refname_to_id("refs/tags/ghost").is_err());
    assert_eq!(resolve_tag(&s.local, "v1").unwrap(), Some(c1));
    assert_eq!(pending_tags(&s.local).unwrap(), vec![("ghost".to_owned(), orphan)]);
    s.local.find_reference(&pending_tag_ref("ghost")).unwrap().delete().unwrap();

    // the remote has v2 on another commit: refused
    s.remote.reference("refs/tags/v2", c1, false, "by hand").unwrap();
    let c2 = commit(&s.local, Some(c1), &[("b", "2")], "b");
    s.local.reference(&pending_tag_ref("v2"), c2, false, "t").unwrap();
    assert!(matches!(round(&s.cfg, true), Err(ExportError::TagRejected { .. })));
    s.cfg.fail_on_error_with_git_push_tags = false;
    assert_eq!(round(&s.cfg, true).unwrap().tags.failed, vec!["v2".to_owned()]);
    assert_eq!(s.local.refname_to_id(&failed_tag_ref("v2")).unwrap(), c2);
    assert_eq!(s.remote.refname_to_id("refs/tags/v2").unwrap(), c1);
}

#[test]
fn tags_created_on_the_remote_are_learnt() {
    let s = setup();
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    round(&s.cfg, true).unwrap();
    // by hand on the remote: a lightweight tag, an annotated one, and one on a commit the local repo never saw
    s.remote.reference("refs/tags/light", c1, false, "by hand").unwrap();
    let sig = Signature::now("h", "h@h").unwrap();
    s.remote.tag("annotated", &s.remote.find_object(c1, None).unwrap(), &sig, "msg", false).unwrap();
    let elsewhere = {
        let tree = s.remote.find_commit(c1).unwrap().tree().unwrap();
        s.remote.commit(None, &sig, &sig, "elsewhere", &tree, &[&s.remote.find_commit(c1).unwrap()]).unwrap()
    };
    s.remote.reference("refs/tags/other", elsewhere, false, "by hand").unwrap();
    let learnt = round(&s.cfg, true).unwrap().reconciled.unwrap().learnt_tags;
    assert_eq!(learnt.len(), 3, "{learnt:?}");
    assert_eq!(resolve_tag(&s.local, "light").unwrap(), Some(c1));
    assert_eq!(resolve_tag(&s.local, "annotated").unwrap(), Some(c1));
    assert_eq!(resolve_tag(&s.local, "other").unwrap(), Some(elsewhere));
    assert!(round(&s.cfg, true).unwrap().reconciled.unwrap().learnt_tags.is_empty(), "learnt once");
    assert_eq!(s.local.refname_to_id("refs/heads/main").unwrap(), c1, "tags never move the branch");
}

#[test]
fn a_remote_branch_ahead_is_adopted_by_fast_forward() {
    let s = setup();
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    round(&s.cfg, true).unwrap();
    s.remote.find_commit(c1).unwrap();
    let x = commit(&s.remote, Some(c1), &[("hand", "made")], "by hand");
    let a = round(&s.cfg, true).unwrap().reconciled.unwrap().adoption.unwrap();
    assert_eq!((a.remote, a.replayed), (x, 0));
    assert_eq!(s.local.refname_to_id("refs/heads/main").unwrap(), x);
    assert_eq!(s.local.refname_to_id(&exported_ref("main")).unwrap(), x);
}

#[test]
fn a_new_local_repo_takes_the_remote_history() {
    let s = setup();
    let x = commit(&s.remote, None, &[("hand", "made")], "by hand");
    let r = round(&s.cfg, true).unwrap();
    assert_eq!(r.reconciled.unwrap().adoption.unwrap().remote, x);
    assert_eq!(s.local.refname_to_id("refs/heads/main").unwrap(), x);
    assert_eq!(lag(&s.cfg.repo_dir, "main").unwrap(), Lag::default());
}

#[test]
fn a_rewound_remote_is_fast_forwarded_again() {
    let s = setup();
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    let c2 = commit(&s.local, Some(c1), &[("b", "2")], "b");
    round(&s.cfg, true).unwrap();
    s.remote.reference("refs/heads/main", c1, true, "rewound by hand").unwrap();
    let r = round(&s.cfg, true).unwrap();
    assert!(r.reconciled.unwrap().adoption.is_none());
    assert_eq!(remote_head(&s), c2, "an acknowledged write is never dropped");
}

#[test]
fn a_diverged_remote_is_adopted_and_unpushed_commits_replayed_from_their_trailers() {
    let mut s = setup();
    s.cfg.fail_on_error_with_git_push_tags = false;
    let a = railyard_commit(&s.local, &[env("dev"), env("prod")]);
    round(&s.cfg, true).unwrap();
    // Local writes not pushed yet (remote down, say): a lock on dev plus a tagged train; then a lock on prod.
    let train =
        json!({"kind": "release-train", "target": {"scope": "environment", "environment": "dev"}, "git_tag": "t-dev"});
    let b = commit(&s.local, Some(a), &[], &commit::message(&[&envelope(lock("dev", "l1")), &envelope(train)]));
    s.local.reference(&pending_tag_ref("t-dev"), b, false, "t").unwrap();
    let c = railyard_commit(&s.local, &[lock("prod", "p1")]);
    s.local.reference(&pending_tag_ref("t-prod"), c, false, "t").unwrap();
    // Meanwhile someone removed dev on the remote and added a file.
    let x = commit(&s.remote, Some(a), &[("environments/dev", ""), ("README.md", "hand")], "remove dev by hand");

    let r = round(&s.cfg, true).unwrap();
    let adoption = r.reconciled.unwrap().adoption.unwrap();
    assert_eq!((adoption.remote, adoption.replayed, adoption.failed_requests.len()), (x, 2, 2));
    assert!(adoption.failed_requests[0].reason.contains("dev"), "{:?}", adoption.failed_requests);

    // The remote now has its own commit, then B' (nothing applied, both requests recorded as failed), then C'.
    let head = remote_head(&s);
    assert_eq!(s.local.refname_to_id("refs/heads/main").unwrap(), head);
    let c2 = s.remote.find_commit(head).unwrap();
    let b2 = c2.parent(0).unwrap();
    assert_eq!(b2.parent_id(0).unwrap(), x);
    assert_eq!(file(&s.remote, head, "README.md").as_deref(), Some("hand"));
    let tree = s.remote.find_commit(head).unwrap().tree().unwrap();
    assert!(tree.get_path(std::path::Path::new("environments/prod/locks/p1")).is_ok(), "C' applied on the remote");
    assert!(tree.get_path(std::path::Path::new("environments/dev")).is_err(), "B' wrote nothing");
    let b2_msg = b2.message().unwrap();
    assert_eq!(b2_msg.matches("Railyard-Failed-Request: ").count(), 2, "{b2_msg}");
    assert!(b2_msg.contains(&format!("Railyard-Replayed-From: {b}")), "{b2_msg}");
    assert_eq!(commit::requests(c2.message().unwrap()).len(), 1, "C' repeats its request");

    // The tag of the replayed commit follows it; the one whose train failed is recorded as failed, not pushed.
    assert_eq!(s.remote.refname_to_id("refs/tags/t-prod").unwrap(), head);
    assert!(s.remote.refname_to_id("refs/tags/t-dev").is_err());
    assert_eq!(s.local.refname_to_id(&failed_tag_ref("t-dev")).unwrap(), b2.id());
    assert!(pending_tags(&s.local).unwrap().is_empty());
    assert_eq!(lag(&s.cfg.repo_dir, "main").unwrap(), Lag::default());
}

#[test]
fn a_replay_writes_the_same_argocd_files_as_the_writer() {
    let s = setup();
    let a = railyard_commit(&s.local, &[env("dev")]);
    round(&s.cfg, true).unwrap();
    let source = json!({"repoURL": "https://git.example/m.git", "targetRevision": "main"});
    let staging = json!({"kind": "create-environment", "name": "staging", "argocd_source": source,
        "argocd": {"destination": {"server": "https://kubernetes.default.svc"}, "syncOptions": ["CreateNamespace=true"]}});
    let b = railyard_commit(&s.local, &[staging]);
    let written = file(&s.local, b, "argocd/v1alpha1/staging.yaml").expect("the writer's file");
    assert!(written.contains("https://git.example/m.git"), "{written}");
    commit(&s.remote, Some(a), &[("README.md", "hand")], "by hand");

    let adoption = round(&s.cfg, true).unwrap().reconciled.unwrap().adoption.unwrap();
    assert_eq!((adoption.replayed, adoption.failed_requests.len()), (1, 0));
    let head = remote_head(&s);
    assert_eq!(file(&s.remote, head, "argocd/v1alpha1/staging.yaml"), Some(written));
    assert!(file(&s.remote, head, ".railyard/argocd-source.json").is_some());
}

#[test]
fn a_tag_recorded_after_its_commit_was_replayed_follows_the_replacement() {
    let s = setup();
    let a = railyard_commit(&s.local, &[env("dev")]);
    round(&s.cfg, true).unwrap();
    let b = railyard_commit(&s.local, &[lock("dev", "l1")]);
    let x = commit(&s.remote, Some(a), &[("README.md", "hand")], "by hand");
    round(&s.cfg, true).unwrap();
    let b2 = s.local.refname_to_id(&replayed_ref(b)).unwrap();
    assert_eq!(remote_head(&s), b2);
    assert_eq!(s.remote.find_commit(b2).unwrap().parent_id(0).unwrap(), x);
    // the writer records its tag a moment late, on the commit that was replaced
    s.local.reference(&pending_tag_ref("late"), b, false, "t").unwrap();
    round(&s.cfg, false).unwrap();
    assert_eq!(s.remote.refname_to_id("refs/tags/late").unwrap(), b2);
}

fn envelope(request: serde_json::Value) -> Envelope {
    serde_json::from_value(
        json!({"author": {"name": "a", "email": "a@x"}, "at": "2026-11-23T10:00:00Z", "request": request}),
    )
    .unwrap()
}

#[test]
fn stale_lock_files_are_removed_only_when_old() {
    let s = setup();
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    let lock = s.cfg.repo_dir.join("refs/heads/main.lock");
    std::fs::write(&lock, c1.to_string()).unwrap();
    assert_eq!(clear_stale_locks(&s.cfg.repo_dir, std::time::Duration::from_secs(60)), 0);
    assert!(lock.exists());
    assert!(s.local.reference("refs/heads/main", c1, true, "t").is_err(), "git refuses while the lock is there");
    assert_eq!(clear_stale_locks(&s.cfg.repo_dir, std::time::Duration::ZERO), 1);
    s.local.reference("refs/heads/main", c1, true, "t").unwrap();
}

#[test]
fn status_file_roundtrips() {
    let s = setup();
    let st = Status { exported: Some("abc".into()), stopped: Some("why".into()), updated_at: 5, ..Status::default() };
    write_status_file(&s.cfg.repo_dir, &st).unwrap();
    assert_eq!(read_status_file(&s.cfg.repo_dir), Some(st));
}

#[test]
fn backoff_grows_and_is_capped() {
    assert!(backoff(0) <= std::time::Duration::from_millis(400));
    for f in [5, 20, 100] {
        assert!(backoff(f) <= std::time::Duration::from_secs(60));
    }
}

#[test]
fn a_stale_lock_left_in_a_local_remote_by_a_killed_push_is_retried_not_a_refused_tag() {
    let s = setup();
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    round(&s.cfg, true).unwrap();
    s.local.reference(&pending_tag_ref("v1"), c1, false, "t").unwrap();
    let lock = s.remote.path().join("refs/tags/v1.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let f = std::fs::File::create(&lock).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(10)).unwrap();
    let err = round(&s.cfg, false).unwrap_err();
    assert!(err.is_lock(), "{err}");
    assert!(!lock.exists(), "the stale lock was cleared");
    assert_eq!(round(&s.cfg, false).unwrap().tags.pushed, vec!["v1".to_owned()]);
    assert_eq!(s.remote.refname_to_id("refs/tags/v1").unwrap(), c1);
}

#[test]
fn a_file_url_remote_works_like_a_path() {
    let mut s = setup();
    s.cfg.git_url = format!("file://{}", s.remote.path().display());
    let c1 = commit(&s.local, None, &[("a", "1")], "a");
    s.local.reference(&pending_tag_ref("v1"), c1, false, "t").unwrap();
    let r = round(&s.cfg, true).unwrap();
    assert!(r.pushed);
    assert_eq!(remote_head(&s), c1);
    assert_eq!(s.remote.refname_to_id("refs/tags/v1").unwrap(), c1);
    assert_eq!(local_path(&s.cfg.git_url).unwrap().canonicalize().unwrap(), s.remote.path().canonicalize().unwrap());
    assert_eq!(local_path("git://127.0.0.1/r.git"), None);
    assert_eq!(local_path("git@github.com:o/r.git"), None);
}

/// A `git daemon` on 127.0.0.1 serving the bare repos under `base`, pushes enabled; stopped on drop.
struct Daemon {
    child: std::process::Child,
    port: u16,
}

impl Daemon {
    fn start(base: &std::path::Path) -> Self {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // `git daemon` serves each connection from a child of its own: a process group lets drop stop them all.
        let child = std::process::Command::new("git")
            .process_group(0)
            .args(["daemon", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1", "--reuseaddr"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, port }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// A local repo and a bare remote in one directory, the remote served by a `git daemon` that `cfg` pushes to.
struct OverGit {
    dir: tempfile::TempDir,
    local: Repository,
    remote: Repository,
    cfg: Config,
    _daemon: Daemon,
}

fn over_git() -> OverGit {
    let dir = tempfile::tempdir().unwrap();
    let local = Repository::init_bare(dir.path().join("local.git")).unwrap();
    let remote = Repository::init_bare(dir.path().join("remote.git")).unwrap();
    let daemon = Daemon::start(dir.path());
    let cfg = Config {
        repo_dir: dir.path().join("local.git"),
        git_url: format!("git://127.0.0.1:{}/remote.git", daemon.port),
        branch: "main".into(),
        fail_on_error_with_git_push_tags: true,
        credentials: Credentials::default(),
    };
    OverGit { dir, local, remote, cfg, _daemon: daemon }
}

/// Three environments of 30 applications, each application with two releases; no two files alike.
fn many_apps(repo: &Repository) -> Oid {
    let mut files: Vec<(String, String)> = Vec::new();
    for a in 0..30 {
        for e in 0..3 {
            files.push((format!("envs/e{e}/apps/a{a}/version"), format!("{a}.{e}")));
        }
        for r in 1..3 {
            files.push((format!("apps/a{a}/releases/{r}/manifest"), format!("kind: A{a}R{r}")));
        }
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    commit(repo, None, &files, "c0")
}

fn loose_objects(repo: &std::path::Path) -> usize {
    std::fs::read_dir(repo.join("objects"))
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().len() == 2)
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum()
}

fn git_out(repo: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git").arg("-C").arg(repo).args(args).output().unwrap()
}

#[test]
fn narrowing_gives_the_remote_heads_a_tree_of_the_reused_entries_in_the_push_handle_only() {
    let s = setup();
    let c0 = many_apps(&s.local);
    let c1 = commit(&s.local, Some(c0), &[("envs/e1/apps/a3/version", "2")], "c1");
    let view = Repository::open_bare(s.local.path()).unwrap();
    let heads = vec![("refs/heads/main".to_owned(), c0)];
    let n = crate::narrow::narrow(&s.local, &view, &heads, &["refs/heads/main:refs/heads/main".into()]).unwrap();
    // What c1 reuses from c0 where it changed: `apps`; `envs/e0`, `envs/e2`; the other 29 apps of `envs/e1/apps`.
    let real = s.local.find_commit(c0).unwrap().tree().unwrap();
    let id = |p: &str| real.get_path(std::path::Path::new(p)).unwrap().id();
    let mut expected: Vec<Oid> = vec![id("apps"), id("envs/e0"), id("envs/e2")];
    expected.extend((0..30).filter(|a| *a != 3).map(|a| id(&format!("envs/e1/apps/a{a}"))));
    expected.sort();
    assert_eq!((n.commits, n.reused), (1, expected.len()));
    let cut = view.find_commit(c0).unwrap();
    let mut listed: Vec<Oid> = cut.tree().unwrap().iter().map(|e| e.id()).collect();
    listed.sort();
    assert_eq!(listed, expected);
    assert!(cut.tree().unwrap().iter().all(|e| e.kind() == Some(git2::ObjectType::Blob)));
    assert_eq!(cut.parent_ids().count(), 0);
    assert_eq!(cut.message().ok(), Some("c0"));
    // The repo itself, and any other handle on it, still reads the commit as it is.
    assert_eq!(s.local.find_commit(c0).unwrap().tree_id(), real.id());
    assert_eq!(Repository::open_bare(s.local.path()).unwrap().find_commit(c0).unwrap().tree_id(), real.id());
    drop(cut);
    drop(view);
    assert!(git_out(s.local.path(), &["fsck", "--strict", "--no-dangling"]).status.success());
    assert!(!s.local.odb().unwrap().exists(listed_tree_id(&expected)), "the cut-down tree never reaches the repo");
    let _ = c1;
}

/// The id of the tree [`crate::narrow::narrow`] builds from `ids`.
fn listed_tree_id(ids: &[Oid]) -> Oid {
    let mut tree = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        tree.extend_from_slice(format!("100644 {i:08x}\0").as_bytes());
        tree.extend_from_slice(id.as_bytes());
    }
    Oid::hash_object(git2::ObjectType::Tree, &tree).unwrap()
}

#[test]
fn a_push_over_git_protocol_sends_exactly_what_the_commits_add_and_leaves_the_remote_whole() {
    let OverGit { dir, local, remote, cfg, _daemon } = over_git();
    let remote_path = dir.path().join("remote.git");
    // Every object the remote receives stays a loose file, so they can be counted.
    remote.config().unwrap().set_i32("receive.unpackLimit", 1_000_000).unwrap();
    let c0 = many_apps(&local);
    assert!(round(&cfg, false).unwrap().pushed);
    assert_eq!(remote.refname_to_id("refs/heads/main").unwrap(), c0);
    let before = loose_objects(&remote_path);
    // In-place changes, as the writer makes them: one changed, then changed back; a new application; another one.
    let c1 = commit(&local, Some(c0), &[("envs/e1/apps/a3/version", "2")], "c1");
    let c2 = commit(&local, Some(c1), &[("envs/e1/apps/a3/version", "3.1")], "c2");
    let c3 = commit(
        &local,
        Some(c2),
        &[("apps/a99/releases/1/manifest", "kind: new"), ("envs/e0/apps/a99/version", "99.0")],
        "c3",
    );
    let c4 = commit(&local, Some(c3), &[("envs/e2/apps/a5/version", "3")], "c4");
    local.reference(&pending_tag_ref("v1"), c2, false, "t").unwrap();
    let r = round(&cfg, false).unwrap();
    assert!(r.pushed);
    assert_eq!(remote.refname_to_id("refs/heads/main").unwrap(), c4);
    let added = git_out(local.path(), &["rev-list", "--objects", &c4.to_string(), "--not", &c0.to_string()]);
    let added = String::from_utf8(added.stdout).unwrap().lines().count();
    assert_eq!(loose_objects(&remote_path) - before, added, "the pack held what c1..c4 add, nothing more");
    // The tag went in a push of its own, whose commit the remote has: no object but the tag's ref is needed.
    assert_eq!(r.tags.pushed, vec!["v1".to_owned()]);
    assert_eq!(remote.refname_to_id("refs/tags/v1").unwrap(), c2);
    // A directory copied to a new path (its id is already on the remote, elsewhere) and one removed.
    let c5 = commit(&local, Some(c4), &[("envs/e9/apps/a1/version", "1.0"), ("envs/e2", "")], "c5");
    assert!(round(&cfg, false).unwrap().pushed);
    assert_eq!(remote.refname_to_id("refs/heads/main").unwrap(), c5);
    for repo in [local.path(), remote_path.as_path()] {
        let fsck = git_out(repo, &["fsck", "--strict", "--no-dangling"]);
        assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    }
    assert_eq!(file(&remote, c5, "envs/e9/apps/a1/version").as_deref(), Some("1.0"));
    assert_eq!(file(&remote, c5, "envs/e2/apps/a5/version"), None);
}

#[test]
fn a_tag_another_writer_creates_after_the_push_listed_the_remote_is_refused_by_the_remote_not_moved() {
    let OverGit { dir: _dir, local, remote, cfg, _daemon } = over_git();
    let c0 = commit(&local, None, &[("a", "1")], "c0");
    let c1 = commit(&local, Some(c0), &[("a", "2")], "c1");
    assert!(round(&cfg, false).unwrap().pushed);
    local.reference(&pending_tag_ref("v1"), c1, false, "t").unwrap();
    // Between the remote's list and the push on the same connection, another writer takes the name.
    let rejected = crate::transport::push_decided(&local, &cfg.git_url, &cfg.credentials, |heads| {
        assert!(!heads.iter().any(|(n, _)| n == "refs/tags/v1"), "{heads:?}");
        remote.reference("refs/tags/v1", c0, false, "another writer").unwrap();
        Ok::<_, std::convert::Infallible>(vec![format!("{}:refs/tags/v1", pending_tag_ref("v1"))])
    })
    .unwrap()
    .unwrap();
    assert_eq!(rejected.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(), ["refs/tags/v1"], "{rejected:?}");
    assert_eq!(remote.refname_to_id("refs/tags/v1").unwrap(), c0, "the other writer's tag stays where it was");
    // The next round sees the name taken and refuses the tag (the flag makes that stop the export).
    match round(&cfg, false) {
        Err(ExportError::TagRejected { tag, .. }) => assert_eq!(tag, "v1"),
        other => panic!("expected the tag to be refused: {other:?}"),
    }
    assert_eq!(remote.refname_to_id("refs/tags/v1").unwrap(), c0);
}
