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

/// Sends the request; Ok(body) on 2xx, Err(message) otherwise.
fn call(cli: &Cli, method: reqwest::Method, path: &str, query: &[(&str, String)]) -> Result<Value, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    let mut req = client.request(method, format!("{}{path}", cli.url.trim_end_matches('/'))).query(query);
    if let Some(t) = token(cli) {
        req = req.bearer_auth(t);
    }
    let resp = req.send().map_err(|e| format!("cannot reach {}: {e}", cli.url))?;
    let status = resp.status();
    let text = resp.text().map_err(|e| format!("cannot read the answer: {e}"))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        Ok(body)
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
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let dry = if body["dryRun"] == Value::Bool(true) { " (dry run: nothing written)" } else { "" };
    out.push_str(&format!("commit: {}  tag: {}{dry}\n", show(&body["commit"]), show(&body["tag"])));
    out
}

fn run(cli: &Cli) -> Result<String, String> {
    match &cli.command {
        Command::ReleaseTrain(a) => {
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
            let body = call(cli, reqwest::Method::PUT, &path, &query)?;
            Ok(match cli.output {
                Output::Json => format!("{body:#}\n"),
                Output::Table => train_table(&body),
            })
        }
    }
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
}
