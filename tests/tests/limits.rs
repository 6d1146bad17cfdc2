//! What a hostile or clumsy client cannot do to the server: hold connections open (slow headers, idle
//! keep-alive, thousands of sockets at a low file limit), pin a worker with a deeply nested YAML body, lose the 413
//! by sending its whole body first; and what a full disk answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use railyard_tests::{Reply, Server};
use serde_json::json;

fn addr(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_owned()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// True once the server has closed `stream` (a read sees the end or a reset, not a timeout).
fn closed_by_server(mut stream: &TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

fn timed_health(s: &Server) -> Duration {
    let started = Instant::now();
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let r = client.get(s.at("/healthz")).send().expect("healthz answered");
    assert_eq!(r.status(), 200);
    started.elapsed()
}

#[test]
fn slow_and_idle_clients_neither_starve_health_nor_export_at_a_low_file_limit() {
    let s = Server::start_with(&["--header-read-timeout-seconds", "2", "--idle-timeout-seconds", "3"]);
    // The file limit of a small pod, set on the running server (so the cap it computed at start is too high);
    // connections must fit beside the repo and export.
    let pid = s.pid().to_string();
    let status = std::process::Command::new("prlimit").args(["--pid", &pid, "--nofile=256:256"]).status();
    assert!(status.is_ok_and(|st| st.success()), "prlimit failed");
    s.create_env("dev", json!({"latest": true}), None);

    // 500 slowloris clients (a header line every 500 ms, never the blank line) and 2,000 idle ones.
    let target = addr(&s);
    let mut slow: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(&target).ok())
        .map(|mut c| {
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
            c
        })
        .collect();
    let idle: Vec<TcpStream> = (0..2000).filter_map(|_| TcpStream::connect(&target).ok()).collect();
    assert!(slow.len() + idle.len() > 2000, "the test could not open its connections");

    // While they trickle, health answers at once, writes are committed and exported.
    let trickle_until = Instant::now() + Duration::from_secs(6);
    let mut worst = Duration::ZERO;
    let mut writes = 0;
    while Instant::now() < trickle_until {
        for c in &mut slow {
            let _ = c.write_all(b"X-Slow: 1\r\n");
        }
        worst = worst.max(timed_health(&s));
        let r = s.put_json(&format!("/api/environments/dev/locks/l{writes}"), &json!({"message": "m"}));
        r.assert_status(200);
        writes += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    // Well under the 2 s header timeout: at the file limit the idlest connections make room at once, instead of
    // the probe waiting in the listen queue until a slow client's timeout frees a descriptor.
    assert!(worst < Duration::from_millis(500), "healthz took {worst:?} under the load");
    assert_eq!(s.wait_exported(), s.local_head().unwrap(), "export kept up");
    assert!(open_fds(s.pid()) < 256, "the server holds {} descriptors", open_fds(s.pid()));

    // Every slow client is cut (its headers never completed within 2 s), and so is every idle one (3 s).
    let slow_closed = slow.iter().filter(|c| closed_by_server(c)).count();
    assert_eq!(slow_closed, slow.len(), "slowloris connections still open");
    std::thread::sleep(Duration::from_secs(1));
    let idle_closed = idle.iter().filter(|c| closed_by_server(c)).count();
    assert_eq!(idle_closed, idle.len(), "idle connections still open");
    let logs = s.logs().join("\n");
    assert!(logs.contains("connection limits"), "no log line names the limits");
    assert!(logs.contains("out of file descriptors; holding fewer connections"), "no log line names the shortage");
    let _ = s.kill();
}

#[test]
fn the_connection_limit_follows_the_open_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    // A port that is taken, so the server exits right after reporting its limits.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = std::process::Command::new("prlimit")
        .arg("--nofile=200:200")
        .arg(railyard_tests::bin("railyard-api"))
        .args(["--listen", &taken.local_addr().unwrap().to_string(), "--log-format", "json"])
        .arg("--repo-dir")
        .arg(dir.path().join("repo.git"))
        .arg("--git-url")
        .arg(dir.path().join("remote.git"))
        .output()
        .expect("run railyard-api under prlimit");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("--max-connections lowered")).expect("no warning about the limit");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["fields"]["using"], 72, "{line}");
}

#[test]
fn a_client_that_sends_its_whole_body_before_reading_gets_the_413() {
    let s = Server::start_with(&["--max-body-bytes", "1048576"]);
    let body = vec![b'x'; 8 * 1024 * 1024];
    let mut c = TcpStream::connect(addr(&s)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /api/release HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // As Python's urllib does: everything first, then read the answer.
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body).expect("the server reset the connection while the body was being sent");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"body_too_large\""), "{answer}");
}

fn nested_yaml(levels: usize) -> Vec<u8> {
    let mut body = b"steps: ".to_vec();
    body.extend(std::iter::repeat_n(b'[', levels));
    body.extend(std::iter::repeat_n(b']', levels));
    body
}

