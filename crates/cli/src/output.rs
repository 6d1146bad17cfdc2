//! What `--output table` prints: the tables of the answers with a known shape (read into the wire types), and a
//! generic view of any other answer.

use std::fmt::Display;

use railyard_wire::{
    ArgoCdObjects, EnvironmentList, EnvironmentOverview, FlowRuns, HistoryPage, Lock, Overview, Train, Upstream,
};
use serde::Deserialize;
use serde_json::Value;

/// `v`, or `-` for nothing.
fn or_dash<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A scalar as a person reads it: a string without quotes, `-` for null.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows under a header line, each column as wide as its widest cell.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A header row.
fn head(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// The train's answer as a table: one row per application.
pub fn train(t: &Train) -> String {
    let mut rows = vec![head(&["ENVIRONMENT", "APPLICATION", "FROM", "TO", "RESULT"])];
    for env in &t.environments {
        for d in &env.deployed {
            let to = d.to.to_string();
            rows.push(vec![env.environment.clone(), d.application.clone(), or_dash(d.from), to, "deployed".into()]);
        }
        for s in &env.skipped {
            let result = format!("skipped: {}", s.reason);
            rows.push(vec![env.environment.clone(), s.application.clone(), "-".into(), "-".into(), result]);
        }
    }
    let mut out = columns(&rows);
    let dry = if t.dry_run { " (dry run: nothing written)" } else { "" };
    out.push_str(&format!("commit: {}  tag: {}{dry}\n", or_dash(t.commit.as_deref()), or_dash(t.tag.as_deref())));
    if t.empty {
        out.push_str(match (t.dry_run, t.commit.is_none()) {
            (true, _) => "nothing would move\n",
            // Kuberpult's behaviour, kept: say why a person sees a new commit.
            (false, false) => {
                "nothing moved: the commit changes no file (it marks the train; --minimize-exported-data skips it)\n"
            }
            (false, true) => "nothing moved: no commit (--minimize-exported-data)\n",
        });
    }
    out
}

/// An upstream as people name it: `latest` or its environment (None: it says neither).
fn upstream_name(u: &Upstream) -> Option<String> {
    if u.latest == Some(true) {
        Some("latest".into())
    } else {
        u.environment.clone()
    }
}

/// `railyard envs list`: NAME, STATE, TIER, UPSTREAM, GROUP, LOCKS (the environment's lock ids, from the overview),
/// UPDATED_AT.
pub fn environments(list: &EnvironmentList, overview: &Overview) -> String {
    if list.environments.is_empty() {
        return "no environments\n".into();
    }
    let mut rows = vec![head(&["NAME", "STATE", "TIER", "UPSTREAM", "GROUP", "LOCKS", "UPDATED_AT"])];
    for env in &list.environments {
        let c = &env.config;
        let upstream = c.upstream.as_ref().map_or_else(
            || "-".into(),
            |u| upstream_name(u).unwrap_or_else(|| serde_json::to_string(u).unwrap_or_default()),
        );
        let locks: Vec<&str> = overview
            .environments
            .iter()
            .find(|e| e.name == env.name)
            .into_iter()
            .flat_map(|e| &e.locks)
            .map(|l| l.lock_id.as_str())
            .collect();
        rows.push(vec![
            env.name.clone(),
            c.state.clone(),
            c.tier.clone(),
            upstream,
            or_dash(c.environment_group.as_deref()),
            if locks.is_empty() { "-".into() } else { locks.join(", ") },
            or_dash(c.updated_at.as_deref()),
        ]);
    }
    columns(&rows)
}

/// Environments in the order releases flow: an environment after its upstream, then by name.
fn flow_order(envs: &[EnvironmentOverview]) -> Vec<&EnvironmentOverview> {
    let upstream = |e: &EnvironmentOverview| e.config.upstream.as_ref().and_then(|u| u.environment.clone());
    let depth = |e: &EnvironmentOverview| {
        let mut d = 0;
        let mut next = upstream(e);
        // Bounded: a cycle of upstreams cannot loop forever.
        while let Some(up) = next.filter(|_| d <= envs.len()) {
            d += 1;
            next = envs.iter().find(|x| x.name == up).and_then(upstream);
        }
        d
    };
    let mut out: Vec<&EnvironmentOverview> = envs.iter().collect();
    out.sort_by_key(|e| (depth(e), e.name.clone()));
    out
}

/// `railyard status`: applications × environments, with the marks of [`crate::args::STATUS_MARKS`], then every
/// lock.
pub fn status(overview: &Overview) -> String {
    let envs = flow_order(&overview.environments);
    if envs.is_empty() {
        return "no environments\n".into();
    }
    let mut apps: Vec<(String, String)> = Vec::new();
    for env in &envs {
        for a in &env.applications {
            let row = (a.application.clone(), or_dash(a.team.as_deref()));
            if !apps.contains(&row) {
                apps.push(row);
            }
        }
    }
    apps.sort();
    let mut header = head(&["APPLICATION", "TEAM"]);
    header.extend(envs.iter().map(|e| if e.locks.is_empty() { e.name.clone() } else { format!("{} [E]", e.name) }));
    let mut rows = vec![header];
    for (app, team) in &apps {
        let mut row = vec![app.clone(), team.clone()];
        for env in &envs {
            let Some(a) = env.applications.iter().find(|a| a.application == *app) else {
                row.push("-".into());
                continue;
            };
            let mut c = or_dash(a.version);
            if let Some(queued) = a.queued_version {
                c.push_str(&format!(" >{queued}"));
            }
            let mut marks = String::new();
            if !a.locks.is_empty() {
                marks.push('A');
            }
            if env.team_locks.get(team).is_some_and(|l| !l.is_empty()) {
                marks.push('T');
            }
            if !marks.is_empty() {
                c.push_str(&format!(" [{marks}]"));
            }
            row.push(c);
        }
        rows.push(row);
    }
    let mut out = columns(&rows);
    let mut locks = vec![head(&["LOCK", "ON", "ID", "MESSAGE", "BY", "AT"])];
    let mut add = |kind: &str, on: String, l: &Lock| {
        let message = if l.message.is_empty() { "-".into() } else { l.message.clone() };
        locks.push(vec![kind.into(), on, l.lock_id.clone(), message, l.created_by_name.clone(), l.created_at.clone()]);
    };
    for env in &envs {
        for l in &env.locks {
            add("environment", env.name.clone(), l);
        }
        for (team, ls) in &env.team_locks {
            for l in ls {
                add("team", format!("{}/{team}", env.name), l);
            }
        }
        for a in &env.applications {
            for l in &a.locks {
                add("application", format!("{}/{}", env.name, a.application), l);
            }
        }
    }
    if locks.len() > 1 {
        out.push('\n');
        out.push_str(&columns(&locks));
    }
    out
}

/// `railyard history`: one line per entry, newest first, and how to get the next page.
pub fn history(page: &HistoryPage) -> String {
    if page.entries.is_empty() {
        return "no history\n".into();
    }
    let mut rows =
        vec![head(&["TIME", "ACTION", "ENVIRONMENT", "APPLICATION", "VERSION", "SOURCE", "AUTHOR", "COMMIT"])];
    for e in &page.entries {
        let what = match &e.lock_id {
            Some(id) => format!("lock {id}: {}", or_dash(e.message.as_deref())),
            None => or_dash(e.source.as_deref()),
        };
        let versions = match (e.from_version, e.to_version) {
            (None, None) => "-".to_owned(),
            (f, t) => format!("{} → {}", or_dash(f), or_dash(t)),
        };
        rows.push(vec![
            e.time.clone(),
            e.action.clone(),
            or_dash(e.environment.as_deref()),
            or_dash(e.application.as_deref()),
            versions,
            what,
            e.author.name.clone(),
            e.commit.chars().take(10).collect(),
        ]);
    }
    let mut out = columns(&rows);
    if let Some(next) = &page.next_before {
        out.push_str(&format!("more: --before {next}\n"));
    }
    out
}

/// `railyard flow runs`: one line per run.
pub fn runs(r: &FlowRuns) -> String {
    if r.runs.is_empty() {
        // What the generic view prints for `{"runs": []}`, as before the runs had a table of their own.
        return "runs  -\n".into();
    }
    let mut rows = vec![head(&["ID", "NAME", "STATUS", "FAILED_STEP", "CREATED_BY", "CREATED_AT"])];
    for run in &r.runs {
        rows.push(vec![
            run.id.to_string(),
            or_dash(run.name.as_deref()),
            run.status.clone(),
            or_dash(run.failed_step.as_deref()),
            run.created_by_name.clone(),
            run.created_at.clone(),
        ]);
    }
    columns(&rows)
}

/// The generated Argo CD objects as a YAML stream, as Argo CD reads them.
pub fn yaml_stream(a: &ArgoCdObjects) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for o in &a.objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(o)?);
    }
    Ok(out)
}

