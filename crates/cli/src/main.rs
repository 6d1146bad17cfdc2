//! `railyard`: the command-line client. Exit codes: 0 success, 1 the API refused or could not be reached,
//! 2 bad usage.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

#[derive(Parser)]
#[command(name = "railyard", version, about = "Client for the Railyard GitOps release controller")]
struct Cli {
    /// Base URL of the Railyard API.
    #[arg(long, env = "RAILYARD_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Bearer token (falls back to KUBERPULT_DEX_ACCESS_TOKEN, as kuberpult-client does).
    #[arg(long, env = "RAILYARD_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Accepted for kuberpult-client compatibility: the Dex token in KUBERPULT_DEX_ACCESS_TOKEN is sent whenever
    /// no --token is given.
    #[arg(long = "use-dex-auth", alias = "use_dex_auth", global = true)]
    use_dex_auth: bool,
    /// `table` for people, `json` for scripts (the API's answer as it is).
    #[arg(long, value_enum, default_value = "table", global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Move a target environment (or every environment of a group) to its upstream's versions.
    #[command(name = "release-train")]
    ReleaseTrain(TrainArgs),
    /// Upload a release: `railyard release --application web --manifest dev=dev.yaml --manifest prod=prod.yaml`.
    Release(ReleaseArgs),
    /// Deploy a release of an application to an environment.
    Deploy(DeployArgs),
    /// Lock an environment, an application or a team in it, or an environment group.
    Lock(LockArgs),
    /// Remove a lock.
    Unlock(LockArgs),
    /// Environments: list, get, create, update, stop, delete (also `railyard environments …`).
    #[command(subcommand, name = "envs", visible_alias = "environments")]
    Envs(EnvsCommand),
    /// Every environment × application: the version deployed in each, queued versions and locks.
    #[command(after_long_help = STATUS_MARKS, after_help = STATUS_MARKS)]
    Status {
        /// Only applications of this team (and this team's locks).
        #[arg(long)]
        team: Option<String>,
    },
    /// Create a release candidate (`<version>-rc<N>`) of a project (an application).
    #[command(name = "release-candidate")]
    ReleaseCandidate(CandidateArgs),
    /// Deployments of release candidates: create one (deploys), or report a status.
    #[command(subcommand)]
    Deployment(DeploymentCommand),
    /// Release flows: store a template, show it, run it, list its runs.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// What happened, newest first: releases, deploys, trains, locks… of one environment and/or application.
    History {
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        application: Option<String>,
        /// Entries to show (1–500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only entries older than this commit or entry id (`next_before` of the previous page).
        #[arg(long)]
        before: Option<String>,
    },
    /// Deploy an older release and lock the application there, so trains leave it (deploy and lock).
    Rollback(RollbackArgs),
    /// Create an undeploy release: empty manifests everywhere the application is, deployed to `latest`
    /// environments at once and moved by trains like any release.
    Undeploy {
        #[arg(long)]
        application: String,
    },
    /// Delete an application everywhere, once every environment runs its undeploy release.
    #[command(name = "delete-app")]
    DeleteApp {
        #[arg(long)]
        application: String,
    },
    /// Remove an application from one environment; trains leave it out until it is deployed there again.
    #[command(name = "remove-env")]
    RemoveEnv {
        #[arg(long)]
        environment: String,
        #[arg(long)]
        application: String,
    },
    /// Print a shell completion script: `railyard completions bash > /etc/bash_completion.d/railyard`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const STATUS_MARKS: &str = "\
Columns are environments, upstreams before the environments that take from them; rows are applications.
Marks:
  12       version 12 is deployed
  -        not deployed there
  >13      version 13 is queued: it waits for a lock to go
  [A]      the application is locked in that environment
  [T]      the application's team is locked in that environment
  [E]      (after an environment's name) the environment is locked: nothing moves into it
Every lock is listed below the table with its message, who set it and when.
`--output json` prints the overview (filtered by --team) as the API answers it.";

#[derive(Args)]
struct ReleaseArgs {
    #[arg(long)]
    application: String,
    /// `ENV=FILE` (repeat for each environment); `-` reads standard input.
    #[arg(long = "manifest", required = true, value_name = "ENV=FILE")]
    manifests: Vec<String>,
    /// The release number (default: the next one).
    #[arg(long)]
    version: Option<u64>,
    #[arg(long)]
    team: Option<String>,
    #[arg(long = "source-commit-id")]
    source_commit_id: Option<String>,
    #[arg(long = "source-author")]
    source_author: Option<String>,
    #[arg(long = "source-message")]
    source_message: Option<String>,
    #[arg(long = "display-version")]
    display_version: Option<String>,
}

#[derive(Args)]
struct DeployArgs {
    #[arg(long)]
    environment: String,
    #[arg(long)]
    application: String,
    #[arg(long)]
    version: u64,
    /// What to do when a lock is in the way.
    #[arg(long = "lock-behavior", value_parser = ["fail", "queue", "ignore"], default_value = "fail")]
    lock_behavior: String,
}

#[derive(Args)]
struct RollbackArgs {
    #[arg(long)]
    environment: String,
    #[arg(long)]
    application: String,
    /// The release to go back to (default: the one before the deployed one).
    #[arg(long)]
    version: Option<u64>,
    /// The application lock to create (default: `rollback-<version>`).
    #[arg(long = "lock-id")]
    lock_id: Option<String>,
    /// Why (the lock's message).
    #[arg(long, default_value = "")]
    message: String,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("where").required(true).args(["environment", "environment_group"]))]
struct LockArgs {
    #[arg(long)]
    environment: Option<String>,
    #[arg(long = "environment-group")]
    environment_group: Option<String>,
    /// Lock only this application in the environment.
    #[arg(long, conflicts_with_all = ["team", "environment_group"])]
    application: Option<String>,
    /// Lock only this team's applications in the environment.
    #[arg(long, conflicts_with = "environment_group")]
    team: Option<String>,
    #[arg(long = "lock-id")]
    lock_id: String,
    /// Why (locks only).
    #[arg(long, default_value = "")]
    message: String,
}

#[derive(Subcommand)]
enum EnvsCommand {
    /// List environments.
    List {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        search: Option<String>,
        /// `available`, `stopping`, `stopped` (comma-separated).
        #[arg(long)]
        states: Option<String>,
    },
    /// Show one environment (name or id).
    Get { env: String },
    /// Create an environment.
    Create {
        name: String,
        /// Takes every new release at once.
        #[arg(long = "upstream-latest", conflicts_with = "upstream")]
        upstream_latest: bool,
        /// Release trains take the versions of this environment.
        #[arg(long)]
        upstream: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        tier: Option<String>,
        #[arg(long = "external-url")]
        external_url: Option<String>,
        /// A file (YAML or JSON) with the environment's `argocd` settings.
        #[arg(long = "argocd", value_name = "FILE")]
        argocd: Option<String>,
    },
    /// Change an environment's settings.
    Update {
        env: String,
        #[arg(long)]
        upstream: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        tier: Option<String>,
        #[arg(long = "external-url")]
        external_url: Option<String>,
        #[arg(long)]
        protected: Option<bool>,
        /// A file (YAML or JSON) with new `argocd` settings.
        #[arg(long = "argocd", value_name = "FILE", conflicts_with = "no_argocd")]
        argocd: Option<String>,
        /// Remove the `argocd` settings (and the environment's Argo CD file).
        #[arg(long = "no-argocd")]
        no_argocd: bool,
    },
    /// Print the Argo CD AppProject and Applications generated for an environment, as YAML.
    Argocd { env: String },
    /// Stop an environment.
    Stop {
        env: String,
        #[arg(long)]
        force: bool,
    },
    /// Delete a stopped environment.
    Delete { env: String },
}

#[derive(Args)]
struct CandidateArgs {
    #[arg(long)]
    project: String,
    /// `<release-version>-rc<N>`.
    #[arg(long = "rc")]
    rc: String,
    /// `org/repo`.
    #[arg(long)]
    repo: String,
    #[arg(long)]
    commit: String,
    /// `ENV=FILE` (repeat); optional.
    #[arg(long = "manifest", value_name = "ENV=FILE")]
    manifests: Vec<String>,
    #[arg(long = "trigger-build")]
    trigger_build: bool,
}

#[derive(Subcommand)]
enum DeploymentCommand {
    /// Deploy a release candidate to an environment (records a `pending` deployment).
    Create {
        #[arg(long)]
        project: String,
        #[arg(long)]
        environment: String,
        #[arg(long = "rc")]
        rc: String,
    },
    /// Report a deployment's status (`pending`, `in_progress`, `success`, `failure`, `canceling`, `canceled`, `unknown`).
    Status {
        #[arg(long)]
        project: String,
        #[arg(long)]
        environment: String,
        #[arg(long = "rc")]
        rc: String,
        #[arg(long)]
        status: String,
    },
}

#[derive(Subcommand)]
enum FlowCommand {
    /// Store a template (YAML or JSON file; `-` reads standard input).
    Put { flow: String, file: String },
    /// Show a template.
    Get { flow: String },
    /// Run a flow.
    Run {
        flow: String,
        /// `NAME=VALUE` (repeat).
        #[arg(long = "arg", value_name = "NAME=VALUE")]
        args: Vec<String>,
        /// `REF.FIELD=VALUE` (repeat).
        #[arg(long = "override", value_name = "REF.FIELD=VALUE")]
        overrides: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// List a flow's runs.
    Runs { flow: String },
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["target_environment", "target_environment_group"]))]
struct TrainArgs {
    /// The environment to move.
    #[arg(long = "target-environment", alias = "target_environment")]
    target_environment: Option<String>,
    /// Every environment of this group, each from its own upstream, in one commit.
    #[arg(long = "target-environment-group", alias = "target_environment_group")]
    target_environment_group: Option<String>,
    /// Only applications of this team.
    #[arg(long)]
    team: Option<String>,
    /// Read the source versions from this tag of the manifest repo.
    #[arg(long = "source-git-tag", alias = "source_git_tag")]
    source_git_tag: Option<String>,
    /// Tag the train's commit with this name on the remote.
    #[arg(long = "git-tag", alias = "git_tag")]
    git_tag: Option<String>,
    /// Show what would move; write nothing.
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
}

