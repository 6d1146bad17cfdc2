//! `--ack after-push`: several `railyard-api` replicas, each with a clone of its own, share one remote (a bare repo
//! served by `git daemon` on 127.0.0.1). Conflicting writes on different replicas are never both acknowledged,
//! reads wait for a commit with `min_commit`, a remote that is down answers 503 and writes nothing, a restarted
//! replica rebuilds its clone from the remote, and under kill -9 of random replicas every acknowledged write is on
//! the remote exactly once, no conflicting pair is acknowledged twice, and every acknowledged tag points at its
//! commit. The kill loop's size: `RAILYARD_REPLICA_KILLS` (default 20; `make bench` runs 100),
//! `RAILYARD_REPLICA_WRITERS` (default 500).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use railyard_tests::{free_port, GitDaemon, Reply, Rng, Server};
use serde_json::{json, Value};

/// Every replica: after-push, fetching the remote four times a second.
const FLAGS: &[&str] = &["--ack", "after-push", "--fetch-interval-ms", "250"];

/// The shared remote: a bare repo under a temp dir, served by `git daemon` (which a test may stop and start again
/// on the same port).
struct Remote {
    base: tempfile::TempDir,
    port: u16,
    url: String,
    daemon: Option<GitDaemon>,
}

impl Remote {
    fn start() -> Self {
        let base = tempfile::tempdir().expect("dir");
        let repo = Repository::init_bare(base.path().join("remote.git")).expect("bare remote");
        repo.set_head("refs/heads/main").expect("HEAD");
        let port = free_port();
        let daemon = Some(GitDaemon::start(base.path(), port));
        Self { url: format!("git://127.0.0.1:{port}/remote.git"), base, port, daemon }
    }

    fn path(&self) -> PathBuf {
        self.base.path().join("remote.git")
    }

    /// Kills the daemon and waits until its port refuses connections.
    fn stop(&mut self) {
        self.daemon = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "git daemon still accepts connections on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn restart(&mut self) {
        self.daemon = Some(GitDaemon::start(self.base.path(), self.port));
    }

    fn repo(&self) -> Repository {
        Repository::open_bare(self.path()).expect("remote repo")
    }

    fn head(&self) -> Option<Oid> {
        self.repo().refname_to_id("refs/heads/main").ok()
    }

    fn file(&self, path: &str) -> Option<String> {
        railyard_tests::read_file(&self.path(), "refs/heads/main", path)
    }

    fn file_at(&self, commit: &str, path: &str) -> Option<String> {
        let repo = self.repo();
        let tree = repo.find_commit(Oid::from_str(commit).ok()?).ok()?.tree().ok()?;
        let entry = tree.get_path(std::path::Path::new(path)).ok()?;
        let blob = repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }

    /// The commit tag `name` peels to on the remote.
    fn tag(&self, name: &str) -> Option<Oid> {
        let repo = self.repo();
        let id = repo.find_reference(&format!("refs/tags/{name}")).ok()?.peel_to_commit().ok()?.id();
        Some(id)
    }

    /// The remote branch's commits, newest first, with every `Railyard-Request` trailer parsed; asserts the history
    /// is linear.
    fn history(&self) -> Vec<(Oid, Vec<Value>)> {
        let repo = self.repo();
        let Some(head) = self.head() else { return Vec::new() };
        let mut walk = repo.revwalk().expect("walk");
        walk.push(head).expect("push");
        walk.map(|oid| {
            let c = repo.find_commit(oid.expect("oid")).expect("commit");
            assert!(c.parent_count() <= 1, "the remote history is not linear at {}", c.id());
            let requests = railyard_manifest::commit::request_trailers(c.message().unwrap_or_default())
                .map(|raw| serde_json::from_str(raw).unwrap_or_else(|e| panic!("trailer of {}: {e}: {raw}", c.id())))
                .collect();
            (c.id(), requests)
        })
        .collect()
    }

    /// True when the remote branch holds `commit` (its head or an ancestor).
    fn holds(&self, commit: &str) -> bool {
        let (repo, c) = (self.repo(), Oid::from_str(commit).expect("sha"));
        self.head().is_some_and(|h| h == c || repo.graph_descendant_of(h, c).unwrap_or(false))
    }

    /// `git fsck --strict` on the remote finds nothing.
    fn assert_fsck_clean(&self) {
        let (ok, text) = railyard_tests::git_fsck(&self.path());
        assert!(ok, "git fsck --strict on the remote failed: {text}");
        let problems: Vec<&str> = text.lines().filter(|l| !l.starts_with("dangling ")).collect();
        assert!(problems.is_empty(), "git fsck --strict on the remote: {text}");
    }
}

/// Starts a replica with a fresh clone of its own.
fn replica(remote: &Remote) -> Server {
    restart(tempfile::tempdir().expect("dir"), remote)
}

/// Starts a replica on the repo dir it had (`dir/repo.git`) and waits until it is ready.
fn restart(dir: tempfile::TempDir, remote: &Remote) -> Server {
    restart_with(dir, remote, FLAGS)
}

fn restart_with(dir: tempfile::TempDir, remote: &Remote, flags: &[&str]) -> Server {
    let s = Server::start_in_with_git_url(dir, &remote.url, flags);
    wait_ready(&s);
    s
}

