//! Release-flow runs: every flow with its runs, newest first, and one run's steps.

use maud::html;
use railyard_manifest::FlowRunRecord;

use crate::{age, page, pretty, seg, wire_name, Ctx, Nav};

fn run_href(r: &FlowRunRecord) -> String {
    format!("/flow-run?flow={}&id={}", seg(r.flow.as_str()), r.id)
}

/// Every flow (name) with its runs.
pub fn render_list(ctx: &Ctx, flows: &[(String, Vec<FlowRunRecord>)], now: time::OffsetDateTime) -> String {
    let main = html! {
        h1 { "Flow runs" }
        @if flows.is_empty() {
            p.empty-state { "No release flow is stored. Store one with " code { "PUT /api/release-flows/{flow}" } "." }
        }
        @for (flow, runs) in flows {
            section.flow data-flow=(flow) {
                h2 { (flow) }
                @if runs.is_empty() {
                    p.hint { "Not run yet." }
                } @else {
                    table.list {
                        thead { tr { th { "Run" } th { "Name" } th { "Status" } th { "Steps" } th { "By" } th { "When" } } }
                        tbody {
                            @for r in runs.iter().rev() {
                                tr data-run=(r.id) {
                                    td { a href=(run_href(r)) { "#" (r.id) } }
                                    td { (r.name.as_deref().unwrap_or("")) }
                                    td { span class={ "status " (wire_name(&r.status)) } { (wire_name(&r.status)) } }
                                    td { (r.steps.len()) }
                                    td { (r.created_by_name) }
                                    td title=(r.created_at) { (age(&r.created_at, now)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(ctx, "Flow runs", Nav::Flows, true, main)
}

/// One run of a flow.
pub fn render_run(ctx: &Ctx, r: &FlowRunRecord, now: time::OffsetDateTime) -> String {
    let title = format!("{} #{}", r.flow, r.id);
    let main = html! {
        h1 { (title) }
        dl.facts {
            dt { "Status" } dd { span class={ "status " (wire_name(&r.status)) } { (wire_name(&r.status)) } }
            @if let Some(n) = &r.name { dt { "Name" } dd { (n) } }
            @if let Some(d) = &r.description { dt { "Description" } dd { (d) } }
            @if let Some(s) = &r.failed_step { dt { "Failed step" } dd { code { (s) } } }
            @if let Some(e) = &r.error { dt { "Error" } dd.error { (e) } }
            dt { "By" } dd { (r.created_by_name) " <" (r.created_by_email) ">" }
            dt { "When" } dd title=(r.created_at) { (age(&r.created_at, now)) }
        }
        h2 { "Steps" }
        table.list id="steps" {
            thead { tr { th { "Step" } th { "Kind" } th { "Status" } th { "Result" } } }
            tbody {
                @for s in &r.steps {
                    tr {
                        td { code { (s.step_ref) } }
                        td { (s.kind) }
                        td { (wire_name(&s.status)) }
                        td {
                            @if let Some(e) = &s.error { span.error { (e) } }
                            @if let Some(v) = &s.result { pre.json { (pretty(v)) } }
                        }
                    }
                }
            }
        }
        @if !r.arguments.is_empty() {
            h2 { "Arguments" }
            pre.json { (pretty(&r.arguments)) }
        }
        p { a href="/flows" { "All flow runs" } }
    };
    page(ctx, &title, Nav::Flows, false, main)
}