/// Percent-encodes one path segment (environment names may hold a `/`).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The bearer token: `--token`/`RAILYARD_TOKEN`, else kuberpult-client's `KUBERPULT_DEX_ACCESS_TOKEN`.
fn token(cli: &Cli) -> Option<String> {
    cli.token.clone().or_else(|| std::env::var("KUBERPULT_DEX_ACCESS_TOKEN").ok())
}

/// A request body.
enum Body {
    None,
    Json(Value),
    /// Content type and bytes.
    Raw(String, Vec<u8>),
}

/// Sends the request; Ok(body) on 2xx, Err(message) otherwise.
fn call(cli: &Cli, method: reqwest::Method, path: &str, query: &[(&str, String)]) -> Result<Value, String> {
    send(cli, method, path, query, Body::None)
}

fn send(cli: &Cli, method: reqwest::Method, path: &str, query: &[(&str, String)], body: Body) -> Result<Value, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    let mut req = client.request(method, format!("{}{path}", cli.url.trim_end_matches('/'))).query(query);
    if let Some(t) = token(cli) {
        req = req.bearer_auth(t);
    }
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Raw(content_type, bytes) => req.header("content-type", content_type).body(bytes),
    };
    let resp = req.send().map_err(|e| format!("cannot reach {}: {e}", cli.url))?;
    let status = resp.status();
    let text = resp.text().map_err(|e| format!("cannot read the answer: {e}"))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        Ok(if status == reqwest::StatusCode::NO_CONTENT { serde_json::json!({"deleted": true}) } else { body })
    } else {
        let msg = body.get("error").and_then(Value::as_str).map_or_else(|| body.to_string(), str::to_owned);
        Err(format!("{} {}: {msg}", status.as_u16(), status.canonical_reason().unwrap_or("")))
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The train's answer as a table: one row per application.
fn train_table(body: &Value) -> String {
    let mut rows = vec![["ENVIRONMENT".to_owned(), "APPLICATION".into(), "FROM".into(), "TO".into(), "RESULT".into()]];
    for env in body["environments"].as_array().into_iter().flatten() {
        let name = show(&env["environment"]);
        for d in env["deployed"].as_array().into_iter().flatten() {
            rows.push([name.clone(), show(&d["application"]), show(&d["from"]), show(&d["to"]), "deployed".into()]);
        }
        for s in env["skipped"].as_array().into_iter().flatten() {
            rows.push([
                name.clone(),
                show(&s["application"]),
                "-".into(),
                "-".into(),
                format!("skipped: {}", show(&s["reason"])),
            ]);
        }
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    let mut out = columns(&rows);
    let dry_run = body["dryRun"] == Value::Bool(true);
    let dry = if dry_run { " (dry run: nothing written)" } else { "" };
    out.push_str(&format!("commit: {}  tag: {}{dry}\n", show(&body["commit"]), show(&body["tag"])));
    if body["empty"] == Value::Bool(true) {
        out.push_str(match (dry_run, body["commit"].is_null()) {
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

/// `ENV=FILE` → (env, contents); `-` reads standard input.
fn manifest(spec: &str) -> Result<(String, Vec<u8>), String> {
    let (env, file) = spec.split_once('=').ok_or_else(|| format!("--manifest {spec:?}: expected ENV=FILE"))?;
    let bytes = if file == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| format!("reading stdin: {e}"))?;
        buf
    } else {
        std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?
    };
    Ok((env.to_owned(), bytes))
}

/// A multipart/form-data body of `parts` (names sent as they are, as Kuberpult's clients do).
fn multipart(parts: &[(String, Vec<u8>)]) -> Body {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let boundary = format!("railyard-boundary-{}-{nanos:x}", std::process::id());
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Body::Raw(format!("multipart/form-data; boundary={boundary}"), body)
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

/// One value as a person reads it: an upstream as `latest` or its environment, a deployment as `app version
/// status sha`, a list of names joined with commas, `-` for nothing.
fn cell(key: &str, v: &Value) -> String {
    match (key, v) {
        ("upstream", Value::Object(u)) => match (u.get("latest"), u.get("environment")) {
            (Some(Value::Bool(true)), _) => "latest".into(),
            (_, Some(Value::String(e))) => e.clone(),
            _ => v.to_string(),
        },
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

/// `items` as a table of `keys` (None: every scalar key any item has, in [`ordered`] order).
fn list_table(items: &[Value], keys: Option<&[&str]>) -> String {
    let keys: Vec<String> = match keys {
        Some(k) => k.iter().map(|k| (*k).to_owned()).collect(),
        None => {
            let mut seen: Vec<String> = Vec::new();
            for (k, v) in items.iter().filter_map(Value::as_object).flatten() {
                let scalar = !v.is_object() && !v.is_array() || k == "upstream" || k == "last_deployment";
                if scalar && !seen.contains(k) {
                    seen.push(k.clone());
                }
            }
            ordered(&seen).into_iter().cloned().collect()
        }
    };
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

/// A generic view: a list of objects as rows, an object as `key  value` lines; keys in [`ordered`] order.
fn table(body: &Value, keys: Option<&[&str]>) -> String {
    if let Some(items) = listed(body) {
        return list_table(items, keys);
    }
    match body {
        Value::Object(m) => {
            let width = m.keys().map(String::len).max().unwrap_or(0);
            ordered(m.keys()).into_iter().map(|k| format!("{k:<width$}  {}\n", cell(k, &m[k.as_str()]))).collect()
        }
        other => format!("{}\n", show(other)),
    }
}

/// `railyard envs list`: NAME, STATE, TIER, UPSTREAM, GROUP, LOCKS (the environment's lock ids, from the overview),
/// UPDATED_AT.
fn envs_table(cli: &Cli, body: &Value) -> Result<String, String> {
    let overview = call(cli, reqwest::Method::GET, "/api/overview", &[])?;
    let mut items = body["environments"].as_array().cloned().unwrap_or_default();
    for item in &mut items {
        let env = overview["environments"].as_array().into_iter().flatten().find(|e| e["name"] == item["name"]);
        let ids: Vec<Value> =
            env.and_then(|e| e["locks"].as_array()).into_iter().flatten().map(|l| l["lockId"].clone()).collect();
        item["locks"] = Value::Array(ids);
    }
    if items.is_empty() {
        return Ok("no environments\n".into());
    }
    Ok(list_table(&items, Some(&["name", "state", "tier", "upstream", "environmentGroup", "locks", "updated_at"])))
}

/// The overview with only `team`'s applications and team locks.
fn team_only(mut overview: Value, team: &str) -> Value {
    for env in overview["environments"].as_array_mut().into_iter().flatten() {
        if let Some(apps) = env["applications"].as_array_mut() {
            apps.retain(|a| a["team"] == team);
        }
        if let Some(locks) = env["team_locks"].as_object_mut() {
            locks.retain(|t, _| t == team);
        }
    }
    overview
}

/// Environments in the order releases flow: an environment after its upstream, then by name.
fn flow_order(envs: &[Value]) -> Vec<&Value> {
    let upstream = |e: &Value| e["config"]["upstream"]["environment"].as_str().map(str::to_owned);
    let depth = |e: &Value| {
        let mut d = 0;
        let mut next = upstream(e);
        // Bounded: a cycle of upstreams cannot loop forever.
        while let Some(up) = next.filter(|_| d <= envs.len()) {
            d += 1;
            next = envs.iter().find(|x| x["name"] == up.as_str()).and_then(upstream);
        }
        d
    };
    let mut out: Vec<&Value> = envs.iter().collect();
    out.sort_by_key(|e| (depth(e), e["name"].as_str().unwrap_or_default().to_owned()));
    out
}

/// `railyard status`: applications × environments, with the marks of [`STATUS_MARKS`], then every lock.
fn status_table(overview: &Value) -> String {
    let envs_raw = overview["environments"].as_array().cloned().unwrap_or_default();
    let envs = flow_order(&envs_raw);
    if envs.is_empty() {
        return "no environments\n".into();
    }
    let mut apps: Vec<(String, String)> = Vec::new();
    for env in &envs {
        for a in env["applications"].as_array().into_iter().flatten() {
            let row = (show(&a["application"]), show(&a["team"]));
            if !apps.contains(&row) {
                apps.push(row);
            }
        }
    }
    apps.sort();
    let locked = |e: &Value| e["locks"].as_array().is_some_and(|l| !l.is_empty());
    let mut head = vec!["APPLICATION".to_owned(), "TEAM".to_owned()];
    head.extend(envs.iter().map(|e| {
        let name = show(&e["name"]);
        if locked(e) {
            format!("{name} [E]")
        } else {
            name
        }
    }));
    let mut rows = vec![head];
    for (app, team) in &apps {
        let mut row = vec![app.clone(), team.clone()];
        for env in &envs {
            let deployed =
                env["applications"].as_array().into_iter().flatten().find(|a| a["application"] == app.as_str());
            let Some(a) = deployed else {
                row.push("-".into());
                continue;
            };
            let mut c = show(&a["version"]);
            if !a["queued_version"].is_null() {
                c.push_str(&format!(" >{}", show(&a["queued_version"])));
            }
            let mut marks = String::new();
            if a["locks"].as_array().is_some_and(|l| !l.is_empty()) {
                marks.push('A');
            }
            if env["team_locks"][team.as_str()].as_array().is_some_and(|l| !l.is_empty()) {
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
    let mut locks = vec![["LOCK".to_owned(), "ON".into(), "ID".into(), "MESSAGE".into(), "BY".into(), "AT".into()]];
    let mut add = |kind: &str, on: String, l: &Value| {
        let message = l["message"].as_str().filter(|m| !m.is_empty()).unwrap_or("-").to_owned();
        locks.push([kind.into(), on, show(&l["lockId"]), message, show(&l["created_by_name"]), show(&l["created_at"])]);
    };
    for env in &envs {
        let name = show(&env["name"]);
        for l in env["locks"].as_array().into_iter().flatten() {
            add("environment", name.clone(), l);
        }
        for (team, ls) in env["team_locks"].as_object().into_iter().flatten() {
            for l in ls.as_array().into_iter().flatten() {
                add("team", format!("{name}/{team}"), l);
            }
        }
        for a in env["applications"].as_array().into_iter().flatten() {
            for l in a["locks"].as_array().into_iter().flatten() {
                add("application", format!("{name}/{}", show(&a["application"])), l);
            }
        }
    }
    if locks.len() > 1 {
        out.push('\n');
        let rows: Vec<Vec<String>> = locks.into_iter().map(Vec::from).collect();
        out.push_str(&columns(&rows));
    }
    out
}

fn pairs(specs: &[String], what: &str) -> Result<Vec<(String, String)>, String> {
    specs
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{what} {s:?}: expected KEY=VALUE"))
        })
        .collect()
}

/// Sets each given string field of a JSON body.
fn set_strings(body: &mut Value, fields: &[(&str, &Option<String>)]) {
    for (k, v) in fields {
        if let Some(v) = v {
            body[*k] = Value::String(v.clone());
        }
    }
}

fn lock_path(a: &LockArgs) -> String {
    let id = segment(&a.lock_id);
    match (&a.environment, &a.environment_group, &a.application, &a.team) {
        (Some(env), _, Some(app), _) => {
            format!("/api/environments/{}/applications/{}/locks/{id}", segment(env), segment(app))
        }
        (Some(env), _, None, Some(team)) => {
            format!("/api/environments/{}/teams/{}/locks/{id}", segment(env), segment(team))
        }
        (Some(env), _, None, None) => format!("/api/environments/{}/locks/{id}", segment(env)),
        (None, Some(group), _, _) => format!("/api/environment-groups/{}/locks/{id}", segment(group)),
        (None, None, _, _) => unreachable!("clap requires a target"),
    }
}

/// Sends the request a command stands for; the API's answer.
fn request(cli: &Cli) -> Result<Value, String> {
    use reqwest::Method;
    match &cli.command {
        Command::Completions { .. } => unreachable!("completions make no request"),
        Command::ReleaseTrain(a) => train(cli, a),
        Command::Status { team } => {
            let overview = call(cli, Method::GET, "/api/overview", &[])?;
            Ok(match team {
                Some(t) => team_only(overview, t),
                None => overview,
            })
        }
        Command::Release(a) => {
            let mut parts: Vec<(String, Vec<u8>)> = vec![("application".into(), a.application.clone().into_bytes())];
            for (key, value) in [
                ("version", a.version.map(|v| v.to_string())),
                ("team", a.team.clone()),
                ("source_commit_id", a.source_commit_id.clone()),
                ("source_author", a.source_author.clone()),
                ("source_message", a.source_message.clone()),
                ("display_version", a.display_version.clone()),
            ] {
                if let Some(v) = value {
                    parts.push((key.into(), v.into_bytes()));
                }
            }
            for m in &a.manifests {
                let (env, bytes) = manifest(m)?;
                parts.push((format!("manifests[{env}]"), bytes));
            }
            send(cli, Method::POST, "/api/release", &[], multipart(&parts))
        }
        Command::Deploy(a) => {
            let path = format!(
                "/api/environments/{}/applications/{}/deploy",
                segment(&a.environment),
                segment(&a.application)
            );
            send(
                cli,
                Method::PUT,
                &path,
                &[],
                Body::Json(serde_json::json!({"version": a.version, "lockBehavior": a.lock_behavior})),
            )
        }
        Command::Lock(a) => {
            send(cli, Method::PUT, &lock_path(a), &[], Body::Json(serde_json::json!({"message": a.message})))
        }
        Command::Unlock(a) => call(cli, Method::DELETE, &lock_path(a), &[]),
        Command::Rollback(a) => {
            let path = format!(
                "/api/environments/{}/applications/{}/rollback",
                segment(&a.environment),
                segment(&a.application)
            );
            let mut body = serde_json::json!({"message": a.message});
            if let Some(v) = a.version {
                body["version"] = v.into();
            }
            if let Some(id) = &a.lock_id {
                body["lockId"] = id.clone().into();
            }
            send(cli, Method::POST, &path, &[], Body::Json(body))
        }
        Command::Undeploy { application } => {
            call(cli, Method::POST, &format!("/api/applications/{}/undeploy", segment(application)), &[])
        }
        Command::DeleteApp { application } => {
            call(cli, Method::DELETE, &format!("/api/applications/{}", segment(application)), &[])
        }
        Command::RemoveEnv { environment, application } => call(
            cli,
            Method::DELETE,
            &format!("/api/environments/{}/applications/{}", segment(environment), segment(application)),
            &[],
        ),
        Command::Envs(c) => match c {
            EnvsCommand::List { name, search, states } => {
                let mut q = Vec::new();
                for (k, v) in [("name", name), ("search", search), ("states", states)] {
                    if let Some(v) = v {
                        q.push((k, v.clone()));
                    }
                }
                call(cli, Method::GET, "/api/environments", &q)
            }
            EnvsCommand::Get { env } => call(cli, Method::GET, &format!("/api/environments/{}", segment(env)), &[]),
            EnvsCommand::Create { name, upstream_latest, upstream, group, tier, external_url, argocd } => {
                let mut body = serde_json::json!({ "name": name });
                if *upstream_latest {
                    body["upstream"] = serde_json::json!({"latest": true});
                } else if let Some(u) = upstream {
                    body["upstream"] = serde_json::json!({"environment": u});
                }
                set_strings(&mut body, &[("environmentGroup", group), ("tier", tier), ("external_url", external_url)]);
                if let Some(file) = argocd {
                    body["argocd"] = settings_file(file)?;
                }
                send(cli, Method::POST, "/api/environments", &[], Body::Json(body))
            }
            EnvsCommand::Update { env, upstream, group, tier, external_url, protected, argocd, no_argocd } => {
                let mut body = serde_json::json!({});
                if let Some(u) = upstream {
                    body["upstream"] = serde_json::json!({"environment": u});
                }
                set_strings(&mut body, &[("environmentGroup", group), ("tier", tier), ("external_url", external_url)]);
                if let Some(p) = protected {
                    body["protected"] = Value::Bool(*p);
                }
                if let Some(file) = argocd {
                    body["argocd"] = settings_file(file)?;
                } else if *no_argocd {
                    body["argocd"] = Value::Null;
                }
                send(cli, Method::PUT, &format!("/api/environments/{}", segment(env)), &[], Body::Json(body))
            }
            EnvsCommand::Stop { env, force } => call(
                cli,
                Method::POST,
                &format!("/api/environments/{}/stop", segment(env)),
                &[("force", force.to_string())],
            ),
            EnvsCommand::Argocd { env } => {
                call(cli, Method::GET, &format!("/api/environments/{}/argocd", segment(env)), &[])
            }
            EnvsCommand::Delete { env } => {
                call(cli, Method::DELETE, &format!("/api/environments/{}", segment(env)), &[])
            }
        },
        Command::ReleaseCandidate(a) => {
            let mut manifests = serde_json::Map::new();
            for m in &a.manifests {
                let (env, bytes) = manifest(m)?;
                manifests.insert(env, Value::String(String::from_utf8(bytes).map_err(|_| format!("{m}: not UTF-8"))?));
            }
            let body = serde_json::json!({"repo": a.repo, "commit": a.commit, "trigger_build_workflow": a.trigger_build, "manifests": manifests});
            let path = format!("/api/releases/{}/releases/{}", segment(&a.project), segment(&a.rc));
            send(cli, Method::POST, &path, &[], Body::Json(body))
        }
        Command::Deployment(c) => match c {
            DeploymentCommand::Create { project, environment, rc } => {
                let path =
                    format!("/api/releases/{}/environments/{}/deployments", segment(project), segment(environment));
                send(cli, Method::POST, &path, &[], Body::Json(serde_json::json!({"release_candidate_version": rc})))
            }
            DeploymentCommand::Status { project, environment, rc, status } => {
                let path =
                    format!("/api/releases/{}/environments/{}/deployments", segment(project), segment(environment));
                let body = serde_json::json!({"release_candidate_version": rc, "status": status});
                send(cli, Method::PATCH, &path, &[], Body::Json(body))
            }
        },
        Command::History { environment, application, limit, before } => {
            let path = match (environment, application) {
                (Some(e), Some(a)) => format!("/api/environments/{}/applications/{}/history", segment(e), segment(a)),
                (Some(e), None) => format!("/api/environments/{}/history", segment(e)),
                (None, Some(a)) => format!("/api/applications/{}/history", segment(a)),
                (None, None) => "/api/history".to_owned(),
            };
            let mut query = vec![("limit", limit.to_string())];
            if let Some(b) = before {
                query.push(("before", b.clone()));
            }
            call(cli, Method::GET, &path, &query)
        }
        Command::Flow(c) => match c {
            FlowCommand::Put { flow, file } => {
                let (_, bytes) = manifest(&format!("x={file}"))?;
                let json = bytes.first().is_some_and(|b| *b == b'{');
                let ct = if json { "application/json" } else { "application/yaml" };
                send(
                    cli,
                    Method::PUT,
                    &format!("/api/release-flows/{}", segment(flow)),
                    &[],
                    Body::Raw(ct.into(), bytes),
                )
            }
            FlowCommand::Get { flow } => call(cli, Method::GET, &format!("/api/release-flows/{}", segment(flow)), &[]),
            FlowCommand::Runs { flow } => {
                call(cli, Method::GET, &format!("/api/release-flows/{}/runs", segment(flow)), &[])
            }
            FlowCommand::Run { flow, args, overrides, name, description, dry_run } => {
                let mut body = serde_json::json!({"arguments": {}, "overrides": {}, "dryRun": dry_run});
                for (k, v) in pairs(args, "--arg")? {
                    body["arguments"][k] = Value::String(v);
                }
                for (k, v) in pairs(overrides, "--override")? {
                    let (r, field) =
                        k.split_once('.').ok_or_else(|| format!("--override {k}: expected REF.FIELD=VALUE"))?;
                    if body["overrides"].get(r).is_none() {
                        body["overrides"][r] = serde_json::json!({});
                    }
                    body["overrides"][r][field] = Value::String(v);
                }
                if let Some(n) = name {
                    body["name"] = Value::String(n.clone());
                }
                if let Some(d) = description {
                    body["description"] = Value::String(d.clone());
                }
                send(cli, Method::POST, &format!("/api/release-flows/{}/runs", segment(flow)), &[], Body::Json(body))
            }
        },
    }
}

fn run(cli: &Cli) -> Result<String, String> {
    if let Command::Completions { shell } = &cli.command {
        let mut out = Vec::new();
        clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "railyard", &mut out);
        return Ok(String::from_utf8_lossy(&out).into_owned());
    }
    let body = request(cli)?;
    Ok(match (cli.output, &cli.command) {
        (Output::Json, _) => format!("{body:#}\n"),
        (Output::Table, Command::ReleaseTrain(_)) => train_table(&body),
        (Output::Table, Command::Status { .. }) => status_table(&body),
        (Output::Table, Command::History { .. }) => history_table(&body),
        (Output::Table, Command::Envs(EnvsCommand::List { .. })) => envs_table(cli, &body)?,
        (Output::Table, Command::Envs(EnvsCommand::Argocd { .. })) => yaml_stream(&body)?,
        (Output::Table, Command::Flow(FlowCommand::Runs { .. })) => {
            table(&body, Some(&["id", "name", "status", "failed_step", "created_by_name", "created_at"]))
        }
        (Output::Table, _) => table(&body, None),
    })
}

/// `railyard history`: one line per entry, newest first, and how to get the next page.
fn history_table(body: &Value) -> String {
    let entries = body["entries"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        return "no history\n".into();
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| {
            let what = match (&e["lock_id"], &e["source"]) {
                (Value::String(id), _) => format!("lock {id}: {}", text(&e["message"])),
                (_, s) => text(s),
            };
            let versions = match (&e["from_version"], &e["to_version"]) {
                (Value::Null, Value::Null) => "-".to_owned(),
                (f, t) => format!("{} → {}", text(f), text(t)),
            };
            [
                text(&e["time"]),
                text(&e["action"]),
                text(&e["environment"]),
                text(&e["application"]),
                versions,
                what,
                text(&e["author"]["name"]),
                text(&e["commit"]).chars().take(10).collect(),
            ]
        })
        .collect();
    let head = ["TIME", "ACTION", "ENVIRONMENT", "APPLICATION", "VERSION", "SOURCE", "AUTHOR", "COMMIT"];
    let widths: Vec<usize> = (0..head.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(head.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    if let Some(next) = body["next_before"].as_str() {
        out.push_str(&format!("more: --before {next}\n"));
    }
    out
}

/// Settings read from a YAML or JSON file (JSON is YAML).
fn settings_file(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_yaml::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

/// The `objects` of an answer as a YAML stream, as Argo CD reads them.
fn yaml_stream(body: &Value) -> Result<String, String> {
    let mut out = String::new();
    for o in body["objects"].as_array().into_iter().flatten() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(o).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn train(cli: &Cli, a: &TrainArgs) -> Result<Value, String> {
    let path = match (&a.target_environment, &a.target_environment_group) {
        (Some(env), _) => format!("/api/environments/{}/releasetrain", segment(env)),
        (None, Some(group)) => format!("/api/environment-groups/{}/releasetrain", segment(group)),
        (None, None) => unreachable!("clap requires a target"),
    };
    let mut query = Vec::new();
    for (key, value) in [("team", &a.team), ("sourceGitTag", &a.source_git_tag), ("gitTag", &a.git_tag)] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    if a.dry_run {
        query.push(("dryRun", "true".into()));
    }
    call(cli, reqwest::Method::PUT, &path, &query)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("railyard: {msg}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("review/fix-a"), "review%2Ffix-a");
        assert_eq!(segment("dev"), "dev");
    }

    #[test]
    fn table_lists_moves_and_skips() {
        let body = serde_json::json!({"commit": "abc", "tag": null, "environments": [{"environment": "staging",
            "deployed": [{"application": "web", "from": 1, "to": 2}],
            "skipped": [{"application": "api", "reason": "team_locked"}]}]});
        let t = train_table(&body);
        assert!(t.contains("staging      web          1     2   deployed"), "{t}");
        assert!(t.contains("skipped: team_locked"));
        assert!(t.ends_with("commit: abc  tag: -\n"));
    }

    #[test]
    fn an_empty_train_says_why_it_made_a_commit() {
        let body = serde_json::json!({"commit": "abc", "tag": null, "empty": true, "environments": [{"environment": "staging",
            "deployed": [], "skipped": [{"application": "web", "reason": "already_deployed"}]}]});
        assert!(train_table(&body).ends_with(
            "nothing moved: the commit changes no file (it marks the train; --minimize-exported-data skips it)\n"
        ));
        let body = serde_json::json!({"commit": null, "tag": null, "empty": true, "dryRun": true, "environments": []});
        assert!(train_table(&body).ends_with("nothing would move\n"));
    }
}
