//! The web UI's pages (`/`, `/app/{app}`, `/env/{env}`, `/train`, `/locks`, `/flows`, `/flow-run`) and assets.
//! Each handler gathers the typed state (the overview snapshot of the head commit, or one read of the tree), asks
//! the authorization function what the caller may do, and hands both to `railyard_ui` to render. Writes never
//! happen here: the page's buttons call `/api` like the CLI.
//!
//! A page's entity tag is the head commit and the caller, so the script's poll (`If-None-Match`) costs a ref
//! lookup while nothing changes.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use railyard_manifest::request::{CreateLock, Deploy, ReleaseTrain, Rollback};
use railyard_manifest::{
    layout, state, AppName, EnvName, GroupName, LockBehavior, LockId, LockTarget, Request, Stage, TeamName, TrainTarget,
};
use railyard_ui::{application, environment, flows, locks, overview, train, AuthMode, Ctx, Nav};
use sha2::Digest;

use super::AppState;
use crate::auth::{Caller, Session};
use crate::error::ApiError;
use crate::service::trains::{self as trains_service, TrainAnswer};
use crate::service::Service;

/// The header the page script sends to get a page's `<main>` alone.
const FRAGMENT: &str = "x-railyard-fragment";

/// A page being answered: who asks, and how.
struct Page {
    ctx: Ctx,
    caller: Option<Caller>,
}