/// Starts `n` replicas at once (they all record their Argo CD source on the one remote as they start).
fn replicas(remote: &Remote, n: usize) -> Vec<Server> {
    std::thread::scope(|scope| {
        let started: Vec<_> = (0..n).map(|_| scope.spawn(|| replica(remote))).collect();
        started.into_iter().map(|h| h.join().expect("replica start")).collect()
    })
}

/// Polls `/readyz` until it is 200 (the first fetch of the remote succeeded); panics after 30 s.
fn wait_ready(s: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.get("/readyz");
        if r.status == 200 {
            assert_eq!(r.json["ready"], true, "{}", r.text);
            assert_eq!(r.json["export"]["mode"], "after-push", "{}", r.text);
            assert_eq!(r.json["export"]["fetched"], true, "{}", r.text);
            return r.json;
        }
        assert_eq!(r.status, 503, "/readyz: {}", r.text);
        assert!(Instant::now() < deadline, "replica {} did not become ready: {}", s.url, r.text);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `a` and `b` on two threads released together.
fn both<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let ha = scope.spawn(|| {
            barrier.wait();
            a()
        });
        let hb = scope.spawn(|| {
            barrier.wait();
            b()
        });
        (ha.join().expect("thread a"), hb.join().expect("thread b"))
    })
}

/// Writes answered 503 `remote_unavailable` or `remote_contended` ("nothing was written, retry shortly") and sent
/// again, as clients are told to (printed by the tests that retry).
static RETRIED: AtomicUsize = AtomicUsize::new(0);

fn retryable(r: &Reply) -> bool {
    r.status == 503 && matches!(r.json["code"].as_str(), Some("remote_unavailable" | "remote_contended"))
}

