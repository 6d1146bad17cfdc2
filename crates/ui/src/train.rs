//! The release train: pick a target environment or group and a team, see the dry run (what moves, what is skipped
//! and why), then confirm; the answer names the commit.

use maud::html;
use railyard_manifest::request::TrainResult;

use crate::{page, seg, wire_name, ApiForm, Ctx, Nav};

/// What a train is aimed at, as the page's `target` parameter spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Environment(String),
    Group(String),
}

impl Target {
    /// `environment:<name>` or `group:<name>`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.split_once(':')? {
            ("environment", n) if !n.is_empty() => Some(Self::Environment(n.to_owned())),
            ("group", n) if !n.is_empty() => Some(Self::Group(n.to_owned())),
            _ => None,
        }
    }

    fn param(&self) -> String {
        match self {
            Self::Environment(n) => format!("environment:{n}"),
            Self::Group(n) => format!("group:{n}"),
        }
    }

    /// The API path that runs the train.
    pub fn api_path(&self) -> String {
        match self {
            Self::Environment(n) => format!("/api/environments/{}/releasetrain", seg(n)),
            Self::Group(n) => format!("/api/environment-groups/{}/releasetrain", seg(n)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrainView {
    pub environments: Vec<String>,
    pub groups: Vec<String>,
    pub teams: Vec<String>,
    pub target: Option<Target>,
    pub team: Option<String>,
    /// The dry run of the chosen train, or why it cannot run.
    pub preview: Option<Result<TrainResult, String>>,
    /// Why the caller may not run it (None: it may).
    pub deny: Option<String>,
}

pub fn render(ctx: &Ctx, v: &TrainView) -> String {
    let chosen = v.target.as_ref().map(Target::param);
    let main = html! {
        h1 { "Release train" }
        form.train-pick method="get" action="/train" {
            label { "Target "
                select name="target" id="train-target" required {
                    option value="" { "choose…" }
                    optgroup label="Environments" {
                        @for e in &v.environments {
                            @let value = format!("environment:{e}");
                            option value=(value) selected[chosen.as_deref() == Some(value.as_str())] { (e) }
                        }
                    }
                    @if !v.groups.is_empty() {
                        optgroup label="Environment groups" {
                            @for g in &v.groups {
                                @let value = format!("group:{g}");
                                option value=(value) selected[chosen.as_deref() == Some(value.as_str())] { "group " (g) }
                            }
                        }
                    }
                }
            }
            label { "Team "
                select name="team" id="train-team" {
                    option value="" { "all teams" }
                    @for t in &v.teams {
                        option value=(t) selected[v.team.as_deref() == Some(t.as_str())] { (t) }
                    }
                }
            }
            button type="submit" id="train-preview" { "Preview (dry run)" }
        }
        @if let (Some(target), Some(preview)) = (&v.target, &v.preview) {
            @match preview {
                Err(message) => p.error id="train-error" role="alert" { (message) },
                Ok(result) => {
                    section.train-result id="train-dry-run" aria-label="Dry run" {
                        h2 { "Dry run" }
                        @let moves: usize = result.environments.iter().map(|e| e.deployed.len()).sum();
                        p.summary { (moves) " application(s) would move." }
                        @for e in &result.environments {
                            h3 { (e.environment) " ← " (e.source.as_deref().unwrap_or("no upstream")) }
                            @if e.deployed.is_empty() && e.skipped.is_empty() { p.hint { "Nothing to do." } }
                            @if !e.deployed.is_empty() {
                                table.list.moves {
                                    thead { tr { th { "Moves" } th { "From" } th { "To" } } }
                                    tbody {
                                        @for m in &e.deployed {
                                            tr data-app=(m.application) {
                                                td { (m.application) }
                                                td { @if let Some(f) = m.from { "v" (f) } @else { "–" } }
                                                td { "v" (m.to) }
                                            }
                                        }
                                    }
                                }
                            }
                            @if !e.skipped.is_empty() {
                                table.list.skips {
                                    thead { tr { th { "Skipped" } th { "Why" } } }
                                    tbody {
                                        @for s in &e.skipped {
                                            tr data-app=(s.application) { td { (s.application) } td { (wire_name(&s.reason).replace('_', " ")) } }
                                        }
                                    }
                                }
                            }
                        }
                        @let path = match &v.team {
                            Some(t) => format!("{}?team={}", target.api_path(), seg(t)),
                            None => target.api_path(),
                        };
                        (ApiForm {
                            method: "PUT",
                            path,
                            label: "Run the train",
                            confirm: Some(format!("Run the release train to {}? {moves} application(s) move.", match target { Target::Environment(n) | Target::Group(n) => n })),
                            deny: v.deny.clone(),
                            test_id: "train-confirm".into(),
                        }.render(html! {}))
                    }
                }
            }
        }
    };
    page(ctx, "Release train", Nav::Train, false, main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_the_page_parameter() {
        assert_eq!(Target::parse("environment:prod"), Some(Target::Environment("prod".into())));
        assert_eq!(Target::parse("group:eu"), Some(Target::Group("eu".into())));
        assert_eq!(Target::parse("group:"), None);
        assert_eq!(Target::parse("prod"), None);
        assert_eq!(Target::Environment("review/x".into()).api_path(), "/api/environments/review%2Fx/releasetrain");
    }
}
