//! The deployment history as a test expects it, from a full walk of the branch's first-parent commits with git2:
//! the trailers of each commit and the version files it changed, read independently of the server's index.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository, Tree};
use serde_json::{json, Value};

/// What one history entry must say (the fields the test compares).
pub type Expected = Value;

fn versions(repo: &Repository, tree: Option<&Tree<'_>>) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    let Some(tree) = tree else { return out };
    let _ = tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        if entry.name() == Ok("version") && root.starts_with("environments/") {
            let dir = root.trim_start_matches("environments/").trim_end_matches('/');
            if let Some((env, app)) = dir.rsplit_once("/applications/") {
                if let Some(v) = repo
                    .find_blob(entry.id())
                    .ok()
                    .and_then(|b| std::str::from_utf8(b.content()).ok()?.trim().parse().ok())
                {
                    out.insert((env.to_owned(), app.to_owned()), v);
                }
            }
        }
        git2::TreeWalkResult::Ok
    });
    out
}

fn entry(commit: Oid, action: &str, env: Option<&str>, app: Option<&str>) -> Value {
    json!({"commit": commit.to_string(), "action": action, "environment": env, "application": app,
        "from_version": null, "to_version": null, "lock_id": null})
}

/// Every entry, oldest first, for the kinds of writes the tests make (environments, releases, deploys, trains, locks
/// on environments and applications).
pub fn walk(repo_dir: &Path) -> Vec<Expected> {
    let repo = Repository::open_bare(repo_dir).expect("repo");
    let Ok(head) = repo.refname_to_id("refs/heads/main") else { return Vec::new() };
    let mut chain = Vec::new();
    let mut cur = Some(head);
    while let Some(c) = cur {
        chain.push(c);
        cur = repo.find_commit(c).expect("commit").parent_ids().next();
    }
    let mut out = Vec::new();
    for c in chain.into_iter().rev() {
        let commit = repo.find_commit(c).expect("commit");
        let parent = commit.parent_ids().next().map(|p| repo.find_commit(p).and_then(|p| p.tree()).expect("tree"));
        let tree = commit.tree().expect("tree");
        let (before, after) = (versions(&repo, parent.as_ref()), versions(&repo, Some(&tree)));
        let mut changes: Vec<(String, String, Option<u64>, Option<u64>)> = before
            .keys()
            .chain(after.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| (k.0.clone(), k.1.clone(), before.get(k).copied(), after.get(k).copied()))
            .collect();
        let message = commit.message().unwrap_or_default().to_owned();
        for line in message.lines().filter_map(|l| l.strip_prefix("Railyard-Request: ")) {
            let v: Value = serde_json::from_str(line).expect("trailer JSON");
            let r = &v["request"];
            let s = |k: &str| r[k].as_str();
            let first = out.len();
            match s("kind").unwrap_or_default() {
                "create-environment" => out.push(entry(c, "environment", s("name"), None)),
                "create-release" => {
                    let app = s("application").unwrap_or_default();
                    let mut release = entry(c, "release", None, Some(app));
                    let dir = format!("applications/{app}/releases");
                    let names = |t: Option<&Tree<'_>>| -> Vec<u64> {
                        t.and_then(|t| t.get_path(Path::new(&dir)).ok())
                            .and_then(|e| repo.find_tree(e.id()).ok())
                            .map(|t| t.iter().filter_map(|e| e.name().ok()?.parse().ok()).collect())
                            .unwrap_or_default()
                    };
                    let old = names(parent.as_ref());
                    release["to_version"] = json!(r["version"]
                        .as_u64()
                        .or(names(Some(&tree)).into_iter().filter(|v| !old.contains(v)).max()));
                    out.push(release);
                    for ch in changes.iter().filter(|ch| ch.1 == app) {
                        let mut e = entry(c, "deploy", Some(&ch.0), Some(&ch.1));
                        e["from_version"] = json!(ch.2);
                        e["to_version"] = json!(ch.3);
                        out.push(e);
                    }
                    changes.retain(|ch| ch.1 != app);
                }
                "deploy" => {
                    let (env, app) = (s("environment").unwrap_or_default(), s("application").unwrap_or_default());
                    let mut e = entry(c, "deploy", Some(env), Some(app));
                    e["from_version"] = json!(before.get(&(env.to_owned(), app.to_owned())));
                    e["to_version"] = json!(after.get(&(env.to_owned(), app.to_owned())));
                    out.push(e);
                }
                "release-train" => {
                    let target = r["target"]["environment"].as_str().unwrap_or_default();
                    let moved: Vec<_> = changes.iter().filter(|ch| ch.0 == target).cloned().collect();
                    if moved.is_empty() {
                        out.push(entry(c, "train", Some(target), None));
                    }
                    for ch in moved {
                        let mut e = entry(c, "train", Some(&ch.0), Some(&ch.1));
                        e["from_version"] = json!(ch.2);
                        e["to_version"] = json!(ch.3);
                        out.push(e);
                    }
                    changes.retain(|ch| ch.0 != target);
                }
                kind @ ("create-lock" | "delete-lock") => {
                    let action = if kind == "create-lock" { "lock" } else { "unlock" };
                    let t = &r["target"];
                    let mut e = entry(c, action, t["environment"].as_str(), t["application"].as_str());
                    e["lock_id"] = json!(s("lock_id"));
                    out.push(e);
                }
                other => panic!("walk: the tests make no {other} writes"),
            }
            // Every entry shows the trailer it came from, whole.
            for e in &mut out[first..] {
                e["request"] = v.clone();
            }
        }
    }
    out
}

/// The fields of a server's entry that [`walk`] predicts.
pub fn projection(entry: &Value) -> Value {
    json!({"commit": entry["commit"], "action": entry["action"], "environment": entry["environment"],
        "application": entry["application"], "from_version": entry["from_version"], "to_version": entry["to_version"],
        "lock_id": entry["lock_id"], "request": entry["request"]})
}

/// Every entry a history endpoint has, newest first, fetched page by page with `limit` and `before`.
pub fn fetch_all(s: &crate::Server, path: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let q = match &before {
            Some(b) => format!("{path}?limit={limit}&before={b}"),
            None => format!("{path}?limit={limit}"),
        };
        let r = s.get(&q);
        r.assert_status(200);
        let page = r.json["entries"].as_array().expect("entries").clone();
        assert!(page.len() <= limit, "{q}: {} entries", page.len());
        out.extend(page);
        match r.json["next_before"].as_str() {
            Some(b) => before = Some(b.to_owned()),
            None => return out,
        }
    }
}