/// Keys people look for first, in this order; the others follow alphabetically, then [`LAST`].
const FIRST: &[&str] = &[
    "name",
    "id",
    "flow",
    "ref",
    "kind",
    "application",
    "project",
    "environment",
    "environments",
    "version",
    "release_candidate_version",
    "previous_version",
    "status",
    "state",
    "tier",
    "upstream",
    "environmentGroup",
    "lockId",
    "message",
    "team",
];

/// Keys shown last: when, and the commit a write made.
const LAST: &[&str] = &["created_at", "updated_at", "commit"];

/// `keys` in the order people read them (see [`FIRST`] and [`LAST`]).
fn ordered<'a>(keys: impl IntoIterator<Item = &'a String>) -> Vec<&'a String> {
    let rank = |k: &str| match (FIRST.iter().position(|f| *f == k), LAST.iter().position(|l| *l == k)) {
        (Some(i), _) => (0, i),
        (None, None) => (1, 0),
        (None, Some(i)) => (2, i),
    };
    let mut keys: Vec<&String> = keys.into_iter().collect();
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    keys
}

/// A header for `key`: upper case, with the few names people know shorter.
fn header(key: &str) -> String {
    match key {
        "environmentGroup" => "GROUP".into(),
        "created_by_name" => "CREATED_BY".into(),
        "lockId" => "LOCK_ID".into(),
        other => other.to_uppercase(),
    }
}