fn html(status: StatusCode, body: String, etag: Option<&str>) -> Response {
    let mut resp = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Authorization, X-Railyard-Fragment"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// Starts a page: the sign-in shell (auth on, no token came), a `304` (the head has not moved since the page the
/// script holds), or what the page needs to render.
async fn begin(st: &AppState, session: &Session, headers: &HeaderMap, title: &str, nav: Nav) -> Result<Page, Response> {
    let auth =
        if session.auth_on { AuthMode::On { tokens: session.tokens, oidc: session.oidc } } else { AuthMode::Off };
    let fragment = headers.contains_key(FRAGMENT);
    let caller_names = session.caller.as_ref().map(|c| (c.identity.name.clone(), c.identity.email.clone()));
    let mut ctx = Ctx { auth, caller: caller_names, fragment, head: None, etag: None };
    if session.auth_on && session.caller.is_none() {
        return Err(html(StatusCode::OK, railyard_ui::sign_in_shell(&ctx, title, nav), None));
    }
    let snapshot = st.snapshot().await.map_err(|e| error_page(&ctx, e))?;
    let head = snapshot.head.map(|h| h.to_string());
    let who =
        session.caller.as_ref().map_or_else(String::new, |c| format!("{}\n{}", c.identity.name, c.identity.email));
    let who: String = sha2::Sha256::digest(who.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let etag = format!("W/\"{}-{who}\"", head.as_deref().unwrap_or("empty"));
    if crate::extract::etag_matches(headers, &etag) {
        return Err((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    ctx.head = head;
    ctx.etag = Some(etag);
    Ok(Page { ctx, caller: session.caller.clone() })
}

/// A page that could not be rendered: the error's status and message, in the layout.
fn error_page(ctx: &Ctx, e: ApiError) -> Response {
    let body = railyard_ui::page(
        ctx,
        "Error",
        Nav::None,
        false,
        maud::html! { h1 { "Error " (e.status.as_u16()) } p.error role="alert" { (e.message) } p { a href="/" { "Overview" } } },
    );
    html(e.status, body, None)
}

fn done(p: &Page, body: String) -> Response {
    html(StatusCode::OK, body, p.ctx.etag.as_deref())
}

/// Why `caller` may not make `request` on `stage` (None: it may, or auth is off). The same function the writer
/// checks, so a button is disabled exactly when the API would answer 403.
fn deny(stage: &Stage<'_>, caller: Option<&Caller>, request: Request) -> Option<String> {
    let caller = caller?;
    match crate::auth::required(stage, &request) {
        Ok(needs) => caller.check(&needs).err().map(|e| e.message),
        Err(e) => Some(e.to_string()),
    }
}

/// A lock id for asking whether the caller may create a lock (the id does not change the answer).
fn probe_lock() -> LockId {
    LockId::parse("ui").expect("a valid lock id")
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn query_value(q: &HashMap<String, String>, key: &str) -> Option<String> {
    q.get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

#[utoipa::path(
    get,
    path = "/",
    tag = "web UI",
    summary = "Web UI: the environment × application overview",
    params(("team" = Option<String>, Query, description = "only this team"), ("app" = Option<String>, Query, description = "application name contains")),
    responses((status = 200, description = "the page", content_type = "text/html", body = String), (status = 304, description = "the head commit has not moved since the page named in If-None-Match"), (status = 400, description = "an invalid name", content_type = "text/html", body = String), (status = 404, description = "no such application, environment or run", content_type = "text/html", body = String)),
)]
pub async fn overview(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match begin(&st, &session, &headers, "Overview", Nav::Overview).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let filter = overview::Filter { team: query_value(&q, "team"), app: query_value(&q, "app") };
    match st.snapshot().await {
        Ok(s) => done(&p, overview::render(&p.ctx, &s.environments, &filter, now())),
        Err(e) => error_page(&p.ctx, e),
    }
}

#[utoipa::path(
    get,
    path = "/app/{app}",
    tag = "web UI",
    summary = "Web UI: an application",
    params(("app" = String, Path, description = "application")),
    responses((status = 200, description = "the page", content_type = "text/html", body = String), (status = 304, description = "the head commit has not moved since the page named in If-None-Match"), (status = 400, description = "an invalid name", content_type = "text/html", body = String), (status = 404, description = "no such application, environment or run", content_type = "text/html", body = String)),
)]
pub async fn app(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Response {
    let p = match begin(&st, &session, &headers, &app, Nav::None).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = match AppName::parse(&app) {
        Ok(n) => n,
        Err(e) => return error_page(&p.ctx, railyard_manifest::Error::from(e).into()),
    };
    let caller = p.caller.clone();
    let read = {
        let name = name.clone();
        st.read(move |stage| app_view(stage, &name, caller.as_ref()))
    };
    let history = {
        let h = st.history.clone();
        let filter = crate::history::Filter { environment: None, application: Some(name.to_string()) };
        tokio::task::spawn_blocking(move || h.page(&filter, 50, None))
    };
    let mut view = match read.await {
        Ok(v) => v,
        Err(e) => return error_page(&p.ctx, e),
    };
    // The history is an index beside the repo: a page without it still shows the state.
    match history.await {
        Ok(Ok(page)) => view.history = page.entries.iter().map(history_row).collect(),
        Ok(Err(e)) => tracing::warn!(error = %e, application = %name, "the UI could not read the history"),
        Err(e) => tracing::warn!(error = %e, "history task failed"),
    }
    done(&p, application::render(&p.ctx, &view, now()))
}

fn history_row(e: &railyard_wire::HistoryEntry) -> application::HistoryRow {
    application::HistoryRow {
        time: e.time.clone(),
        environment: e.environment.clone().unwrap_or_default(),
        action: e.action.clone(),
        from_version: e.from_version,
        to_version: e.to_version,
        author: e.author.name.clone(),
        commit: e.commit.clone(),
        message: e.message.clone().unwrap_or_default(),
    }
}

fn app_view(
    stage: &Stage<'_>,
    app: &AppName,
    caller: Option<&Caller>,
) -> railyard_manifest::Result<application::AppView> {
    if !state::app_exists(stage, app)? {
        return Err(railyard_manifest::Error::not_found("application", app));
    }
    let team = state::app_team(stage, app)?;
    let versions = state::release_versions(stage, app)?;
    let mut releases = Vec::with_capacity(versions.len());
    for v in versions.iter().rev() {
        if let Some(r) = state::release(stage, app, *v)? {
            releases.push(r);
        }
    }
    let mut environments = Vec::new();
    for (env, _) in state::environments(stage)? {
        let mut here = Vec::new();
        for v in versions.iter().rev() {
            if stage.exists(&layout::release_manifest(app, *v, &env))? {
                here.push(*v);
            }
        }
        let deployed = state::deployed_app(stage, &env, app)?;
        if here.is_empty() && deployed.version.is_none() && deployed.queued_version.is_none() {
            continue;
        }
        let team_locks = match &team {
            Some(t) => state::locks(stage, &layout::env_team_locks_dir(&env, t))?,
            None => Vec::new(),
        };
        let newest = here.first().copied();
        let deny_deploy = newest.and_then(|version| {
            let d = Deploy {
                environment: env.clone(),
                application: app.clone(),
                version,
                lock_behavior: LockBehavior::Fail,
            };
            deny(stage, caller, Request::Deploy(d))
        });
        let rollback = Rollback {
            environment: env.clone(),
            application: app.clone(),
            version: newest,
            lock_id: None,
            message: String::new(),
        };
        let lock = CreateLock {
            target: LockTarget::Application { environment: env.clone(), application: app.clone() },
            lock_id: probe_lock(),
            message: String::new(),
        };
        environments.push(application::AppEnv {
            name: env.to_string(),
            env_locks: state::locks(stage, &layout::env_locks_dir(&env))?,
            team_locks,
            versions: here,
            deny_deploy,
            deny_rollback: deny(stage, caller, Request::Rollback(rollback)),
            deny_lock: deny(stage, caller, Request::CreateLock(lock)),
            deployed,
        });
    }
    Ok(application::AppView {
        name: app.to_string(),
        team: team.map(|t| t.to_string()),
        releases,
        environments,
        history: Vec::new(),
    })
}

#[utoipa::path(
    get,
    path = "/env/{*env}",
    tag = "web UI",
    summary = "Web UI: an environment (its name may hold `/`)",
    params(("env" = String, Path, description = "environment name (or GitLab id)")),
    responses((status = 200, description = "the page", content_type = "text/html", body = String), (status = 304, description = "the head commit has not moved since the page named in If-None-Match"), (status = 400, description = "an invalid name", content_type = "text/html", body = String), (status = 404, description = "no such application, environment or run", content_type = "text/html", body = String)),
)]
pub async fn env(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Path(env): Path<String>,
) -> Response {
    let p = match begin(&st, &session, &headers, &env, Nav::None).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = match EnvName::parse(&env) {
        Ok(n) => n,
        Err(e) => return error_page(&p.ctx, railyard_manifest::Error::from(e).into()),
    };
    let snapshot = match st.snapshot().await {
        Ok(s) => s,
        Err(e) => return error_page(&p.ctx, e),
    };
    let Some(overview) = snapshot.environments.iter().find(|e| e.name == name).cloned() else {
        return error_page(&p.ctx, railyard_manifest::Error::not_found("environment", &name).into());
    };
    let caller = p.caller.clone();
    let read = st
        .read(move |stage| {
            let yaml = stage.read_text(&layout::argocd_env_file(&name))?;
            let lock = CreateLock {
                target: LockTarget::Environment { environment: name },
                lock_id: probe_lock(),
                message: String::new(),
            };
            Ok((yaml, deny(stage, caller.as_ref(), Request::CreateLock(lock))))
        })
        .await;
    match read {
        Ok((argocd_yaml, deny_lock)) => {
            let view = environment::EnvView { env: overview, argocd_yaml, deny_lock };
            done(&p, environment::render(&p.ctx, &view, now()))
        }
        Err(e) => error_page(&p.ctx, e),
    }
}

#[utoipa::path(
    get,
    path = "/locks",
    tag = "web UI",
    summary = "Web UI: every lock",
    responses((status = 200, description = "the page", content_type = "text/html", body = String), (status = 304, description = "the head commit has not moved since the page named in If-None-Match"), (status = 400, description = "an invalid name", content_type = "text/html", body = String), (status = 404, description = "no such application, environment or run", content_type = "text/html", body = String)),
)]
pub async fn locks_page(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Response {
    let p = match begin(&st, &session, &headers, "Locks", Nav::Locks).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let snapshot = match st.snapshot().await {
        Ok(s) => s,
        Err(e) => return error_page(&p.ctx, e),
    };
    let mut rows = locks::rows(&snapshot.environments);
    if let Some(caller) = p.caller.clone() {
        let asked: Vec<(usize, Request)> =
            rows.iter().enumerate().filter_map(|(i, r)| Some((i, delete_request(r)?))).collect();
        let denied = st
            .read(move |stage| {
                Ok(asked.into_iter().map(|(i, req)| (i, deny(stage, Some(&caller), req))).collect::<Vec<_>>())
            })
            .await;
        match denied {
            Ok(d) => d.into_iter().for_each(|(i, why)| rows[i].deny = why),
            Err(e) => return error_page(&p.ctx, e),
        }
    }
    done(&p, locks::render(&p.ctx, &rows, now()))
}

/// The request that deletes the lock a row shows.
fn delete_request(r: &locks::LockRow) -> Option<Request> {
    let environment = EnvName::parse(&r.environment).ok()?;
    let target = match (r.kind, &r.on) {
        ("application", Some(a)) => LockTarget::Application { environment, application: AppName::parse(a).ok()? },
        ("team", Some(t)) => LockTarget::Team { environment, team: TeamName::parse(t).ok()? },
        _ => LockTarget::Environment { environment },
    };
    Some(Request::DeleteLock(railyard_manifest::request::DeleteLock { target, lock_id: r.lock.id.clone() }))
}

#[utoipa::path(
    get,
    path = "/train",
    tag = "web UI",
    summary = "Web UI: a release train with its dry run",
    params(("target" = Option<String>, Query, description = "environment:<env> or group:<group>"), ("team" = Option<String>, Query, description = "only this team")),
    responses((status = 200, description = "the page", content_type = "text/html", body = String), (status = 304, description = "the head commit has not moved since the page named in If-None-Match"), (status = 400, description = "an invalid name", content_type = "text/html", body = String), (status = 404, description = "no such application, environment or run", content_type = "text/html", body = String)),
)]
pub async fn train_page(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match begin(&st, &session, &headers, "Release train", Nav::Train).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let snapshot = match st.snapshot().await {
        Ok(s) => s,
        Err(e) => return error_page(&p.ctx, e),
    };
    let environments: Vec<String> = {
        let pairs: Vec<_> = snapshot.environments.iter().map(|e| (&e.name, &e.config)).collect();
        railyard_ui::order::groups(&pairs)
            .iter()
            .flat_map(|g| g.environments.iter().map(|&i| snapshot.environments[i].name.to_string()))
            .collect()
    };
    let groups: Vec<String> = snapshot
        .environments
        .iter()
        .filter_map(|e| e.config.environment_group.as_ref().map(|g| g.to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let teams: Vec<String> = snapshot
        .environments
        .iter()
        .flat_map(|e| e.applications.iter().filter_map(|a| a.team.as_ref().map(|t| t.to_string())))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let target = query_value(&q, "target").and_then(|t| train::Target::parse(&t));
    let team = query_value(&q, "team");
    let mut view = train::TrainView {
        environments,
        groups,
        teams,
        target: target.clone(),
        team: team.clone(),
        preview: None,
        deny: None,
    };
    if let Some(target) = target {
        let parsed = (|| -> Result<(TrainTarget, Option<TeamName>), ApiError> {
            let t = match &target {
                train::Target::Environment(n) => {
                    TrainTarget::Environment { environment: EnvName::parse(n).map_err(railyard_manifest::Error::from)? }
                }
                train::Target::Group(n) => TrainTarget::EnvironmentGroup {
                    group: GroupName::parse(n).map_err(railyard_manifest::Error::from)?,
                },
            };
            let team = team.as_deref().map(TeamName::parse).transpose().map_err(railyard_manifest::Error::from)?;
            Ok((t, team))
        })();
        view.preview = Some(match parsed {
            Err(e) => Err(e.message),
            Ok((target, team)) => {
                let dry = trains_service::Train {
                    target: target.clone(),
                    team: team.clone(),
                    source_git_tag: None,
                    git_tag: None,
                    dry_run: true,
                };
                match trains_service::run(&Service::new(st.clone(), session.clone()), dry).await {
                    Ok(TrainAnswer::DryRun(result)) => {
                        let caller = p.caller.clone();
                        let train = ReleaseTrain {
                            target,
                            team,
                            source_git_tag: None,
                            source_commit: None,
                            git_tag: None,
                            minimize: false,
                        };
                        view.deny = st
                            .read(move |stage| Ok(deny(stage, caller.as_ref(), Request::ReleaseTrain(train))))
                            .await
                            .unwrap_or(None);
                        Ok(result)
                    }
                    Ok(TrainAnswer::Done(_)) => Err("the dry run wrote a commit".into()),
                    Err(e) => Err(e.message),
                }
            }
        });
    }
    done(&p, train::render(&p.ctx, &view))
}

#[utoipa::path(
    get,
    path = "/flows",
    tag = "web UI",
    summary = "Web UI: release-flow runs",
    responses((status = 200, description = "the page", content_type = "text/html", body = String), (status = 304, description = "the head commit has not moved since the page named in If-None-Match"), (status = 400, description = "an invalid name", content_type = "text/html", body = String), (status = 404, description = "no such application, environment or run", content_type = "text/html", body = String)),
)]
pub async fn flows_page(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Response {
    let p = match begin(&st, &session, &headers, "Flow runs", Nav::Flows).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let read = st
        .read(|stage| {
            let mut out = Vec::new();
            for flow in state::flows(stage)? {
                let runs = state::flow_runs(stage, &flow)?;
                out.push((flow.to_string(), runs));
            }
            Ok(out)
        })
        .await;
    match read {
        Ok(list) => done(&p, flows::render_list(&p.ctx, &list, now())),
        Err(e) => error_page(&p.ctx, e),
    }
}

#[utoipa::path(
    get,
    path = "/flow-run",
    tag = "web UI",
    summary = "Web UI: one release-flow run",
    params(("flow" = Option<String>, Query, description = "the flow"), ("id" = Option<String>, Query, description = "the run")),
    responses((status = 200, description = "the page", content_type = "text/html", body = String), (status = 304, description = "the head commit has not moved since the page named in If-None-Match"), (status = 400, description = "an invalid name", content_type = "text/html", body = String), (status = 404, description = "no such application, environment or run", content_type = "text/html", body = String)),
)]
pub async fn flow_run_page(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match begin(&st, &session, &headers, "Flow run", Nav::Flows).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let flow = match query_value(&q, "flow").map(|f| EnvName::parse(&f)) {
        Some(Ok(f)) => f,
        Some(Err(e)) => return error_page(&p.ctx, railyard_manifest::Error::from(e).into()),
        None => return error_page(&p.ctx, ApiError::bad_request("flow", "flow is required")),
    };
    let Some(id) = query_value(&q, "id").and_then(|i| i.parse::<u64>().ok()) else {
        return error_page(&p.ctx, ApiError::bad_request("id", "id must be a run number"));
    };
    let read = {
        let flow = flow.clone();
        st.read(move |stage| state::flow_run(stage, &flow, id)).await
    };
    match read {
        Ok(Some(run)) => done(&p, flows::render_run(&p.ctx, &run, now())),
        Ok(None) => error_page(&p.ctx, railyard_manifest::Error::not_found("flow run", format!("{flow} #{id}")).into()),
        Err(e) => error_page(&p.ctx, e),
    }
}

