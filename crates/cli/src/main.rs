//! `railyard`: the command-line client. Exit codes: 0 success, 1 the API refused or could not be reached,
//! 2 bad usage.
//!
//! `args` is the command line, `request` the API call each subcommand stands for, `client` the HTTP, `output` the
//! tables; this file parses, dispatches and exits.

mod args;
mod client;
mod output;
mod request;

use std::process::ExitCode;

use args::{Cli, Command, EnvsCommand, FlowCommand, Output};
use clap::Parser;
use client::{decode, Client};

fn run(cli: &Cli) -> anyhow::Result<String> {
    if let Command::Completions { shell } = &cli.command {
        let mut out = Vec::new();
        clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "railyard", &mut out);
        return Ok(String::from_utf8_lossy(&out).into_owned());
    }
    let client = Client::new(&cli.url, client::token(cli.token.as_deref()))?;
    let body = request::send(&client, &cli.command)?;
    if cli.output == Output::Json {
        return Ok(format!("{body:#}\n"));
    }
    Ok(match &cli.command {
        Command::ReleaseTrain(_) => output::train(&decode(&body)?),
        Command::Status { .. } => output::status(&decode(&body)?),
        Command::History { .. } => output::history(&decode(&body)?),
        Command::Envs(EnvsCommand::List { .. }) => {
            let overview = client.call(reqwest::Method::GET, "/api/overview", &[])?;
            output::environments(&decode(&body)?, &decode(&overview)?)
        }
        Command::Envs(EnvsCommand::Argocd { .. }) => output::yaml_stream(&decode(&body)?)?,
        Command::Flow(FlowCommand::Runs { .. }) => output::runs(&decode(&body)?),
        _ => output::table(&body),
    })
}

fn main() -> ExitCode {
    // clap exits with 2 itself on bad usage.
    let cli = Cli::parse();
    match run(&cli) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("railyard: {e:#}");
            ExitCode::from(1)
        }
    }
}
