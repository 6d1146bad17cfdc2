//! What a commit did, derived from git alone: its `Railyard-Request` trailers say what was asked, the version files
//! it changed say what moved. These records are the deployment history and the webhooks' events. The derivation
//! is deterministic, so a record (and the id of each entry) is the same however often it is rebuilt.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use git2::{Commit, ObjectType, Oid, Repository, Tree};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commit::{request_trailers, REPLAYED_TRAILER};
use crate::layout::{APPLICATIONS, ENVIRONMENTS, RELEASE_FLOWS};
use crate::model::Identity;

/// The actions an entry can have (webhook subscribers filter on these). Requests of kinds not listed here get their
/// kind with `-` as `_`.
pub const ACTIONS: &[&str] = &[
    "release",
    "deploy",
    "train",
    "lock",
    "unlock",
    "environment",
    "flow_run",
    "flow",
    "application",
    "deployment_status",
    "external",
];

/// One thing a commit did to one environment and/or application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the commit's entries (the `<n>` of the entry's id).
    pub n: u32,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<u64>,
    /// A deploy that waits for a lock (`queued_version`), not deployed yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The request's index in [`CommitRecord::requests`] (None: a change made outside Railyard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<usize>,
    pub author: Identity,
}

/// Everything the history knows of one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub commit: String,
    /// The first parent (the history is the branch's first-parent chain).
    #[serde(default)]
    pub parent: Option<String>,
    /// The local commit a replayed commit stands for (its `Railyard-Replayed-From` trailer): entry ids use it, so a
    /// write keeps its ids when the exporter replays it onto an adopted remote branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Commit time, RFC 3339 UTC.
    pub time: String,
    pub author: Identity,
    /// The raw JSON of each `Railyard-Request` trailer, in order.
    pub requests: Vec<String>,
    pub entries: Vec<Entry>,
}

impl CommitRecord {
    /// The stable id of entry `n`: `<commit or origin>:<n>`.
    pub fn entry_id(&self, n: u32) -> String {
        format!("{}:{n}", self.origin.as_deref().unwrap_or(&self.commit))
    }
}

/// A version file that changed: `environments/<env>/applications/<app>/version`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    env: String,
    app: String,
    from: Option<u64>,
    to: Option<u64>,
}