#[test]
fn deeply_nested_yaml_is_refused_at_once_and_does_not_stall_health() {
    let s = Server::start();
    let started = Instant::now();
    let bodies: Vec<_> = (0..2)
        .map(|_| {
            let url = s.at("/api/release-flows/deep");
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let r = client.put(url).header("content-type", "application/yaml").body(nested_yaml(100_000)).send();
                Reply::from_response(r.unwrap())
            })
        })
        .collect();
    let health = timed_health(&s);
    for b in bodies {
        let r = b.join().unwrap();
        r.assert_error(400, "invalid_input", Some("template"));
        assert!(r.json["error"].as_str().unwrap().contains("at most 1000"), "{}", r.text);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "refusing took {:?}", started.elapsed());
    assert!(health < Duration::from_secs(1), "healthz took {health:?}");
    // A template of ordinary depth is still accepted, as YAML with flow collections.
    let ok = s.send_raw_body(
        "PUT",
        "/api/release-flows/shallow",
        "application/yaml",
        b"steps: [{ref: a, kind: lock, environment: dev, lockId: x}]".to_vec(),
    );
    ok.assert_status(201);
}

#[test]
fn a_full_disk_answers_507_and_the_repo_stays_sound() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo.git");
    std::fs::create_dir(&repo_dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&repo_dir)
        .status()
        .is_ok_and(|st| st.success());
    if !mounted {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root and must be able to mount a small tmpfs");
        eprintln!("warning: cannot mount a tmpfs (not root?); skipping the disk-full test");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(repo_dir.clone());
    let s = Server::start_in(dir, &[]);
    s.create_env("dev", json!({"latest": true}), None);
    let mut statuses = Vec::new();
    let mut full = None;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..40 {
        // Pseudo-random text does not compress much: each release takes most of its size on the disk.
        let manifest: String = (0..400_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect();
        let r = s.release("web", None, &[("dev", &manifest)]);
        statuses.push(r.status);
        if r.status != 201 {
            full = Some(r);
            break;
        }
    }
    let r = full.unwrap_or_else(|| panic!("the disk never filled: {statuses:?}"));
    r.assert_error(507, "disk_full", None);
    assert!(r.json["error"].as_str().unwrap().contains("no space left on the repo's disk"), "{}", r.text);
    assert!(!r.text.contains(s.repo_dir.to_str().unwrap()), "the answer shows a server path: {}", r.text);
    assert!(
        s.logs().iter().any(|l| l.contains("no space left on the repo's disk")),
        "no log line says the disk is full"
    );
    // The server is alive, and the repo is sound.
    assert!(timed_health(&s) < Duration::from_secs(2));
    let fsck = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&s.repo_dir)
        .args(["fsck", "--strict"])
        .output()
        .unwrap();
    assert!(fsck.status.success(), "fsck: {}", String::from_utf8_lossy(&fsck.stderr));
    let _ = s.kill();
}

/// Reads one HTTP/1.1 answer from `stream`: its status and body (by `Content-Length`).
fn read_answer(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed without an answer"));
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0usize);
    while got.len() < head_end + length {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed in the body"));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok((status, String::from_utf8_lossy(&got[head_end..head_end + length]).to_string()))
}

/// python-requests sends a POST's headers and its `{}` body in two writes. A handler that takes its arguments from
/// the query answers without reading the body; if the body arrived after the answer, the server used to close the
/// connection, and the client's next request on it failed with "Remote end closed connection without response".
#[test]
fn a_body_the_handler_ignores_does_not_cost_the_keep_alive_connection() {
    let s = Server::start_with(&["--header-read-timeout-seconds", "2"]);
    let week_ago = time::OffsetDateTime::now_utc() - time::Duration::days(8);
    let before = week_ago.format(&time::format_description::well_known::Rfc3339).unwrap().replace(':', "%3A");
    let mut c = TcpStream::connect(addr(&s)).unwrap();
    for round in 0..3 {
        let head = format!(
            "POST /api/environments/stop_stale?before={before} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        );
        c.write_all(head.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        c.write_all(b"{}").unwrap();
        let (status, body) = read_answer(&mut c).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(status, 200, "round {round}: {body}");
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (status, _) = read_answer(&mut c).unwrap_or_else(|e| panic!("round {round}, the next request: {e}"));
        assert_eq!(status, 200);
    }

    // A declared body that never comes is answered 408 after the header-read timeout, in Railyard's error shape.
    let started = Instant::now();
    c.write_all(b"PUT /api/environments/dev/locks/l HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
        .unwrap();
    let (status, body) = read_answer(&mut c).expect("an answer");
    assert_eq!(status, 408, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(v["code"], "body_timeout", "{v}");
    assert!(started.elapsed() >= Duration::from_millis(1900), "answered after {:?}", started.elapsed());
}
