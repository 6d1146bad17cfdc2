//! An environment: its config, upstream, tier and state, its locks with author, message and age, what it runs,
//! and the Argo CD objects Railyard generates for it.

use maud::{html, Markup};
use railyard_manifest::{EnvironmentOverview, Lock};

use crate::{age, page, pretty, seg, wire_name, ApiForm, Ctx, Nav};

#[derive(Debug, Clone)]
pub struct EnvView {
    pub env: EnvironmentOverview,
    /// `argocd/v1alpha1/<env>.yaml` (None: the environment has no Argo CD settings).
    pub argocd_yaml: Option<String>,
    /// Why the caller may not lock the environment (None: it may).
    pub deny_lock: Option<String>,
}

fn lock_rows(kind: &str, target: &str, locks: &[Lock], now: time::OffsetDateTime) -> Markup {
    html! {
        @for l in locks {
            tr {
                td { (kind) } td { (target) } td { code { (l.id) } } td { (l.message) }
                td title=(l.created_by_email) { (l.created_by_name) }
                td title=(l.created_at) { (age(&l.created_at, now)) }
            }
        }
    }
}

pub fn render(ctx: &Ctx, v: &EnvView, now: time::OffsetDateTime) -> String {
    let e = &v.env;
    let c = &e.config;
    let name = e.name.as_str();
    let upstream = match &c.upstream {
        Some(u) if u.is_latest() => "latest".to_owned(),
        Some(u) => u.environment.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string),
        None => "none".to_owned(),
    };
    let lock = ApiForm {
        method: "PUT",
        path: format!("/api/environments/{}/locks/{{lockId}}", seg(name)),
        label: "Lock environment",
        confirm: None,
        deny: v.deny_lock.clone(),
        test_id: "lock-env".into(),
    };
    let any_lock = !e.locks.is_empty()
        || e.team_locks.values().any(|l| !l.is_empty())
        || e.applications.iter().any(|a| !a.locks.is_empty());
    let main = html! {
        h1 { (name) }
        dl.facts {
            dt { "Group" } dd { (c.group_or(&e.name)) }
            dt { "Upstream" } dd { (upstream) }
            dt { "Tier" } dd { (wire_name(&c.tier)) }
            dt { "State" } dd { (wire_name(&c.state)) }
            @if let Some(url) = &c.external_url { dt { "URL" } dd { (url) } }
        }
        h2 { "Locks" }
        @if any_lock {
            table.list id="env-locks" {
                thead { tr { th { "Kind" } th { "On" } th { "Id" } th { "Message" } th { "Author" } th { "Age" } } }
                tbody {
                    (lock_rows("environment", name, &e.locks, now))
                    @for (team, locks) in &e.team_locks { (lock_rows("team", team.as_str(), locks, now)) }
                    @for a in &e.applications { (lock_rows("application", a.application.as_str(), &a.locks, now)) }
                }
            }
        } @else {
            p.hint { "No locks." }
        }
        (lock.render(html! {
            label { "Lock id " input name="lockId" data-path-param="1" type="text" required pattern="[A-Za-z0-9._-]+" placeholder="my-lock"; }
            label { "Message " input name="message" type="text" placeholder="why"; }
        }))
        h2 { "Applications" }
        @if e.applications.is_empty() {
            p.hint { "Nothing is deployed here." }
        } @else {
            table.list id="env-apps" {
                thead { tr { th { "Application" } th { "Version" } th { "Team" } th { "Deployed" } } }
                tbody {
                    @for a in &e.applications {
                        tr {
                            td { a href={ "/app/" (seg(a.application.as_str())) } { (a.application) } }
                            td {
                                @if let Some(v) = a.version { "v" (v) } @else { "–" }
                                @if let Some(q) = a.queued_version { " " span.queued { "queued v" (q) } }
                            }
                            td { @if let Some(t) = &a.team { (t) } }
                            td { @if let (Some(by), Some(at)) = (&a.deployed_by, &a.deployed_at_utc) { (by) ", " span title=(at) { (age(at, now)) } } }
                        }
                    }
                }
            }
        }
        h2 { "Argo CD" }
        @match &v.argocd_yaml {
            Some(yaml) => { p.hint { "Generated in the manifest repo at " code { "argocd/v1alpha1/" (name) ".yaml" } "." } pre.yaml id="argocd" { (yaml) } }
            None => p.hint { "This environment has no Argo CD settings, so Railyard generates no Application for it." },
        }
        h2 { "Config" }
        pre.json id="config" { (pretty(c)) }
    };
    page(ctx, name, Nav::None, true, main)
}
