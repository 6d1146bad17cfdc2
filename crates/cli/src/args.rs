//! The command line: every subcommand and flag, as clap reads them.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "railyard", version, about = "Client for the Railyard GitOps release controller")]
pub struct Cli {
    /// Base URL of the Railyard API.
    #[arg(long, env = "RAILYARD_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// Bearer token (falls back to KUBERPULT_DEX_ACCESS_TOKEN, as kuberpult-client does).
    #[arg(long, env = "RAILYARD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Accepted for kuberpult-client compatibility: the Dex token in KUBERPULT_DEX_ACCESS_TOKEN is sent whenever
    /// no --token is given.
    #[arg(long = "use-dex-auth", alias = "use_dex_auth", global = true)]
    pub use_dex_auth: bool,
    /// `table` for people, `json` for scripts (the API's answer as it is).
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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

pub const STATUS_MARKS: &str = "\
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
pub struct ReleaseArgs {
    #[arg(long)]
    pub application: String,
    /// `ENV=FILE` (repeat for each environment); `-` reads standard input.
    #[arg(long = "manifest", required = true, value_name = "ENV=FILE")]
    pub manifests: Vec<String>,
    /// The release number (default: the next one).
    #[arg(long)]
    pub version: Option<u64>,
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long = "source-commit-id")]
    pub source_commit_id: Option<String>,
    #[arg(long = "source-author")]
    pub source_author: Option<String>,
    #[arg(long = "source-message")]
    pub source_message: Option<String>,
    #[arg(long = "display-version")]
    pub display_version: Option<String>,
}

#[derive(Args)]
pub struct DeployArgs {
    #[arg(long)]
    pub environment: String,
    #[arg(long)]
    pub application: String,
    #[arg(long)]
    pub version: u64,
    /// What to do when a lock is in the way.
    #[arg(long = "lock-behavior", value_parser = ["fail", "queue", "ignore"], default_value = "fail")]
    pub lock_behavior: String,
}

#[derive(Args)]
pub struct RollbackArgs {
    #[arg(long)]
    pub environment: String,
    #[arg(long)]
    pub application: String,
    /// The release to go back to (default: the one before the deployed one).
    #[arg(long)]
    pub version: Option<u64>,
    /// The application lock to create (default: `rollback-<version>`).
    #[arg(long = "lock-id")]
    pub lock_id: Option<String>,
    /// Why (the lock's message).
    #[arg(long, default_value = "")]
    pub message: String,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("where").required(true).args(["environment", "environment_group"]))]
pub struct LockArgs {
    #[arg(long)]
    pub environment: Option<String>,
    #[arg(long = "environment-group")]
    pub environment_group: Option<String>,
    /// Lock only this application in the environment.
    #[arg(long, conflicts_with_all = ["team", "environment_group"])]
    pub application: Option<String>,
    /// Lock only this team's applications in the environment.
    #[arg(long, conflicts_with = "environment_group")]
    pub team: Option<String>,
    #[arg(long = "lock-id")]
    pub lock_id: String,
    /// Why (locks only).
    #[arg(long, default_value = "")]
    pub message: String,
}

#[derive(Subcommand)]
pub enum EnvsCommand {
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
pub struct CandidateArgs {
    #[arg(long)]
    pub project: String,
    /// `<release-version>-rc<N>`.
    #[arg(long = "rc")]
    pub rc: String,
    /// `org/repo`.
    #[arg(long)]
    pub repo: String,
    #[arg(long)]
    pub commit: String,
    /// `ENV=FILE` (repeat); optional.
    #[arg(long = "manifest", value_name = "ENV=FILE")]
    pub manifests: Vec<String>,
    #[arg(long = "trigger-build")]
    pub trigger_build: bool,
}

#[derive(Subcommand)]
pub enum DeploymentCommand {
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
pub enum FlowCommand {
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
pub struct TrainArgs {
    /// The environment to move.
    #[arg(long = "target-environment", alias = "target_environment")]
    pub target_environment: Option<String>,
    /// Every environment of this group, each from its own upstream, in one commit.
    #[arg(long = "target-environment-group", alias = "target_environment_group")]
    pub target_environment_group: Option<String>,
    /// Only applications of this team.
    #[arg(long)]
    pub team: Option<String>,
    /// Read the source versions from this tag of the manifest repo.
    #[arg(long = "source-git-tag", alias = "source_git_tag")]
    pub source_git_tag: Option<String>,
    /// Tag the train's commit with this name on the remote.
    #[arg(long = "git-tag", alias = "git_tag")]
    pub git_tag: Option<String>,
    /// Show what would move; write nothing.
    #[arg(long = "dry-run", alias = "dry_run")]
    pub dry_run: bool,
}
