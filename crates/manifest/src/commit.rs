//! Commit messages (a readable first line, then one `Railyard-Request` trailer per request) and commits.

use git2::{Oid, Repository, Signature};

use crate::model::Identity;
use crate::request::Envelope;

/// The trailer key that carries each request as JSON.
pub const TRAILER: &str = "Railyard-Request";

/// The trailer key of a request that could not be replayed onto an adopted remote branch: its reason and the
/// original request.
pub const FAILED_TRAILER: &str = "Railyard-Failed-Request";

/// The trailer key naming the local commit a replayed commit stands for.
pub const REPLAYED_TRAILER: &str = "Railyard-Replayed-From";

const FIRST_LINE_MAX: usize = 120;

/// The message of a commit that applies `envelopes` in order.
pub fn message(envelopes: &[&Envelope]) -> String {
    let summaries: Vec<String> = envelopes.iter().map(|e| e.request.summary()).collect();
    let mut msg = match summaries.as_slice() {
        [] => "no change".to_owned(),
        [one] => one.clone(),
        many => {
            let mut first = format!("{} changes: {}", many.len(), many.join("; "));
            if first.chars().count() > FIRST_LINE_MAX {
                first = first.chars().take(FIRST_LINE_MAX - 1).collect::<String>() + "…";
            }
            first
        }
    };
    if summaries.len() > 1 {
        msg.push_str("\n\n");
        for s in &summaries {
            msg.push_str("- ");
            msg.push_str(s);
            msg.push('\n');
        }
    }
    msg.push('\n');
    for e in envelopes {
        // serde_json escapes newlines, so each trailer stays on one line.
        let json = serde_json::to_string(e).unwrap_or_default();
        msg.push_str(&format!("\n{TRAILER}: {json}"));
    }
    msg.push('\n');
    msg
}

/// The requests recorded in a commit message, in order; a trailer that does not parse is an error entry.
pub fn requests(message: &str) -> Vec<Result<Envelope, serde_json::Error>> {
    request_trailers(message).map(serde_json::from_str).collect()
}

/// The raw JSON of each `Railyard-Request` trailer, in order.
pub fn request_trailers(message: &str) -> impl Iterator<Item = &str> {
    message.lines().filter_map(|l| l.strip_prefix(TRAILER)?.strip_prefix(": "))
}

/// A request that did not apply when replayed: why, and the trailer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRequest {
    pub reason: String,
    pub trailer: String,
}

/// The message of the commit that replays `original` (first line `summary`) onto an adopted remote branch:
/// the requests that applied keep their `Railyard-Request` trailers (so a later replay repeats them), the ones
/// that failed are recorded with their reason.
pub fn replay_message(original: Oid, summary: &str, applied: &[&Envelope], failed: &[FailedRequest]) -> String {
    let mut msg = format!("{summary}\n\nReplayed onto the adopted remote branch");
    if !failed.is_empty() {
        msg.push_str(&format!("; {} request(s) no longer applied:\n", failed.len()));
        for f in failed {
            msg.push_str(&format!("- {}\n", f.reason));
        }
    }
    msg.push('\n');
    msg.push_str(&format!("\n{REPLAYED_TRAILER}: {original}"));
    for e in applied {
        let json = serde_json::to_string(e).unwrap_or_default();
        msg.push_str(&format!("\n{TRAILER}: {json}"));
    }
    for f in failed {
        let request = serde_json::from_str::<serde_json::Value>(&f.trailer)
            .unwrap_or_else(|_| serde_json::Value::String(f.trailer.clone()));
        let json = serde_json::json!({ "reason": f.reason, "request": request });
        msg.push_str(&format!("\n{FAILED_TRAILER}: {json}"));
    }
    msg.push('\n');
    msg
}

/// Writes a commit of `tree` on top of `parent` (no ref is moved).
pub fn write_commit(
    repo: &Repository,
    parent: Option<Oid>,
    tree: Oid,
    author: &Identity,
    message: &str,
) -> Result<Oid, git2::Error> {
    let commit = commit_bytes(repo, parent, tree, author, message)?;
    repo.odb()?.write(git2::ObjectType::Commit, &commit)
}

/// [`write_commit`] into the stage's object store ([`Stage::put_object`]: the writer's memory). Written through
/// the object database, a commit is first looked for in every backend, and a miss (a new commit always misses)
/// makes libgit2 list the pack folder again.
pub fn write_commit_in(
    stage: &crate::Stage<'_>,
    parent: Option<Oid>,
    tree: Oid,
    author: &Identity,
    message: &str,
) -> Result<Oid, git2::Error> {
    let commit = commit_bytes(stage.repo(), parent, tree, author, message)?;
    stage.put_object(git2::ObjectType::Commit, &commit)
}

/// The bytes of the commit of `tree` on `parent` by `author` (committed by Railyard, now) with `message`.
fn commit_bytes(
    repo: &Repository,
    parent: Option<Oid>,
    tree: Oid,
    author: &Identity,
    message: &str,
) -> Result<git2::Buf, git2::Error> {
    let now = git2::Time::new(time::OffsetDateTime::now_utc().unix_timestamp(), 0);
    let author = Signature::new(&author.name, &author.email, &now)?;
    let committer = Signature::new("Railyard", "railyard@localhost", &now)?;
    let tree = repo.find_tree(tree)?;
    let parents = match parent {
        Some(p) => vec![repo.find_commit(p)?],
        None => vec![],
    };
    let parent_refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit_create_buffer(&author, &committer, message, &tree, &parent_refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::*;
    use crate::request::*;

    fn envelope(msg: &str) -> Envelope {
        Envelope {
            author: Identity::default(),
            at: "2026-11-23T10:00:00Z".into(),
            request: Request::CreateLock(CreateLock {
                target: LockTarget::Environment { environment: EnvName::parse("dev").unwrap() },
                lock_id: LockId::parse("l").unwrap(),
                message: msg.into(),
            }),
        }
    }

    #[test]
    fn trailers_roundtrip_even_with_newlines() {
        let a = envelope("line1\nRailyard-Request: fake");
        let b = envelope("two");
        let msg = message(&[&a, &b]);
        assert!(msg.starts_with("2 changes: lock environment dev: l; lock environment dev: l\n"));
        let back: Vec<Envelope> = requests(&msg).into_iter().map(Result::unwrap).collect();
        assert_eq!(back, vec![a, b]);
    }

    #[test]
    fn replay_message_keeps_applied_requests_and_records_failed_ones() {
        let a = envelope("kept");
        let failed = FailedRequest { reason: "environment dev not found".into(), trailer: "{\"bad\":1}".into() };
        let original = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        let msg = replay_message(original, "lock environment dev: l", &[&a], std::slice::from_ref(&failed));
        assert!(msg.starts_with("lock environment dev: l\n\n"));
        let back: Vec<Envelope> = requests(&msg).into_iter().map(Result::unwrap).collect();
        assert_eq!(back, vec![a]);
        assert!(msg.contains(&format!("{REPLAYED_TRAILER}: {original}")));
        let failed_line = msg.lines().find_map(|l| l.strip_prefix("Railyard-Failed-Request: ")).unwrap();
        let v: serde_json::Value = serde_json::from_str(failed_line).unwrap();
        assert_eq!(v["reason"], "environment dev not found");
        assert_eq!(v["request"]["bad"], 1);
    }

    #[test]
    fn single_request_first_line_is_its_summary() {
        let msg = message(&[&envelope("x")]);
        assert_eq!(msg.lines().next(), Some("lock environment dev: l"));
    }
}