/// Sends a write again while it is refused with a retryable 503 (at most 30 times, 100 ms apart).
fn retrying(mut send: impl FnMut() -> Reply) -> Reply {
    for _ in 0..30 {
        let r = send();
        if !retryable(&r) {
            return r;
        }
        RETRIED.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
    send()
}

/// Waits until every replica's branch holds `commit` (a read with `min_commit` on each).
fn sync(replicas: &[&Server], commit: &str) {
    for s in replicas {
        get_after(s, "/api/environments", commit).assert_status(200);
    }
}

fn lock(s: &Server, id: &str, message: &str) -> Reply {
    s.put_json(&format!("/api/environments/dev/locks/{id}"), &json!({ "message": message }))
}

/// A lock the replica acknowledged: its commit.
fn locked(s: &Server, id: &str, message: &str) -> String {
    let r = retrying(|| lock(s, id, message));
    r.assert_status(200);
    r.commit().expect("a new lock makes a commit")
}

/// A GET that waits for `commit` through `?min_commit=`.
fn get_after(s: &Server, path: &str, commit: &str) -> Reply {
    let sep = if path.contains('?') { '&' } else { '?' };
    s.get(&format!("{path}{sep}min_commit={commit}"))
}

/// True when the replica's local branch holds `commit`.
fn branch_holds(s: &Server, commit: &str) -> bool {
    let repo = Repository::open_bare(&s.repo_dir).expect("replica repo");
    let c = Oid::from_str(commit).expect("sha");
    s.local_head().is_some_and(|h| h == c || repo.graph_descendant_of(h, c).unwrap_or(false))
}

/// Asserts the body is a JSON error with a code, and a 4xx or 5xx status; returns the code.
fn json_error(r: &Reply) -> String {
    assert!((400..600).contains(&r.status), "not an error: {} {}", r.status, r.text);
    assert!(r.content_type.starts_with("application/json"), "error is not JSON ({:?}): {}", r.content_type, r.text);
    assert!(r.json["error"].as_str().is_some_and(|e| !e.is_empty()), "error without a message: {}", r.text);
    r.json["code"].as_str().unwrap_or_else(|| panic!("error without a code: {}", r.text)).to_owned()
}

#[test]
fn conflicting_writes_on_two_replicas_are_never_both_acknowledged() {
    let remote = Remote::start();
    let rs = replicas(&remote, 3);
    let (a, b, c) = (&rs[0], &rs[1], &rs[2]);
    a.create_env("dev", json!({"latest": true}), None);
    let envs = a.create_env("staging", json!({"environment": "dev"}), None).commit().expect("commit");
    // B and C have seen the environments before they are written to (a refusal decided on a clone that has not
    // fetched them yet can be the answer: see the ignored tests below).
    sync(&[b, c], &envs);

    // The same application and version, with different manifests, on A and B at once.
    const ROUNDS: usize = 25;
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let version = (round + 1).to_string();
        let texts = [
            format!("kind: ConfigMap # from A, round {round}\n"),
            format!("kind: ConfigMap # from B, round {round}\n"),
        ];
        let upload =
            |s: &Server, text: &str| retrying(|| s.release("web", Some(&version), &[("dev", text), ("staging", text)]));
        let (ra, rb) = both(|| upload(a, &texts[0]), || upload(b, &texts[1]));
        let (winner, loser, text) = match (ra.status, rb.status) {
            (201, _) => (0, &rb, &texts[0]),
            (_, 201) => (1, &ra, &texts[1]),
            _ => panic!(
                "round {round}: neither upload was created: A {} {}, B {} {}",
                ra.status, ra.text, rb.status, rb.text
            ),
        };
        wins[winner] += 1;
        loser.assert_error(409, "release_exists", None);
        let won = if winner == 0 { &ra } else { &rb };
        assert_eq!(won.json["version"], round + 1, "{}", won.text);
        let commit = won.commit().expect("a created release names its commit");
        assert!(remote.holds(&commit), "round {round}: the acknowledged commit {commit} is not on the remote");
        let path = format!("applications/web/releases/{version}/environments/dev/manifests.yaml");
        assert_eq!(remote.file(&path).as_ref(), Some(text), "round {round}: the remote holds the winner's manifest");
        assert_eq!(remote.file_at(&commit, &path).as_ref(), Some(text), "round {round}: at the answered commit");
        // The third replica, asked to wait for that commit, knows the winner's release.
        let listed = get_after(c, "/api/applications/web/releases", &commit);
        listed.assert_status(200);
        let versions: Vec<u64> = listed.json["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .filter_map(|r| r["version"].as_u64())
            .collect();
        assert!(versions.contains(&(round as u64 + 1)), "round {round}: C lists {versions:?}");
    }
    eprintln!(
        "uploads of one version on A and B at once: A won {}, B won {} of {ROUNDS} rounds ({} answers 503 and sent again)",
        wins[0],
        wins[1],
        RETRIED.load(Ordering::Relaxed)
    );

    // Release trains with the same tag on A and B at once, each after a new release (uploaded on C) that the
    // train moves from dev to staging.
    const TRAINS: usize = 12;
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut without_winner = 0;
    for round in 0..TRAINS {
        let version = ROUNDS + round + 1;
        let text = format!("kind: ConfigMap # train round {round}\n");
        retrying(|| c.release("web", Some(&version.to_string()), &[("dev", &text), ("staging", &text)]))
            .assert_status(201);
        let tag = format!("train-{round}");
        let path = format!("/api/environments/staging/releasetrain?gitTag={tag}");
        let (ra, rb) = both(|| a.put_json(&path, &json!({})), || b.put_json(&path, &json!({})));
        let ok: Vec<&Reply> = [&ra, &rb].into_iter().filter(|r| (200..300).contains(&r.status)).collect();
        assert!(ok.len() <= 1, "round {round}: both trains tagged {tag} were acknowledged: {} / {}", ra.text, rb.text);
        for r in [&ra, &rb].into_iter().filter(|r| !(200..300).contains(&r.status)) {
            *codes.entry(format!("{} {}", r.status, json_error(r))).or_default() += 1;
        }
        let on_remote = remote.tag(&tag);
        match ok.first() {
            Some(won) => {
                assert_eq!(won.json["tag"], tag.as_str(), "{}", won.text);
                let commit = won.commit().expect("a tagged train names its commit");
                assert_eq!(
                    on_remote.map(|o| o.to_string()),
                    Some(commit.clone()),
                    "round {round}: tag {tag} on the remote"
                );
                assert!(remote.holds(&commit), "round {round}: the train's commit is not on the remote branch");
                assert_eq!(
                    remote.file_at(&commit, "environments/staging/applications/web/version"),
                    Some(version.to_string()),
                    "round {round}: staging at the tagged commit"
                );
            }
            None => {
                without_winner += 1;
                eprintln!("round {round}: neither train was acknowledged: {} / {}", ra.text, rb.text);
            }
        }
        if let Some(t) = on_remote {
            assert!(remote.holds(&t.to_string()), "round {round}: tag {tag} names a commit off the branch");
        }
    }
    eprintln!("trains with one tag on A and B at once: the other answered {codes:?}; rounds without a winner: {without_winner}");
    assert!(without_winner * 2 < TRAINS, "most rounds have a winner ({without_winner} of {TRAINS} have none)");

    // Every version was committed exactly once, by the winner.
    let mut uploads: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, requests) in remote.history() {
        for r in requests.iter().filter(|r| r["request"]["kind"] == "create-release") {
            *uploads.entry(r["request"]["version"].as_u64().expect("version")).or_default() += 1;
        }
    }
    let expected: BTreeMap<u64, usize> = (1..=(ROUNDS + TRAINS) as u64).map(|v| (v, 1)).collect();
    assert_eq!(uploads, expected, "release uploads on the remote branch, per version");
    remote.assert_fsck_clean();
}

