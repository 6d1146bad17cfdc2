//! An application: its releases (newest first), and per environment the version it runs there, its locks, its
//! deployment history, and the buttons Deploy, Deploy & Lock (rollback) and Lock.

use maud::{html, Markup};
use railyard_manifest::{DeployedApp, Lock, Release, Version};

use crate::{age, page, seg, short, ApiForm, Ctx, Nav};

/// The application in one environment.
#[derive(Debug, Clone)]
pub struct AppEnv {
    pub name: String,
    pub deployed: DeployedApp,
    /// Locks of the environment itself and of the application's team there.
    pub env_locks: Vec<Lock>,
    pub team_locks: Vec<Lock>,
    /// Versions with a manifest for this environment, newest first.
    pub versions: Vec<Version>,
    /// Why the caller may not deploy, roll back, or lock here (None: it may).
    pub deny_deploy: Option<String>,
    pub deny_rollback: Option<String>,
    pub deny_lock: Option<String>,
}

/// One entry of the application's deployment history.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub time: String,
    pub environment: String,
    pub action: String,
    pub from_version: Option<u64>,
    pub to_version: Option<u64>,
    pub author: String,
    pub commit: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct AppView {
    pub name: String,
    pub team: Option<String>,
    pub releases: Vec<Release>,
    pub environments: Vec<AppEnv>,
    pub history: Vec<HistoryRow>,
}

fn version_select(name: &str, versions: &[Version], current: Option<Version>) -> Markup {
    html! {
        label { "Version "
            select name=(name) data-type="number" required {
                @for v in versions {
                    option value=(v) selected[Some(*v) == current] { "v" (v) }
                }
            }
        }
    }
}

fn env_section(app: &str, e: &AppEnv, now: time::OffsetDateTime) -> Markup {
    let base = format!("/api/environments/{}/applications/{}", seg(&e.name), seg(app));
    let d = &e.deployed;
    // The default for Deploy: the newest version not running here; for Deploy & Lock: the one before the current.
    let newer = e.versions.first().copied();
    let before = d.version.and_then(|cur| e.versions.iter().copied().find(|v| *v < cur));
    let deploy = ApiForm {
        method: "PUT",
        path: format!("{base}/deploy"),
        label: "Deploy",
        confirm: Some(format!("Deploy {app} to {}?", e.name)),
        deny: e.deny_deploy.clone(),
        test_id: format!("deploy-{}", e.name),
    };
    let rollback = ApiForm {
        method: "POST",
        path: format!("{base}/rollback"),
        label: "Deploy & Lock",
        confirm: Some(format!("Deploy {app} in {} and lock it there, so trains leave it?", e.name)),
        deny: e.deny_rollback.clone(),
        test_id: format!("rollback-{}", e.name),
    };
    let lock = ApiForm {
        method: "PUT",
        path: format!("{base}/locks/{{lockId}}"),
        label: "Lock",
        confirm: None,
        deny: e.deny_lock.clone(),
        test_id: format!("lock-{}", e.name),
    };
    let locks: Vec<(&str, &Lock)> = e
        .env_locks
        .iter()
        .map(|l| ("environment", l))
        .chain(e.team_locks.iter().map(|l| ("team", l)))
        .chain(d.locks.iter().map(|l| ("application", l)))
        .collect();
    html! {
        section.env-card id={ "env-" (e.name) } data-env=(e.name) {
            h3 { a href={ "/env/" (seg(&e.name)) } { (e.name) } }
            p.current {
                @match d.version {
                    Some(v) => { "Runs " strong.version { "v" (v) } }
                    None => { "Nothing deployed" }
                }
                @if let (Some(by), Some(at)) = (&d.deployed_by, &d.deployed_at_utc) {
                    " · deployed by " (by) " " span title=(at) { (age(at, now)) }
                }
                @if let Some(q) = d.queued_version {
                    " · " span.queued { "queued v" (q) }
                }
            }
            @if !locks.is_empty() {
                ul.locks {
                    @for (kind, l) in &locks {
                        li { span.lock { "lock" } " " (kind) " lock " code { (l.id) } ": " (l.message) " — " (l.created_by_name) ", " (age(&l.created_at, now)) }
                    }
                }
            }
            @if e.versions.is_empty() {
                p.hint { "No release of " (app) " has a manifest for " (e.name) "." }
            } @else {
                div.actions {
                    (deploy.render(html! {
                        (version_select("version", &e.versions, newer))
                        input type="hidden" name="lockBehavior" value="fail";
                    }))
                    (rollback.render(html! {
                        (version_select("version", &e.versions, before.or(newer)))
                        label { "Message " input name="message" type="text" required placeholder="why (required)"; }
                    }))
                    (lock.render(html! {
                        label { "Lock id " input name="lockId" data-path-param="1" type="text" required pattern="[A-Za-z0-9._-]+" placeholder="my-lock"; }
                        label { "Message " input name="message" type="text" placeholder="why"; }
                    }))
                }
            }
        }
    }
}

/// The application page.
pub fn render(ctx: &Ctx, v: &AppView, now: time::OffsetDateTime) -> String {
    let main = html! {
        h1 { (v.name) @if let Some(t) = &v.team { " " span.team { "team " (t) } } }
        h2 { "Environments" }
        @if v.environments.is_empty() {
            p.hint { (v.name) " is in no environment." }
        }
        div.env-cards {
            @for e in &v.environments { (env_section(&v.name, e, now)) }
        }
        h2 { "Releases" }
        table.list id="releases" {
            thead { tr { th { "Version" } th { "Display" } th { "Source commit" } th { "Author" } th { "Message" } th { "Created" } } }
            tbody {
                @for r in &v.releases {
                    tr data-version=(r.version) {
                        td { "v" (r.version) @if r.undeploy { " " span.badge { "undeploy" } } }
                        td { (r.display_version) }
                        td { code { (short(&r.source_commit_id)) } }
                        td { (r.source_author) }
                        td { (r.source_message) }
                        td title=(r.created_at) { (age(&r.created_at, now)) }
                    }
                }
            }
        }
        h2 { "History" }
        @if v.history.is_empty() {
            p.hint { "No deployment recorded yet." }
        } @else {
            table.list id="history" {
                thead { tr { th { "When" } th { "Environment" } th { "What" } th { "Version" } th { "Who" } th { "Commit" } } }
                tbody {
                    @for h in &v.history {
                        tr {
                            td title=(h.time) { (age(&h.time, now)) }
                            td { (h.environment) }
                            td { (h.action) @if !h.message.is_empty() { " — " (h.message) } }
                            td {
                                @if let Some(f) = h.from_version { "v" (f) " → " }
                                @if let Some(t) = h.to_version { "v" (t) }
                            }
                            td { (h.author) }
                            td { code { (short(&h.commit)) } }
                        }
                    }
                }
            }
        }
    };
    page(ctx, &v.name, Nav::None, true, main)
}