/// Derives the record of `commit` (compared with its first parent).
pub fn derive(repo: &Repository, commit: &Commit<'_>) -> Result<CommitRecord, git2::Error> {
    let parent = commit.parent_ids().next();
    let new = commit.tree()?;
    let old = parent.map(|p| repo.find_commit(p).and_then(|c| c.tree())).transpose()?;
    let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
    let requests: Vec<String> = request_trailers(&message).map(str::to_owned).collect();
    let origin = message
        .lines()
        .filter_map(|l| l.strip_prefix(REPLAYED_TRAILER)?.strip_prefix(": "))
        .find_map(|o| Oid::from_str(o.trim()).ok())
        .map(|o| o.to_string());
    let sig = commit.author();
    let author =
        Identity { name: sig.name().unwrap_or_default().to_owned(), email: sig.email().unwrap_or_default().to_owned() };
    let ctx = Ctx { repo, old: old.as_ref(), new: &new, configs: Default::default() };
    let changes = version_changes(repo, old.as_ref(), &new)?;
    let entries = entries(&ctx, &requests, &changes, &author)?;
    Ok(CommitRecord {
        commit: commit.id().to_string(),
        parent: parent.map(|p| p.to_string()),
        origin,
        time: rfc3339(commit.time().seconds()),
        author,
        requests,
        entries,
    })
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The trees of one commit and its parent, with environment configs read once.
struct Ctx<'a, 'r> {
    repo: &'r Repository,
    old: Option<&'a Tree<'r>>,
    new: &'a Tree<'r>,
    configs: std::cell::RefCell<HashMap<String, Option<Value>>>,
}

impl Ctx<'_, '_> {
    /// An environment's config in the commit (or, for one it deleted, in the parent).
    fn config(&self, env: &str) -> Option<Value> {
        if let Some(c) = self.configs.borrow().get(env) {
            return c.clone();
        }
        let path = format!("{ENVIRONMENTS}/{env}/config.json");
        let read = |t: &Tree<'_>| blob_text(self.repo, t, &path).and_then(|s| serde_json::from_str(&s).ok());
        let c = read(self.new).or_else(|| self.old.and_then(read));
        self.configs.borrow_mut().insert(env.to_owned(), c.clone());
        c
    }

    fn group_of(&self, env: &str) -> Option<String> {
        self.config(env)?["environmentGroup"].as_str().map(str::to_owned)
    }

    /// Environments of `group` in the commit (or the parent).
    fn group_envs(&self, group: &str) -> Vec<String> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        for tree in [Some(self.new), self.old].into_iter().flatten() {
            if let Ok(envs) = env_trees(self.repo, tree) {
                names.extend(envs.into_keys());
            }
        }
        names.into_iter().filter(|e| self.group_of(e).as_deref() == Some(group)).collect()
    }

    /// "train from <upstream>" of `env`, as its config says.
    fn train_source(&self, env: &str, tag: Option<&str>) -> String {
        let upstream = self.config(env).map(|c| c["upstream"].clone()).unwrap_or(Value::Null);
        let from = match (upstream["environment"].as_str(), upstream["latest"].as_bool()) {
            (Some(e), _) => e.to_owned(),
            (None, Some(true)) => "latest".to_owned(),
            _ => "no upstream".to_owned(),
        };
        match tag {
            Some(t) => format!("train from {from} (tag {t})"),
            None => format!("train from {from}"),
        }
    }

    fn version(&self, tree: Option<&Tree<'_>>, env: &str, app: &str, file: &str) -> Option<u64> {
        let path = format!("{ENVIRONMENTS}/{env}/applications/{app}/{file}");
        tree.and_then(|t| blob_text(self.repo, t, &path)).and_then(|s| s.trim().parse().ok())
    }

    /// Names directly under `dir` in the commit that are not in the parent.
    fn added_names(&self, dir: &str) -> Vec<String> {
        let names = |t: Option<&Tree<'_>>| -> BTreeSet<String> {
            t.and_then(|t| subtree(self.repo, t, dir))
                .map(|d| d.iter().filter_map(|e| e.name().ok().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let before = names(self.old);
        names(Some(self.new)).into_iter().filter(|n| !before.contains(n)).collect()
    }
}

fn subtree<'r>(repo: &'r Repository, tree: &Tree<'_>, path: &str) -> Option<Tree<'r>> {
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    (entry.kind() == Some(ObjectType::Tree)).then(|| repo.find_tree(entry.id()).ok()).flatten()
}

fn blob_text(repo: &Repository, tree: &Tree<'_>, path: &str) -> Option<String> {
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

/// The environment directories under `environments/` (one folder level, as `review/<name>`) and their tree ids.
fn env_trees(repo: &Repository, root: &Tree<'_>) -> Result<BTreeMap<String, Oid>, git2::Error> {
    let mut out = BTreeMap::new();
    let Some(envs) = subtree(repo, root, ENVIRONMENTS) else { return Ok(out) };
    for e in envs.iter() {
        let (Some(name), Some(ObjectType::Tree)) = (e.name().ok(), e.kind()) else { continue };
        let t = repo.find_tree(e.id())?;
        let is_env = t.get_name("config.json").is_some() || t.get_name("applications").is_some();
        if is_env {
            out.insert(name.to_owned(), e.id());
        } else {
            for inner in t.iter() {
                if let (Some(n), Some(ObjectType::Tree)) = (inner.name().ok(), inner.kind()) {
                    out.insert(format!("{name}/{n}"), inner.id());
                }
            }
        }
    }
    Ok(out)
}

/// Entries of a tree by name, with their ids.
fn children(repo: &Repository, id: Option<Oid>) -> BTreeMap<String, Oid> {
    id.and_then(|id| repo.find_tree(id).ok())
        .map(|t| t.iter().filter_map(|e| Some((e.name().ok()?.to_owned(), e.id()))).collect())
        .unwrap_or_default()
}

/// Every version file that differs between the two trees; only subtrees whose ids differ are read.
fn version_changes(repo: &Repository, old: Option<&Tree<'_>>, new: &Tree<'_>) -> Result<Vec<Change>, git2::Error> {
    let id = |t: Option<&Tree<'_>>| t.and_then(|t| t.get_name(ENVIRONMENTS).map(|e| e.id()));
    if id(old) == id(Some(new)) {
        return Ok(Vec::new());
    }
    let before = old.map(|t| env_trees(repo, t)).transpose()?.unwrap_or_default();
    let after = env_trees(repo, new)?;
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut out = Vec::new();
    for env in names {
        let (b, a) = (before.get(env).copied(), after.get(env).copied());
        if b == a {
            continue;
        }
        let apps_id = |t: Option<Oid>| children(repo, t).get("applications").copied();
        let (ab, aa) = (apps_id(b), apps_id(a));
        if ab == aa {
            continue;
        }
        let (apps_b, apps_a) = (children(repo, ab), children(repo, aa));
        let apps: BTreeSet<&String> = apps_b.keys().chain(apps_a.keys()).collect();
        for app in apps {
            let (tb, ta) = (apps_b.get(app).copied(), apps_a.get(app).copied());
            if tb == ta {
                continue;
            }
            let version = |t: Option<Oid>| -> Option<u64> {
                let blob = children(repo, t).get("version").copied()?;
                std::str::from_utf8(repo.find_blob(blob).ok()?.content()).ok()?.trim().parse().ok()
            };
            let (from, to) = (version(tb), version(ta));
            if from != to {
                out.push(Change { env: env.clone(), app: app.clone(), from, to });
            }
        }
    }
    Ok(out)
}

/// The action of a request kind.
pub fn action_of(kind: &str) -> String {
    match kind {
        "create-release" | "create-release-candidate" => "release",
        "deploy" | "deploy-release-candidate" => "deploy",
        "release-train" => "train",
        "create-lock" => "lock",
        "delete-lock" => "unlock",
        "create-environment"
        | "update-environment"
        | "stop-environment"
        | "delete-environment"
        | "stop-stale-environments"
        | "delete-review-apps" => "environment",
        "run-flow" => "flow_run",
        "put-flow" => "flow",
        "update-application" => "application",
        "set-deployment-status" => "deployment_status",
        other => return other.replace('-', "_"),
    }
    .to_owned()
}

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v[key].as_str()
}

/// Whether request `r` (the `request` of an envelope) may have moved `c`.
fn claims(ctx: &Ctx<'_, '_>, r: &Value, c: &Change) -> bool {
    let (env, app) = (Some(c.env.as_str()), Some(c.app.as_str()));
    match s(r, "kind").unwrap_or_default() {
        "deploy" | "deploy-release-candidate" => s(r, "environment") == env && s(r, "application") == app,
        "release-train" => match s(&r["target"], "scope") {
            Some("environment") => s(&r["target"], "environment") == env,
            Some("environment_group") => ctx.group_of(&c.env).as_deref() == s(&r["target"], "group"),
            _ => false,
        },
        "create-release" | "create-release-candidate" => s(r, "application") == app,
        "run-flow" | "stop-stale-environments" | "delete-review-apps" => true,
        "create-environment" | "update-environment" | "stop-environment" | "delete-environment" => s(r, "name") == env,
        _ => {
            let (e, a) = (s(r, "environment"), s(r, "application"));
            (e.is_some() || a.is_some()) && e.is_none_or(|e| Some(e) == env) && a.is_none_or(|a| Some(a) == app)
        }
    }
}

fn entries(
    ctx: &Ctx<'_, '_>,
    requests: &[String],
    changes: &[Change],
    commit_author: &Identity,
) -> Result<Vec<Entry>, git2::Error> {
    let blank = |action: &str, author: &Identity, request: Option<usize>| Entry {
        n: 0,
        action: action.to_owned(),
        environment: None,
        application: None,
        team: None,
        from_version: None,
        to_version: None,
        queued: false,
        source: None,
        lock_id: None,
        message: None,
        request,
        author: author.clone(),
    };
    let change_entry = |base: &Entry, c: &Change| Entry {
        environment: Some(c.env.clone()),
        application: Some(c.app.clone()),
        from_version: c.from,
        to_version: c.to,
        ..base.clone()
    };
    let mut out: Vec<Entry> = Vec::new();
    if requests.is_empty() {
        // A commit made outside Railyard (an adopted remote branch): what moved, and nothing else is known.
        let mut base = blank("external", commit_author, None);
        base.source = Some("outside Railyard".into());
        out.extend(changes.iter().map(|c| change_entry(&base, c)));
        return Ok(number(out));
    }
    let envelopes: Vec<Value> = requests.iter().map(|r| serde_json::from_str(r).unwrap_or(Value::Null)).collect();
    // Each change belongs to the last request that may have made it (a later request of a batch sees the state the
    // earlier ones left); one no request claims goes to the last request.
    let mut claimed: Vec<Vec<&Change>> = vec![Vec::new(); envelopes.len()];
    for c in changes {
        let i = (0..envelopes.len()).rev().find(|&i| claims(ctx, &envelopes[i]["request"], c));
        claimed[i.unwrap_or(envelopes.len() - 1)].push(c);
    }
    for (i, env) in envelopes.iter().enumerate() {
        let r = &env["request"];
        let kind = s(r, "kind").unwrap_or("unknown");
        let author: Identity = serde_json::from_value(env["author"].clone()).unwrap_or_else(|_| commit_author.clone());
        let mut base = blank(&action_of(kind), &author, Some(i));
        base.source = Some("manual".into());
        let mine = &claimed[i];
        match kind {
            "deploy" | "deploy-release-candidate" => {
                base.environment = s(r, "environment").map(str::to_owned);
                base.application = s(r, "application").map(str::to_owned);
                let (e, a) =
                    (base.environment.clone().unwrap_or_default(), base.application.clone().unwrap_or_default());
                if let Some(c) = mine.iter().find(|c| c.env == e && c.app == a) {
                    out.push(change_entry(&base, c));
                } else {
                    base.from_version = ctx.version(ctx.old, &e, &a, "version");
                    base.to_version = r["version"].as_u64();
                    base.queued = base.to_version.is_some()
                        && ctx.version(Some(ctx.new), &e, &a, "queued_version") == base.to_version
                        && ctx.version(Some(ctx.new), &e, &a, "version") != base.to_version;
                    if kind == "deploy-release-candidate" {
                        base.source = s(r, "release_candidate_version").map(|v| format!("release candidate {v}"));
                    }
                    out.push(base);
                }
            }
            "release-train" => {
                let tag = s(r, "source_git_tag");
                let target_env = s(&r["target"], "environment");
                for c in mine {
                    let mut e = change_entry(&base, c);
                    e.source = Some(ctx.train_source(&c.env, tag));
                    out.push(e);
                }
                if mine.is_empty() {
                    base.environment = target_env.map(str::to_owned);
                    base.source = target_env.map(|t| ctx.train_source(t, tag));
                    out.push(base);
                }
            }
            "create-release" | "create-release-candidate" => {
                let app = s(r, "application").unwrap_or_default().to_owned();
                base.application = Some(app.clone());
                base.to_version = r["version"].as_u64().or_else(|| {
                    ctx.added_names(&format!("{APPLICATIONS}/{app}/releases"))
                        .iter()
                        .filter_map(|n| n.parse::<u64>().ok())
                        .max()
                });
                base.team = s(r, "team").map(str::to_owned);
                base.source = Some("release upload".into());
                let mut deploy = blank("deploy", &author, Some(i));
                deploy.source = Some("release upload".into());
                out.push(base);
                out.extend(mine.iter().map(|c| change_entry(&deploy, c)));
            }
            "create-lock" | "delete-lock" => {
                let t = &r["target"];
                base.lock_id = s(r, "lock_id").map(str::to_owned);
                base.message = s(r, "message").map(str::to_owned);
                base.application = s(t, "application").map(str::to_owned);
                base.team = s(t, "team").map(str::to_owned);
                let envs = match s(t, "group") {
                    Some(g) => ctx.group_envs(g),
                    None => s(t, "environment").map(str::to_owned).into_iter().collect(),
                };
                for e in envs {
                    out.push(Entry { environment: Some(e), ..base.clone() });
                }
                out.extend(mine.iter().map(|c| change_entry(&base, c)));
            }
            "run-flow" => {
                let flow = s(r, "flow").unwrap_or_default();
                let id = ctx
                    .added_names(&format!("{RELEASE_FLOWS}/{flow}/runs"))
                    .iter()
                    .filter_map(|n| n.strip_suffix(".json")?.parse::<u64>().ok())
                    .max();
                base.source = Some(id.map_or_else(|| format!("flow run {flow}"), |id| format!("flow run {flow}/{id}")));
                out.push(base.clone());
                out.extend(mine.iter().map(|c| change_entry(&base, c)));
            }
            _ => {
                base.environment = s(r, "environment").or_else(|| s(r, "name")).map(str::to_owned);
                if kind.ends_with("environments") || kind == "delete-review-apps" {
                    base.environment = None;
                }
                base.application = s(r, "application").map(str::to_owned);
                base.team = s(r, "team").map(str::to_owned);
                if mine.is_empty() || base.action == "environment" {
                    out.push(base.clone());
                }
                out.extend(mine.iter().map(|c| change_entry(&base, c)));
            }
        }
    }
    Ok(number(out))
}

fn number(mut entries: Vec<Entry>) -> Vec<Entry> {
    for (n, e) in entries.iter_mut().enumerate() {
        e.n = n as u32;
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Envelope;
    use crate::{commit, Stage};

    fn step(repo: &Repository, head: Option<Oid>, requests: &[Value]) -> Oid {
        let base = head.map(|h| repo.find_commit(h).and_then(|c| c.tree()).unwrap());
        let mut stage = Stage::new(repo, base);
        let mut applied: Vec<Envelope> = Vec::new();
        for r in requests {
            let mut e: Envelope = serde_json::from_value(serde_json::json!({
                "author": {"name": "Ann", "email": "ann@example.com"}, "at": "2026-11-23T10:00:00Z", "request": r}))
            .unwrap();
            crate::apply(&mut stage, &mut e).unwrap();
            applied.push(e);
        }
        let tree = stage.write_tree().unwrap();
        let refs: Vec<&Envelope> = applied.iter().collect();
        commit::write_commit(repo, head, tree, &Identity::default(), &commit::message(&refs)).unwrap()
    }

    fn record(repo: &Repository, c: Oid) -> CommitRecord {
        derive(repo, &repo.find_commit(c).unwrap()).unwrap()
    }

    #[test]
    fn a_release_train_and_a_lock_are_told_apart_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let envs = step(
            &repo,
            None,
            &[
                serde_json::json!({"kind": "create-environment", "name": "dev", "upstream": {"latest": true}}),
                serde_json::json!({"kind": "create-environment", "name": "prod", "upstream": {"environment": "dev"}}),
            ],
        );
        let blob = repo.blob(b"kind: ConfigMap\n").unwrap().to_string();
        let rel = step(
            &repo,
            Some(envs),
            &[
                serde_json::json!({"kind": "create-release", "application": "web", "manifests": {"dev": blob, "prod": blob}}),
            ],
        );
        let r = record(&repo, rel);
        assert_eq!(r.entries.len(), 2, "{r:?}");
        assert_eq!((r.entries[0].action.as_str(), r.entries[0].to_version), ("release", Some(1)));
        assert_eq!(r.entries[1].action, "deploy");
        assert_eq!(r.entries[1].environment.as_deref(), Some("dev"));
        assert_eq!(r.entries[1].source.as_deref(), Some("release upload"));
        let batch = step(
            &repo,
            Some(rel),
            &[
                serde_json::json!({"kind": "create-lock", "target": {"scope": "environment", "environment": "dev"}, "lock_id": "l1", "message": "hold"}),
                serde_json::json!({"kind": "release-train", "target": {"scope": "environment", "environment": "prod"}}),
            ],
        );
        let r = record(&repo, batch);
        assert_eq!(r.entries.len(), 2, "{r:?}");
        assert_eq!(r.entries[0].action, "lock");
        assert_eq!(r.entries[0].lock_id.as_deref(), Some("l1"));
        assert_eq!(r.entries[0].message.as_deref(), Some("hold"));
        let t = &r.entries[1];
        assert_eq!(
            (t.action.as_str(), t.environment.as_deref(), t.application.as_deref()),
            ("train", Some("prod"), Some("web"))
        );
        assert_eq!((t.from_version, t.to_version), (None, Some(1)));
        assert_eq!(t.source.as_deref(), Some("train from dev"));
        assert_eq!(t.author.name, "Ann");
        assert_eq!(r.entry_id(1), format!("{batch}:1"));
        assert_eq!(record(&repo, batch), r, "derivation is deterministic");
    }
}