#[test]
fn a_read_with_min_commit_sees_a_write_made_on_another_replica() {
    let remote = Remote::start();
    let rs = replicas(&remote, 2);
    let (a, b) = (&rs[0], &rs[1]);
    a.create_env("dev", json!({"latest": true}), None);

    let first = locked(a, "seen-1", "written on A");
    let r = get_after(b, "/api/environments/dev/locks/seen-1", &first);
    r.assert_status(200);
    assert_eq!(r.json["message"], "written on A", "{}", r.text);
    assert!(branch_holds(b, &first), "B answered, but its branch does not hold {first}");

    // The header does the same, and other query parameters stay.
    let second = locked(a, "seen-2", "also on A");
    let r = Reply::from_response(
        b.client()
            .get(b.at("/api/environments/dev/locks/seen-2"))
            .header("Railyard-Min-Commit", &second)
            .send()
            .expect("GET"),
    );
    r.assert_status(200);
    assert_eq!(r.json["message"], "also on A", "{}", r.text);
    let r = get_after(b, "/api/environments/dev/history?limit=50", &second);
    r.assert_status(200);
    assert!(r.text.contains("seen-2"), "B's history after the wait names the lock: {}", r.text);

    // Not a full commit id: 400, whatever the wait would have been.
    for bogus in
        ["not-a-sha", "abc123", &second[..39], &format!("{second}0"), "zz5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"]
    {
        get_after(b, "/api/environments/dev/locks", bogus).assert_error(400, "invalid_input", Some("min_commit"));
    }

    // A well-formed id the remote never held: 503 after the documented 10 s wait, not a hang.
    let started = Instant::now();
    let r = get_after(b, "/api/environments/dev/locks", "0123456789abcdef0123456789abcdef01234567");
    let waited = started.elapsed();
    r.assert_error(503, "min_commit_not_seen", None);
    assert!(waited >= Duration::from_secs(9), "answered after {waited:?}, before the wait was over");
    assert!(waited < Duration::from_secs(15), "answered after {waited:?}");

    let ready = wait_ready(b);
    assert!(ready["export"]["remote_head"].is_string(), "{ready}");
}

#[test]
fn with_the_remote_down_a_write_is_refused_with_503_and_nothing_is_written() {
    let mut remote = Remote::start();
    let rs = replicas(&remote, 2);
    let (a, b) = (&rs[0], &rs[1]);
    a.create_env("dev", json!({"latest": true}), None);
    let before = locked(a, "before", "remote up");
    // B has seen it (with the remote down, a refusal decided on B's last fetch would stand).
    sync(&[b], &before);
    let remote_before = remote.head();
    let local_before = a.local_head();
    assert_eq!(remote_before.map(|h| h.to_string()), Some(before.clone()));
    assert_eq!(local_before, remote_before);

    remote.stop();
    for i in 0..3 {
        let started = Instant::now();
        let r = lock(a, &format!("down-{i}"), "remote down");
        let took = started.elapsed();
        r.assert_error(503, "remote_unavailable", None);
        assert!(took < Duration::from_secs(15), "the refusal took {took:?}");
    }
    // The same for a release upload on the other replica.
    let r = b.release("web", None, &[("dev", "kind: ConfigMap\n")]);
    r.assert_error(503, "remote_unavailable", None);
    assert_eq!(a.local_head(), local_before, "A's local branch moved while the remote was down");
    assert_eq!(remote.head(), remote_before, "the remote moved while it was down");
    assert!(remote.file("environments/dev/locks/down-0/message").is_none());
    // Reads still answer from the clone, and the replica stays ready.
    let r = a.get("/api/environments/dev/locks/before");
    r.assert_status(200);
    assert_eq!(a.get("/api/environments/dev/locks/down-0").status, 404);
    a.get("/readyz").assert_status(200);

    remote.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let r = lock(a, "after", "remote back");
        if r.status == 200 {
            break r.commit().expect("commit");
        }
        r.assert_error(503, "remote_unavailable", None);
        assert!(Instant::now() < deadline, "writes still fail after the remote came back: {}", r.text);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(remote.head().map(|h| h.to_string()), Some(after.clone()));
    let repo = remote.repo();
    let parent = repo.find_commit(Oid::from_str(&after).expect("sha")).expect("commit").parent_id(0).expect("parent");
    assert_eq!(Some(parent), remote_before, "the write after the outage builds on the remote as it was");
    assert_eq!(remote.file("environments/dev/locks/after/message").as_deref(), Some("remote back"));
    let r = get_after(b, "/api/environments/dev/locks/after", &after);
    r.assert_status(200);
    let released = b.release("web", None, &[("dev", "kind: ConfigMap\n")]);
    released.assert_status(201);
    assert!(remote.holds(&released.commit().expect("commit")));
    remote.assert_fsck_clean();
}

/// The writer's batches so far, from `/metrics`.
fn batches(s: &Server) -> u64 {
    let text = s.get("/metrics").text;
    let line = text.lines().find(|l| l.starts_with("railyard_writer_batch_size_count ")).expect("batch count metric");
    line.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a count")
}

