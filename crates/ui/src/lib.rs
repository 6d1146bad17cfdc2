//! Railyard's web UI: every page rendered on the server from the manifest state (maud templates), with one small
//! hand-written script for what a page cannot do alone (a token kept in the browser session, writes through the
//! same `/api` calls the CLI makes, following new commits). Nothing here reads git or decides anything: the API
//! crate gathers the typed state, and these functions turn it into HTML.
//!
//! A page is rendered whole, or, for a request with the `X-Railyard-Fragment` header (the script's own fetches),
//! as its `<main>` alone; with auth on and no token presented, as a sign-in shell the script fills in once the
//! person has given a token (or signed in with OIDC).

pub mod application;
pub mod assets;
pub mod environment;
pub mod flows;
pub mod locks;
pub mod order;
pub mod overview;
pub mod train;

use maud::{html, Markup, DOCTYPE};

/// How callers sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// No auth: every page renders at once, every button works.
    Off,
    /// Tokens (`--auth-tokens`), OIDC (`--oidc-issuer` with `--oidc-client-id`), or both.
    On { tokens: bool, oidc: bool },
}

/// What every page needs besides its own data.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub auth: AuthMode,
    /// The caller's name and e-mail (None: auth off, or not signed in).
    pub caller: Option<(String, String)>,
    /// Render `<main>` only (the script's fetch).
    pub fragment: bool,
    /// The head commit the page shows (hex), if the branch has one.
    pub head: Option<String>,
    /// The page's entity tag: the script sends it back as `If-None-Match` to learn whether the head moved.
    pub etag: Option<String>,
}

/// The pages, for the navigation's current mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Train,
    Locks,
    Flows,
    None,
}

/// A page: the whole document, or its `<main>` alone for a fragment request. `live`: the script refetches the
/// page when the head commit moves.
pub fn page(ctx: &Ctx, title: &str, nav: Nav, live: bool, main: Markup) -> String {
    let main = html! {
        main id="main" data-title=(title) data-live=[live.then_some("1")] data-head=[ctx.head.as_deref()]
            data-etag=[ctx.etag.as_deref()] data-caller=[ctx.caller.as_ref().map(|(n, _)| n.as_str())] {
            (main)
        }
    };
    if ctx.fragment {
        return main.into_string();
    }
    document(ctx, title, nav, main)
}

/// The sign-in shell: the layout with an empty `<main>` the script fills with the page once it has a token.
pub fn sign_in_shell(ctx: &Ctx, title: &str, nav: Nav) -> String {
    let main = html! {
        main id="main" data-title=(title) data-signin="1" {
            section.signin aria-labelledby="signin-title" {
                h1 id="signin-title" { "Sign in" }
                @if let AuthMode::On { tokens, oidc } = &ctx.auth {
                    @if *oidc {
                        p { button type="button" id="oidc-signin" { "Sign in with your identity provider" } }
                    }
                    @if *tokens {
                        form id="token-form" {
                            label for="token" { "API token" }
                            input id="token" name="token" type="password" autocomplete="off" required;
                            button type="submit" { "Use token" }
                            p.hint { "The token stays in this browser tab's session storage and is sent as a bearer token." }
                        }
                    }
                }
                p id="signin-error" role="alert" {}
            }
        }
    };
    document(ctx, title, nav, main)
}

/// Where the identity provider sends a person back (`/auth/callback`): the script trades the code for a token and
/// returns to the page the sign-in started from.
pub fn oidc_callback(ctx: &Ctx) -> String {
    let main = html! {
        main id="main" data-title="Signing in" data-oidc-callback="1" {
            section.signin {
                h1 { "Signing in…" }
                p id="signin-error" role="alert" {}
                noscript { "Signing in needs JavaScript." }
            }
        }
    };
    document(ctx, "Signing in", Nav::None, main)
}

fn document(ctx: &Ctx, title: &str, nav: Nav, main: Markup) -> String {
    let auth = match ctx.auth {
        AuthMode::Off => "off",
        AuthMode::On { oidc: true, .. } => "oidc",
        AuthMode::On { .. } => "tokens",
    };
    let link = |href: &str, label: &str, this: Nav| {
        html! { a href=(href) aria-current=[(nav == this).then_some("page")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Railyard" }
                link rel="stylesheet" href=(assets::CSS_PATH);
                script src=(assets::JS_PATH) defer {}
            }
            body data-auth=(auth) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Railyard" }
                    nav aria-label="Pages" {
                        (link("/", "Overview", Nav::Overview))
                        (link("/train", "Release train", Nav::Train))
                        (link("/locks", "Locks", Nav::Locks))
                        (link("/flows", "Flow runs", Nav::Flows))
                    }
                    span.who id="who" {
                        span id="who-name" title=[ctx.caller.as_ref().map(|(_, e)| e.as_str())] {
                            @if let Some((name, _)) = &ctx.caller { (name) }
                        }
                        @if auth != "off" {
                            button type="button" id="signout" { "Sign out" }
                        }
                    }
                }
                div id="status" role="status" aria-live="polite" {}
                (main)
            }
        }
    }
    .into_string()
}

/// A button that makes one API call: `method` on `path` with the form's inputs as the JSON body. `deny`: why the
/// caller may not (the button is disabled and says so).
pub struct ApiForm<'a> {
    pub method: &'a str,
    pub path: String,
    pub label: &'a str,
    /// Asked before the call (None: no question).
    pub confirm: Option<String>,
    pub deny: Option<String>,
    pub test_id: String,
}

impl ApiForm<'_> {
    /// The form with `inputs` before its button.
    pub fn render(&self, inputs: Markup) -> Markup {
        html! {
            form.api data-method=(self.method) data-path=(self.path) data-confirm=[self.confirm.as_deref()]
                data-test=(self.test_id) {
                (inputs)
                button type="submit" disabled[self.deny.is_some()] title=[self.deny.as_deref()] { (self.label) }
                @if let Some(reason) = &self.deny {
                    span.deny { (reason) }
                }
                output.result {}
            }
        }
    }
}

/// How long ago an RFC 3339 time was, as a person says it ("3 h ago").
pub fn age(at: &str, now: time::OffsetDateTime) -> String {
    let Ok(t) = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339) else {
        return at.to_owned();
    };
    let s = (now - t).whole_seconds();
    match s {
        i64::MIN..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A short commit id.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// Bytes a path segment keeps as they are: RFC 3986's unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A path segment or query value, percent-encoded (names may hold `/`).
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// JSON of a value as text, for a `<pre>` (already escaped by maud when inserted as text).
pub fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The name serde gives an enum value (`production`, `environment_locked`).
pub fn wire_name(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}
