//! The overview: environments as columns (grouped, in upstream order), applications as rows, each cell the
//! deployed version with who and when on hover, a mark for a queued version, and the locks.

use std::collections::{BTreeMap, BTreeSet};

use maud::{html, Markup};
use railyard_manifest::{DeployedApp, EnvironmentOverview, Lock};

use crate::{age, order, page, seg, Ctx, Nav};

/// The overview's filters, as the URL carries them (`/?team=red&app=web`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only applications of exactly this team.
    pub team: Option<String>,
    /// Only applications whose name contains this (any case).
    pub app: Option<String>,
}

impl Filter {
    fn keeps(&self, app: &str, team: Option<&str>) -> bool {
        self.team.as_deref().is_none_or(|t| team == Some(t))
            && self.app.as_deref().is_none_or(|needle| app.to_lowercase().contains(&needle.to_lowercase()))
    }
}

fn lock_lines(kind: &str, locks: &[Lock], now: time::OffsetDateTime) -> String {
    locks
        .iter()
        .map(|l| format!("{kind} lock {}: {} ({}, {})", l.id, l.message, l.created_by_name, age(&l.created_at, now)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn cell(
    d: Option<&DeployedApp>,
    team_locks: Option<&Vec<Lock>>,
    app: &str,
    env: &str,
    now: time::OffsetDateTime,
) -> Markup {
    let Some(d) = d else {
        return html! { td.empty {} };
    };
    let mut hover = Vec::new();
    if let (Some(name), Some(at)) = (&d.deployed_by, &d.deployed_at_utc) {
        let email = d.deployed_by_email.as_deref().unwrap_or("");
        hover.push(format!("deployed by {name} <{email}> at {at}"));
    }
    if !d.locks.is_empty() {
        hover.push(lock_lines("application", &d.locks, now));
    }
    if let Some(locks) = team_locks.filter(|l| !l.is_empty()) {
        hover.push(lock_lines("team", locks, now));
    }
    let href = format!("/app/{}#env-{}", seg(app), seg(env));
    html! {
        td title=(hover.join("\n")) data-env=(env) data-app=(app) {
            a href=(href) {
                @match d.version {
                    Some(v) => span.version { "v" (v) },
                    None => span.none { "–" },
                }
            }
            @if let Some(q) = d.queued_version {
                " " span.queued title={ "queued: v" (q) " waits for a lock" } { "queued v" (q) }
            }
            @if !d.locks.is_empty() {
                " " span.lock.app-lock { "app lock" }
            }
            @if team_locks.is_some_and(|l| !l.is_empty()) {
                " " span.lock.team-lock { "team lock" }
            }
        }
    }
}

/// The overview page for `envs` (every environment with what it runs), filtered by `filter`.
pub fn render(ctx: &Ctx, envs: &[EnvironmentOverview], filter: &Filter, now: time::OffsetDateTime) -> String {
    let pairs: Vec<_> = envs.iter().map(|e| (&e.name, &e.config)).collect();
    let groups = order::groups(&pairs);
    let columns: Vec<&EnvironmentOverview> =
        groups.iter().flat_map(|g| g.environments.iter().map(|&i| &envs[i])).collect();
    // Every application with its team, and per environment what it runs there.
    let mut apps: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut teams: BTreeSet<&str> = BTreeSet::new();
    let mut at: Vec<BTreeMap<&str, &DeployedApp>> = Vec::with_capacity(columns.len());
    for env in &columns {
        let mut here = BTreeMap::new();
        for d in &env.applications {
            let team = d.team.as_ref().map(|t| t.as_str());
            let slot = apps.entry(d.application.as_str()).or_insert(None);
            if slot.is_none() {
                *slot = team;
            }
            if let Some(t) = team {
                teams.insert(t);
            }
            here.insert(d.application.as_str(), d);
        }
        at.push(here);
    }
    let shown: Vec<(&str, Option<&str>)> = apps.into_iter().filter(|(a, t)| filter.keeps(a, *t)).collect();
    let main = html! {
        h1 { "Overview" }
        form.filters method="get" action="/" role="search" {
            label { "Team "
                select name="team" {
                    option value="" { "all teams" }
                    @for t in &teams {
                        option value=(t) selected[filter.team.as_deref() == Some(*t)] { (t) }
                    }
                }
            }
            label { "Application "
                input type="search" name="app" value=[filter.app.as_deref()] placeholder="name contains…";
            }
            button type="submit" { "Filter" }
            span.count { (shown.len()) " applications · " (columns.len()) " environments" }
        }
        @if columns.is_empty() {
            p.empty-state { "No environments yet. Create one with " code { "POST /api/environments" } " or " code { "railyard env create" } "." }
        } @else {
            div.matrix-wrap {
                table.matrix id="overview" {
                    thead {
                        tr.groups {
                            th scope="col" rowspan="2" { "Application" }
                            @for g in &groups {
                                th scope="colgroup" colspan=(g.environments.len()) { (g.name) }
                            }
                        }
                        tr.envs {
                            @for env in &columns {
                                th scope="col" data-env=(env.name.as_str())
                                    title=[(!env.locks.is_empty()).then(|| lock_lines("environment", &env.locks, now))] {
                                    a href={ "/env/" (seg(env.name.as_str())) } { (env.name) }
                                    @if !env.locks.is_empty() {
                                        " " span.lock.env-lock { "locked" }
                                    }
                                }
                            }
                        }
                    }
                    tbody {
                        @for (app, team) in &shown {
                            tr data-app=(app) {
                                th scope="row" {
                                    a href={ "/app/" (seg(app)) } { (app) }
                                    @if let Some(t) = team { " " span.team { (t) } }
                                }
                                @for (i, env) in columns.iter().enumerate() {
                                    (cell(at[i].get(app).copied(), team.and_then(|t| env.team_locks.iter().find(|(k, _)| k.as_str() == t).map(|(_, l)| l)), app, env.name.as_str(), now))
                                }
                            }
                        }
                    }
                }
            }
            @if shown.is_empty() {
                p.empty-state { "No application matches the filter." }
            }
        }
    };
    page(ctx, "Overview", Nav::Overview, true, main)
}