#[test]
fn tagged_trains_share_one_push_and_each_tag_names_the_state_right_after_its_train() {
    let remote = Remote::start();
    let s = replica(&remote);
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    s.create_env("qa", json!({"environment": "dev"}), None).assert_status(201);
    s.release("web", None, &[("dev", "v0"), ("qa", "v0")]).assert_status(201);
    let before = batches(&s);

    // 20 uploads (each deployed to dev at once) and 20 tagged trains from dev to qa, all at once.
    const N: usize = 40;
    let barrier = Barrier::new(N);
    let answers: Vec<Reply> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..N)
            .map(|i| {
                let (s, barrier) = (&s, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    if i % 2 == 0 {
                        let text = format!("v{i}");
                        s.release("web", None, &[("dev", &text), ("qa", &text)])
                    } else {
                        s.put_json(&format!("/api/environments/qa/releasetrain?gitTag=t{i}"), &json!({}))
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("client")).collect()
    });
    let folded = batches(&s) - before;
    assert!(
        folded < (N / 2) as u64,
        "{N} writes with {} tags took {folded} batches (pushes): tags split batches",
        N / 2
    );

    let history = remote.history();
    for (i, answer) in answers.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        answer.assert_status(200);
        let commit = answer.commit().expect("the train's commit");
        assert_eq!(answer.json["tag"], format!("t{i}"), "{}", answer.text);
        assert_eq!(remote.tag(&format!("t{i}")).map(|c| c.to_string()), Some(commit.clone()), "tag t{i}");
        // The train is the last request of the commit its tag names: qa holds what dev held then.
        let (_, requests) = history.iter().find(|(c, _)| c.to_string() == commit).expect("the commit on the branch");
        assert_eq!(requests.last().map(|r| r["request"]["git_tag"].clone()), Some(json!(format!("t{i}"))));
        let version = |env: &str| remote.file_at(&commit, &format!("environments/{env}/applications/web/version"));
        assert!(version("qa").is_some(), "t{i}: qa holds no web");
        assert_eq!(version("qa"), version("dev"), "t{i}: qa is not what dev held right before the train");
    }
    for (i, answer) in answers.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        answer.assert_status(201);
        assert!(remote.holds(&answer.commit().expect("commit")), "upload {i}");
    }
    remote.assert_fsck_clean();
}

/// Adds a commit with lock `id` to the local branch of the bare repo at `repo`, as a batch whose push was never
/// accepted would leave it.
fn commit_locally(repo: &std::path::Path, id: &str) -> Oid {
    let repo = Repository::open_bare(repo).expect("repo");
    let head = repo.find_reference("refs/heads/main").expect("branch").peel_to_commit().expect("head");
    let blob = repo.blob(b"never pushed").expect("blob");
    let tree = git2::build::TreeUpdateBuilder::new()
        .upsert(format!("environments/dev/locks/{id}/message"), blob, git2::FileMode::Blob)
        .create_updated(&repo, &head.tree().expect("tree"))
        .expect("tree");
    let sig = git2::Signature::now("Railyard", "railyard@localhost").expect("sig");
    let message = format!(
        "lock environment dev: {id}\n\nRailyard-Request: {}\n",
        json!({"author": {"name": "x", "email": "x@example.com"}, "at": "2026-01-01T00:00:00Z",
               "request": {"kind": "create-lock", "target": {"scope": "environment", "environment": "dev"}, "lock_id": id, "message": "never pushed"}})
    );
    let tree = repo.find_tree(tree).expect("tree");
    repo.commit(Some("refs/heads/main"), &sig, &sig, &message, &tree, &[&head]).expect("commit")
}

#[test]
fn a_replica_killed_and_restarted_rebuilds_its_clone_from_the_remote() {
    let remote = Remote::start();
    let mut rs = replicas(&remote, 3);
    rs[0].create_env("dev", json!({"latest": true}), None);
    for (i, s) in rs.iter().enumerate() {
        locked(s, &format!("early-{i}"), "before the kill");
    }
    let c = rs.remove(2);
    let c_repo = c.repo_dir.clone();
    let dir = c.kill();
    // A batch C built but never had accepted (its commit is on C's branch only).
    let ghost = commit_locally(&c_repo, "ghost");
    let mut last = String::new();
    for i in 0..10 {
        last = locked(&rs[i % 2], &format!("while-down-{i}"), &format!("written on {}", i % 2));
    }
    let released = retrying(|| rs[1].release("web", None, &[("dev", "kind: ConfigMap # while C was down\n")]));
    released.assert_status(201);
    last = released.commit().unwrap_or(last);

    let c = restart(dir, &remote);
    let head = c.local_head().expect("C has a branch");
    assert_ne!(head, ghost, "the never-pushed commit is still C's head");
    let repo = Repository::open_bare(&c_repo).expect("C's repo");
    assert!(
        !repo.graph_descendant_of(head, ghost).unwrap_or(false),
        "C's branch still holds the commit that was never pushed"
    );
    let r = get_after(&c, "/api/environments/dev/locks", &last);
    r.assert_status(200);
    for i in 0..10 {
        assert!(r.text.contains(&format!("while-down-{i}")), "C does not list while-down-{i}: {}", r.text);
    }
    assert!(!r.text.contains("ghost"), "C lists the lock that was never pushed: {}", r.text);
    assert_eq!(get_after(&c, "/api/environments/dev/locks/ghost", &last).status, 404);
    let r = get_after(&c, "/api/applications/web/releases", &last);
    r.assert_status(200);
    assert_eq!(r.json["releases"].as_array().map(Vec::len), Some(1), "{}", r.text);

    // C writes again, on the remote's head.
    let remote_before = remote.head();
    let written = locked(&c, "after-restart", "C is back");
    let parent = remote.repo().find_commit(Oid::from_str(&written).expect("sha")).expect("commit").parent_id(0).ok();
    assert_eq!(parent, remote_before, "C's write after the restart builds on the remote's head");
    assert!(remote.file("environments/dev/locks/ghost/message").is_none(), "the never-pushed lock reached the remote");
    let r = get_after(&rs[0], "/api/environments/dev/locks/after-restart", &written);
    r.assert_status(200);
    remote.assert_fsck_clean();
}