#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "web UI",
    summary = "Web UI: the script and the style sheet",
    params(("file" = String, Path, description = "asset file name")),
    responses((status = 200, description = "the file", content_type = "text/plain", body = String), (status = 304, description = "unchanged since the ETag in If-None-Match"), (status = 404, description = "no such asset")),
)]
/// `/assets/app.js` and `/assets/app.css`, from the binary.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((content_type, body)) = railyard_ui::assets::get(&format!("/assets/{file}")) else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset")
            .with("what", serde_json::json!("asset"))
            .into_response();
    };
    // Assets change only with the binary: its version and the content's length make the tag.
    let etag = format!("\"{}-{}\"", env!("CARGO_PKG_VERSION"), body.len());
    if crate::extract::etag_matches(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

/// The web UI's sign-in through the OIDC issuer (`--oidc-issuer` with `--oidc-client-id`): `GET /auth/config`
/// tells the page where to send the person, `GET /auth/callback` is where the issuer sends them back, and
/// `POST /auth/token` trades the code (with its PKCE verifier) for the ID token, server to issuer, so the issuer
/// needs no CORS rule for the browser. The token then lives in the tab's session storage like an API token.
pub mod signin {
    use std::sync::Arc;

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::{Extension, Json};
    use serde::Deserialize;
    use serde_json::json;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;

    use crate::auth::{Authenticator, Session};
    use crate::error::ApiError;
    use crate::extract::JsonBody;

    type Auth = Option<Arc<Authenticator>>;

    /// The sign-in routes, with the authenticator they ask.
    pub fn router<S: Clone + Send + Sync + 'static>(auth: Auth) -> OpenApiRouter<S> {
        OpenApiRouter::new().routes(routes!(config)).routes(routes!(token)).routes(routes!(callback)).with_state(auth)
    }

    /// The issuer's verifier and the UI's client id, or 404 when the UI does not sign in through OIDC.
    fn ui_oidc(auth: &Auth) -> Result<(&crate::oidc::Oidc, &str), ApiError> {
        match auth.as_deref() {
            Some(Authenticator { oidc: Some((oidc, _)), ui_client_id: Some(id), .. }) => Ok((oidc, id)),
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_configured",
                "sign-in through OIDC is not configured (--oidc-issuer with --oidc-client-id)",
            )),
        }
    }

    fn unreachable(e: crate::oidc::OidcError) -> ApiError {
        tracing::warn!(error = %e, "OIDC sign-in: the issuer's endpoints are not known");
        ApiError::new(StatusCode::BAD_GATEWAY, "issuer_unreachable", "the identity provider cannot be reached")
    }

    #[utoipa::path(
        get,
        path = "/auth/config",
        tag = "web UI",
        summary = "Where the web UI sends a person to sign in (OIDC)",
        responses(
            (status = 200, description = "authorization_endpoint, client_id, scope", body = Object),
            (status = 404, description = "OIDC sign-in is not configured", body = crate::error::ErrorBody),
            (status = 502, description = "the issuer cannot be reached", body = crate::error::ErrorBody),
        ),
    )]
    async fn config(State(auth): State<Auth>) -> Result<Response, ApiError> {
        let (oidc, client_id) = ui_oidc(&auth)?;
        let endpoints = oidc.endpoints().await.map_err(unreachable)?;
        Ok(Json(json!({
            "authorization_endpoint": endpoints.authorization_endpoint,
            "client_id": client_id,
            "scope": "openid email profile groups",
        }))
        .into_response())
    }

    #[derive(Deserialize, utoipa::ToSchema)]
    #[schema(as = TokenExchange)]
    #[serde(deny_unknown_fields)]
    pub struct TokenBody {
        code: String,
        /// RFC 7636: 43 to 128 characters.
        #[schema(min_length = 43, max_length = 128)]
        code_verifier: String,
        redirect_uri: String,
    }

    #[utoipa::path(
        post,
        path = "/auth/token",
        tag = "web UI",
        summary = "Trade an authorization code and its PKCE verifier for an ID token",
        request_body = TokenBody,
        responses(
            (status = 200, description = "id_token", body = Object),
            (status = 400, description = "invalid input", body = crate::error::ErrorBody),
            (status = 401, description = "the issuer refused the code", body = crate::error::ErrorBody),
            (status = 404, description = "OIDC sign-in is not configured", body = crate::error::ErrorBody),
            (status = 502, description = "the issuer cannot be reached", body = crate::error::ErrorBody),
        ),
    )]
    async fn token(State(auth): State<Auth>, JsonBody(b): JsonBody<TokenBody>) -> Result<Response, ApiError> {
        let (oidc, client_id) = ui_oidc(&auth)?;
        if b.code.is_empty() || b.code.len() > 4096 {
            return Err(ApiError::bad_request("code", "code must be the issuer's authorization code"));
        }
        // RFC 7636: 43 to 128 characters of [A-Za-z0-9-._~].
        let verifier_ok = (43..=128).contains(&b.code_verifier.len())
            && b.code_verifier.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c));
        if !verifier_ok {
            return Err(ApiError::bad_request(
                "code_verifier",
                "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
            ));
        }
        let redirect_ok = url::Url::parse(&b.redirect_uri)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.path() == "/auth/callback");
        if !redirect_ok {
            return Err(ApiError::bad_request("redirect_uri", "redirect_uri must be this server's /auth/callback"));
        }
        match oidc.exchange(client_id, &b.code, &b.code_verifier, &b.redirect_uri).await {
            Ok((id_token, claims)) => {
                tracing::info!(email = claims.email.as_deref().unwrap_or(""), "signed in through OIDC");
                Ok(Json(json!({ "id_token": id_token })).into_response())
            }
            Err(e) => {
                tracing::warn!(error = %e, "OIDC sign-in refused");
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "sign_in_refused",
                    "the sign-in was refused; sign in again",
                ))
            }
        }
    }

    #[utoipa::path(
        get,
        path = "/auth/callback",
        tag = "web UI",
        summary = "Web UI: where the OIDC issuer sends a person back after sign-in",
        responses((status = 200, description = "the page", content_type = "text/html", body = String)),
    )]
    async fn callback(Extension(session): Extension<Session>, headers: HeaderMap) -> Response {
        let auth = if session.auth_on {
            railyard_ui::AuthMode::On { tokens: session.tokens, oidc: session.oidc }
        } else {
            railyard_ui::AuthMode::Off
        };
        let ctx = railyard_ui::Ctx {
            auth,
            caller: None,
            fragment: headers.contains_key(super::FRAGMENT),
            head: None,
            etag: None,
        };
        super::html(StatusCode::OK, railyard_ui::oidc_callback(&ctx), None)
    }
}