/// One value of an answer as a person reads it: an upstream as `latest` or its environment, a deployment as `app
/// version status sha`, a list of names joined with commas, `-` for nothing.
fn cell(key: &str, v: &Value) -> String {
    match (key, v) {
        ("upstream", Value::Object(_)) => {
            Upstream::deserialize(v).ok().and_then(|u| upstream_name(&u)).unwrap_or_else(|| v.to_string())
        }
        // Two shapes (a deployment record or the latest deploy), so read by key.
        ("last_deployment", Value::Object(d)) => {
            let app = d.get("application").or_else(|| d.get("project")).unwrap_or(&Value::Null);
            let version = d.get("release_candidate_version").or_else(|| d.get("version")).unwrap_or(&Value::Null);
            let mut parts = vec![show(app), show(version), show(d.get("status").unwrap_or(&Value::Null))];
            if let Some(sha) = d.get("sha") {
                parts.push(show(sha));
            }
            parts.join(" ")
        }
        (_, Value::Array(items)) if items.is_empty() => "-".into(),
        (_, Value::Array(items)) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        }
        _ => show(v),
    }
}

/// `items` as a table of every scalar key any item has, in [`ordered`] order.
fn list_table(items: &[Value]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in items.iter().filter_map(Value::as_object).flatten() {
        let scalar = !v.is_object() && !v.is_array() || k == "upstream" || k == "last_deployment";
        if scalar && !seen.contains(k) {
            seen.push(k.clone());
        }
    }
    let keys = ordered(&seen);
    let mut rows = vec![keys.iter().map(|k| header(k)).collect::<Vec<_>>()];
    rows.extend(items.iter().map(|item| keys.iter().map(|k| cell(k, &item[k.as_str()])).collect()));
    columns(&rows)
}

/// The list an answer holds (`{"environments": [...]}`, `{"runs": [...]}`, a bare array, `{"steps": [...]}`), if any.
fn listed(body: &Value) -> Option<&Vec<Value>> {
    match body {
        Value::Array(items) => Some(items),
        Value::Object(m) if m.len() <= 2 => {
            m.values().find_map(|v| v.as_array().filter(|a| !a.is_empty() && a.iter().all(Value::is_object)))
        }
        _ => None,
    }
}

/// The generic view of an answer of any shape (a release, a deploy, a lock, one environment…): a list of objects
/// as rows, an object as `key  value` lines; keys in [`ordered`] order.
pub fn table(body: &Value) -> String {
    if let Some(items) = listed(body) {
        return list_table(items);
    }
    match body {
        Value::Object(m) => {
            let width = m.keys().map(String::len).max().unwrap_or(0);
            ordered(m.keys()).into_iter().map(|k| format!("{k:<width$}  {}\n", cell(k, &m[k.as_str()]))).collect()
        }
        other => format!("{}\n", show(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train_of(v: Value) -> Train {
        serde_json::from_value(v).expect("train")
    }

    #[test]
    fn table_lists_moves_and_skips() {
        let t = train(&train_of(
            serde_json::json!({"commit": "abc", "tag": null, "environments": [{"environment": "staging",
            "deployed": [{"application": "web", "from": 1, "to": 2}],
            "skipped": [{"application": "api", "reason": "team_locked"}]}]}),
        ));
        assert!(t.contains("staging      web          1     2   deployed"), "{t}");
        assert!(t.contains("skipped: team_locked"));
        assert!(t.ends_with("commit: abc  tag: -\n"));
    }

    #[test]
    fn an_empty_train_says_why_it_made_a_commit() {
        let body = serde_json::json!({"commit": "abc", "tag": null, "empty": true, "environments": [{"environment": "staging",
            "deployed": [], "skipped": [{"application": "web", "reason": "already_deployed"}]}]});
        assert!(train(&train_of(body)).ends_with(
            "nothing moved: the commit changes no file (it marks the train; --minimize-exported-data skips it)\n"
        ));
        let body = serde_json::json!({"commit": null, "tag": null, "empty": true, "dryRun": true, "environments": []});
        assert!(train(&train_of(body)).ends_with("nothing would move\n"));
    }
}