/// Two replicas where B was killed -9 in the middle of a fetch (its tracking ref's lock file left behind) and started
/// again at once (the lock is younger than the 2 s after which a start removes it), fetching only when its writer
/// needs to (so what B knows is decided by the writer's own fetches).
fn replica_with_a_lock_left_by_a_killed_fetch(remote: &Remote) -> (Server, Server) {
    let a = replica(remote);
    let b = replica(remote);
    let created = a.create_env("dev", json!({"latest": true}), None).commit().expect("commit");
    sync(&[&b], &created);
    let repo_dir = b.repo_dir.clone();
    let dir = b.kill();
    std::fs::write(repo_dir.join("refs/railyard/remote/main.lock"), b"").expect("lock file");
    let b = restart_with(dir, remote, &["--ack", "after-push", "--fetch-interval-ms", "600000"]);
    (a, b)
}

// A refusal decided on a stale clone is never the answer: a lock file left by a kill -9 during a fetch (or the
// follower's fetch holding the same lock at that moment) once made the writer's fetch fail and its refusals stand
// (404 for an environment the remote had). Fetches now wait out a held ref lock and clear a stale one, and a batch
// whose state cannot be confirmed answers 503 for every request.
#[test]
fn a_refusal_decided_on_a_stale_clone_is_not_the_answer_when_the_writer_cannot_fetch() {
    let remote = Remote::start();
    let (a, b) = replica_with_a_lock_left_by_a_killed_fetch(&remote);
    for i in 0..3 {
        let env = format!("review-{i}");
        let created = a.create_env(&env, json!({"latest": true}), None).commit().expect("commit");
        assert!(remote.holds(&created));
        let r = b.put_json(&format!("/api/environments/{env}/locks/l"), &json!({"message": "m"}));
        assert_ne!(
            r.status, 404,
            "B refused a lock on environment {env}, which the remote has held since {created} (acknowledged before the lock was sent): {}",
            r.text
        );
    }
}

