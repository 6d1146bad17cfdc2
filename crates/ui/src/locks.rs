//! Every lock of every kind in one table, each with a delete button that asks first.

use maud::html;
use railyard_manifest::{EnvironmentOverview, Lock};

use crate::{age, page, seg, ApiForm, Ctx, Nav};

/// One lock with what it holds.
#[derive(Debug, Clone)]
pub struct LockRow {
    /// `environment`, `application` or `team`.
    pub kind: &'static str,
    pub environment: String,
    /// The application or team (None: an environment lock).
    pub on: Option<String>,
    pub lock: Lock,
    /// Why the caller may not delete it (None: it may).
    pub deny: Option<String>,
}

impl LockRow {
    /// The API path that deletes the lock.
    pub fn delete_path(&self) -> String {
        let env = seg(&self.environment);
        let id = seg(self.lock.id.as_str());
        match (self.kind, &self.on) {
            ("application", Some(app)) => format!("/api/environments/{env}/applications/{}/locks/{id}", seg(app)),
            ("team", Some(team)) => format!("/api/environments/{env}/teams/{}/locks/{id}", seg(team)),
            _ => format!("/api/environments/{env}/locks/{id}"),
        }
    }
}

/// Every lock in `envs`, environment locks first, then team and application locks, each in environment order.
pub fn rows(envs: &[EnvironmentOverview]) -> Vec<LockRow> {
    let mut out = Vec::new();
    for e in envs {
        let env = e.name.to_string();
        for l in &e.locks {
            out.push(LockRow { kind: "environment", environment: env.clone(), on: None, lock: l.clone(), deny: None });
        }
        for (team, locks) in &e.team_locks {
            for l in locks {
                let on = Some(team.to_string());
                out.push(LockRow { kind: "team", environment: env.clone(), on, lock: l.clone(), deny: None });
            }
        }
        for a in &e.applications {
            for l in &a.locks {
                let on = Some(a.application.to_string());
                out.push(LockRow { kind: "application", environment: env.clone(), on, lock: l.clone(), deny: None });
            }
        }
    }
    out
}

pub fn render(ctx: &Ctx, rows: &[LockRow], now: time::OffsetDateTime) -> String {
    let main = html! {
        h1 { "Locks" }
        @if rows.is_empty() {
            p.empty-state { "No locks. Trains and deploys run everywhere." }
        } @else {
            table.list id="locks" {
                thead { tr { th { "Kind" } th { "Environment" } th { "On" } th { "Id" } th { "Message" } th { "Author" } th { "Age" } th { span.sr-only { "Actions" } } } }
                tbody {
                    @for r in rows {
                        tr data-lock=(r.lock.id) data-kind=(r.kind) data-env=(r.environment) {
                            td { (r.kind) }
                            td { a href={ "/env/" (seg(&r.environment)) } { (r.environment) } }
                            td { @if let Some(on) = &r.on { (on) } }
                            td { code { (r.lock.id) } }
                            td { (r.lock.message) }
                            td title=(r.lock.created_by_email) { (r.lock.created_by_name) }
                            td title=(r.lock.created_at) { (age(&r.lock.created_at, now)) }
                            td {
                                (ApiForm {
                                    method: "DELETE",
                                    path: r.delete_path(),
                                    label: "Delete",
                                    confirm: Some(format!("Delete {} lock {} in {}?", r.kind, r.lock.id, r.environment)),
                                    deny: r.deny.clone(),
                                    test_id: format!("delete-{}-{}-{}", r.kind, r.environment, r.lock.id),
                                }.render(html! {}))
                            }
                        }
                    }
                }
            }
        }
    };
    page(ctx, "Locks", Nav::Locks, true, main)
}