// The same lock file once made every write on B that followed a write on another replica answer 503
// `remote_unavailable` with the remote up, for as long as the file stayed; the follower's fetch colliding with the
// writer's gave the same 503 now and then. Fetches are one at a time now, wait out a held ref lock and clear a stale
// one, as `retry_locked` does for the branch.
#[test]
fn a_lock_left_by_a_killed_fetch_does_not_make_writes_fail_with_remote_unavailable() {
    let remote = Remote::start();
    let (a, b) = replica_with_a_lock_left_by_a_killed_fetch(&remote);
    // Older than the 2 s after which a lock counts as stale.
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..5 {
        locked(&a, &format!("a-{i}"), "on A");
        let r = b.put_json(&format!("/api/environments/dev/locks/b-{i}"), &json!({"message": "on B"}));
        assert_eq!(r.status, 200, "write {i} on B, the remote up: {}", r.text);
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What a kill-loop write is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A lock `id` on dev.
    Lock,
    /// A release of application `id` (its own).
    Release,
    /// Version 1 of application `id`, which one other writer uploads too with other content: at most one of the two
    /// may be acknowledged.
    Contested,
    /// A train into qa tagged `id`.
    TaggedTrain,
}

/// A write that was acknowledged, and the commit its answer named.
struct Ack {
    id: String,
    kind: Kind,
    content: String,
    commit: String,
}

#[derive(Default)]
struct Seen {
    acked: Vec<Ack>,
    /// Every answer that was not a 2xx, and every transport error, by kind.
    tally: BTreeMap<String, usize>,
    /// Answers no replica should give, even while others are killed.
    unexpected: Vec<String>,
    /// How long each answer (of any status, not a transport error) took, in ms.
    latencies: Vec<u64>,
}

/// One write of `kind` to `url`; `content` tells the writer's upload apart from another's.
fn kill_loop_write(
    client: &reqwest::blocking::Client,
    url: &str,
    id: &str,
    kind: Kind,
    content: String,
    seen: &Mutex<Seen>,
) {
    let upload = |version: Option<&str>| {
        let parts = railyard_tests::release_parts(id, version, &[("dev", &content)]);
        let parts: Vec<(&str, &[u8])> = parts.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let (content_type, body) = railyard_tests::multipart_body(&parts);
        client.post(format!("{url}/api/release")).header("content-type", content_type).body(body)
    };
    let req = match kind {
        Kind::Release => upload(None),
        Kind::Contested => upload(Some("1")),
        Kind::Lock => client.put(format!("{url}/api/environments/dev/locks/{id}")).json(&json!({ "message": content })),
        Kind::TaggedTrain => client.put(format!("{url}/api/environments/qa/releasetrain?gitTag={id}")),
    };
    let sent = Instant::now();
    let answer = req.send().map(|r| {
        let status = r.status().as_u16();
        (status, r.text())
    });
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let (status, text) = match answer {
        Ok((status, Ok(text))) => {
            seen.latencies.push(sent.elapsed().as_millis() as u64);
            (status, text)
        }
        Ok((_, Err(e))) | Err(e) => {
            let kind = if e.is_timeout() { "timeout" } else { "connection error" };
            *seen.tally.entry(kind.into()).or_default() += 1;
            if e.is_timeout() {
                seen.unexpected.push(format!("{id} on {url}: {e}"));
            }
            return;
        }
    };
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let want = if matches!(kind, Kind::Release | Kind::Contested) { 201 } else { 200 };
    if status == want {
        let commit =
            body["commit"].as_str().unwrap_or_else(|| panic!("{id}: answer without a commit: {text}")).to_owned();
        *seen.tally.entry(format!("{status}")).or_default() += 1;
        seen.acked.push(Ack { id: id.to_owned(), kind, content, commit });
        return;
    }
    let code = body["code"].as_str().unwrap_or("(no code)").to_owned();
    *seen.tally.entry(format!("{status} {code}")).or_default() += 1;
    let lost_the_contest = kind == Kind::Contested && status == 409 && code == "release_exists";
    let allowed = lost_the_contest
        || status == 503 && ["remote_unavailable", "remote_contended", "queue_full"].contains(&code.as_str());
    if !allowed {
        seen.unexpected.push(format!("{id} on {url}: {status} {text}"));
    }
}

/// What the replicas' logs tell of a kill loop.
#[derive(Default)]
struct LogStats {
    /// The requests answered `remote_unavailable`, by the error logged for their batch (a held lock in the replica's
    /// own repo by the file it is on, else the error's start).
    unavailable: BTreeMap<String, usize>,
    /// How long each committed batch took, in ms.
    batch_ms: Vec<u64>,
}

impl LogStats {
    fn read(&mut self, s: &Server) {
        for line in s.logs() {
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            let fields = &v["fields"];
            if fields["message"] == "committed batch" {
                self.batch_ms.push(fields["ms"].as_u64().unwrap_or_default());
                continue;
            }
            if fields["message"] != "the remote cannot be reached; batch not written" {
                continue;
            }
            let error = fields["error"].as_str().unwrap_or_default();
            let kind = match (error.find("repo.git/"), error.find(".lock")) {
                (Some(start), Some(end)) if start < end => {
                    format!("lock on {}", &error[start + "repo.git/".len()..end])
                }
                _ => error.chars().take(80).collect(),
            };
            *self.unavailable.entry(kind).or_default() += fields["requests"].as_u64().unwrap_or(1) as usize;
        }
    }
}

/// The p50, p99 and largest of `values`, in ms.
fn spread(values: &mut [u64]) -> String {
    values.sort_unstable();
    let at = |q: f64| values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    format!("p50 {} ms, p99 {} ms, max {} ms", at(0.5), at(0.99), at(1.0))
}

#[test]
fn killing_random_replicas_during_writes_keeps_every_acknowledged_write_exactly_once() {
    let kills_wanted = env_usize("RAILYARD_REPLICA_KILLS", 20);
    let writers = env_usize("RAILYARD_REPLICA_WRITERS", 500);
    let remote = Remote::start();
    let rs = replicas(&remote, 3);
    rs[0].create_env("dev", json!({"latest": true}), None).assert_status(201);
    let qa = rs[0].create_env("qa", json!({"environment": "dev"}), None).commit().expect("commit");
    sync(&[&rs[1], &rs[2]], &qa);
    let urls: Arc<RwLock<Vec<Option<String>>>> =
        Arc::new(RwLock::new(rs.iter().map(|s| Some(s.url.clone())).collect()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let turn = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (urls, seen, stop, turn) = (urls.clone(), seen.clone(), stop.clone(), turn.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let client =
                        reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let live: Vec<String> =
                            urls.read().unwrap_or_else(|p| p.into_inner()).iter().flatten().cloned().collect();
                        if live.is_empty() {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                        let url = &live[turn.fetch_add(1, Ordering::Relaxed) % live.len()];
                        // Writers 2k and 2k+1 contest application `c{k}-{n}`; everything else is the writer's own.
                        let (kind, id) = match n % 8 {
                            3 => (Kind::Release, format!("w{w}-{n}")),
                            5 => (Kind::Contested, format!("c{}-{n}", w / 2)),
                            7 => (Kind::TaggedTrain, format!("w{w}-{n}")),
                            _ => (Kind::Lock, format!("w{w}-{n}")),
                        };
                        let content = format!("kind: ConfigMap # w{w}-{n}\n");
                        kill_loop_write(&client, url, &id, kind, content, &seen);
                        n += 1;
                    }
                })
                .expect("writer thread")
        })
        .collect();

    // The killer: every 0.5–1.5 s, kill -9 a random replica and start it again on the same repo dir (a new port).
    let mut servers: Vec<Option<Server>> = rs.into_iter().map(Some).collect();
    let mut rng = Rng::from_env("REPLICA_SEED");
    let mut kills = 0;
    let mut stats = LogStats::default();
    let mut restart_time = Duration::ZERO;
    while kills < kills_wanted {
        std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
        let i = rng.below(3) as usize;
        urls.write().unwrap_or_else(|p| p.into_inner())[i] = None;
        let s = servers[i].take().expect("replica");
        stats.read(&s);
        let dir = s.kill();
        kills += 1;
        let restarting = Instant::now();
        let s = Server::start_in_with_git_url(dir, &remote.url, FLAGS);
        restart_time += restarting.elapsed();
        urls.write().unwrap_or_else(|p| p.into_inner())[i] = Some(s.url.clone());
        servers[i] = Some(s);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("writer");
    }
    let ran = started.elapsed();
    let servers: Vec<Server> = servers.into_iter().map(|s| s.expect("replica")).collect();

    // Quiesced: every replica is ready and follows the remote's head.
    for s in &servers {
        wait_ready(s);
    }
    let head = remote.head().expect("remote head");
    for s in &servers {
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.local_head() != Some(head) {
            if Instant::now() > deadline {
                let complaints: Vec<String> =
                    s.logs().into_iter().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
                let tail = &complaints[complaints.len().saturating_sub(20)..];
                panic!(
                    "{} does not follow the remote: {:?} vs {head}; its last warnings: {tail:#?}",
                    s.url,
                    s.local_head()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    for s in &servers {
        stats.read(s);
    }
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let history = remote.history();
    let commits: BTreeSet<Oid> = history.iter().map(|(c, _)| *c).collect();
    let mut on_remote: BTreeMap<String, usize> = BTreeMap::new();
    for (_, requests) in &history {
        for r in requests {
            let id = match r["request"]["kind"].as_str() {
                Some("create-lock") => r["request"]["lock_id"].as_str(),
                Some("create-release") => r["request"]["application"].as_str(),
                Some("release-train") => r["request"]["git_tag"].as_str(),
                _ => None,
            };
            if let Some(id) = id.filter(|i| i.starts_with('w') || i.starts_with('c')) {
                *on_remote.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    let twice: Vec<(&String, &usize)> = on_remote.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "writes committed more than once on the remote: {twice:?}");
    let repo = remote.repo();
    let tree = repo.find_commit(head).expect("head").tree().expect("tree");
    let file = |path: &str| {
        let entry = tree.get_path(std::path::Path::new(path)).ok()?;
        Some(String::from_utf8_lossy(repo.find_blob(entry.id()).ok()?.content()).into_owned())
    };
    let mut lost = Vec::new();
    let mut contested: BTreeMap<&str, usize> = BTreeMap::new();
    for ack in &seen.acked {
        let count = on_remote.get(&ack.id).copied().unwrap_or(0);
        let oid = Oid::from_str(&ack.commit).expect("sha");
        let holds = match ack.kind {
            Kind::Release | Kind::Contested => {
                let path = format!("applications/{}/releases/1/environments/dev/manifests.yaml", ack.id);
                file(&path).as_ref() == Some(&ack.content)
            }
            Kind::Lock => file(&format!("environments/dev/locks/{}/message", ack.id)).as_ref() == Some(&ack.content),
            // The tag points at the very commit the train's answer named.
            Kind::TaggedTrain => remote.tag(&ack.id) == Some(oid),
        };
        if ack.kind == Kind::Contested {
            *contested.entry(ack.id.as_str()).or_default() += 1;
        }
        if count != 1 || !commits.contains(&oid) || !holds {
            lost.push(format!(
                "{} (commits holding it: {count}, answered commit on the branch: {})",
                ack.id,
                commits.contains(&oid)
            ));
        }
    }
    let unacked_on_remote = on_remote.len() - seen.acked.iter().filter(|a| on_remote.contains_key(&a.id)).count();
    let of = |k: Kind| seen.acked.iter().filter(|a| a.kind == k).count();
    let (locks, releases, contests, trains) =
        (of(Kind::Lock), of(Kind::Release), of(Kind::Contested), of(Kind::TaggedTrain));
    eprintln!(
        "replica kill loop: {kills} kills in {:.1}s (restarts {:.1}s in all), {writers} writers; {} acknowledged ({locks} locks, {releases} releases, {contests} contested uploads won, {trains} tagged trains); {unacked_on_remote} unacknowledged writes on the remote; {} commits; answers {:?}",
        ran.as_secs_f64(),
        restart_time.as_secs_f64(),
        seen.acked.len(),
        history.len(),
        seen.tally
    );
    let mut latencies = seen.latencies.clone();
    eprintln!("answers: {}; batches: {}", spread(&mut latencies), spread(&mut stats.batch_ms));
    eprintln!(
        "why batches were answered 503 remote_unavailable (the remote was up throughout), from the replicas' logs: {:?}",
        stats.unavailable
    );
    assert!(lost.is_empty(), "{} acknowledged writes are not on the remote exactly once: {lost:?}", lost.len());
    let both: Vec<&&str> = contested.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(both.is_empty(), "both uploads of a contested release were acknowledged: {both:?}");
    assert!(trains > 0 && contests > 0, "no tagged train or contested upload was acknowledged: {:?}", seen.tally);
    assert!(seen.unexpected.is_empty(), "unexpected answers: {:?}", seen.unexpected);
    assert!(seen.acked.len() >= writers, "too few writes acknowledged to mean anything: {}", seen.acked.len());
    remote.assert_fsck_clean();

    // Afterwards every replica writes again.
    for (i, s) in servers.iter().enumerate() {
        let c = locked(s, &format!("final-{i}"), "after the kills");
        assert!(remote.holds(&c));
    }
}
