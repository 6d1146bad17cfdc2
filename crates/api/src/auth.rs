//! Authentication and authorisation (`--auth-tokens FILE`): tokens stored as SHA-256 hashes, each with a name, an
//! email and roles; a role grants actions on environments and teams matched by globs. A request's caller becomes
//! the author of its commit and the `created_by_*` of what it writes.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use railyard_manifest::{state, AppName, EnvName, Identity, Stage, TeamName};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Lock,
    Release,
    Train,
    Flow,
    Environment,
    /// Everything, everywhere.
    Admin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub action: Action,
    #[serde(default = "everything")]
    pub environments: Vec<String>,
    #[serde(default = "everything")]
    pub teams: Vec<String>,
}

fn everything() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token_sha256: String,
    name: String,
    email: String,
    #[serde(default)]
    roles: Vec<Role>,
}

/// Who is calling: a token's identity and roles.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// From `--auth-tokens`.
    pub roles: Vec<Role>,
    /// From `--rbac-policy`, for a caller signed in through OIDC (None: a token's caller).
    pub permissions: Option<Vec<crate::rbac::Permission>>,
}

/// The tokens file, loaded.
#[derive(Debug, Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], Caller)>,
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Equal without an early exit, so the time taken says nothing about how much matched.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    /// Reads `file` (YAML: a list of `{token_sha256, name, email, roles}`); errors name the entry, never a secret.
    pub fn load(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        let entries: Vec<TokenEntry> =
            serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let mut out = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            let hash = hex32(&e.token_sha256.to_ascii_lowercase()).ok_or_else(|| {
                anyhow::anyhow!("{} entry {} ({}): token_sha256 must be 64 hex digits", file.display(), i + 1, e.name)
            })?;
            out.push((
                hash,
                Caller { identity: Identity { name: e.name, email: e.email }, roles: e.roles, permissions: None },
            ));
        }
        Ok(Self { entries: out })
    }

    /// The caller a token belongs to. Every entry is compared, in constant time each.
    pub fn find(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (hash, caller) in &self.entries {
            if constant_time_eq(hash, &digest) && found.is_none() {
                found = Some(caller.clone());
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(after) = text.strip_prefix(head) else { return false };
            (0..=after.len()).filter(|i| after.is_char_boundary(*i)).any(|i| glob(rest, &after[i..]))
        }
    }
}

/// How much of one dimension (environments or teams) a permission must cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The request is not tied to one: any role of the action will do.
    Any,
    /// This one environment or team.
    One(String),
    /// Every environment or team: only a role whose patterns include `*` covers it.
    Every,
}

impl Scope {
    fn of(name: Option<&impl ToString>) -> Self {
        name.map_or(Scope::Any, |n| Scope::One(n.to_string()))
    }

    fn covered_by(&self, patterns: &[String]) -> bool {
        match self {
            Scope::Any => true,
            Scope::One(name) => patterns.iter().any(|g| glob(g, name)),
            Scope::Every => patterns.iter().any(|g| g == "*"),
        }
    }

    /// Kuberpult's matching of one policy field: `*` covers everything, a name only itself.
    fn covered_by_policy(&self, field: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::One(name) => field == "*" || field == name,
            Scope::Every => field == "*",
        }
    }
}

/// What a need is in `--rbac-policy` terms: the permission's action (Kuberpult's name, or Railyard's own), and the
/// environment group, environment and application it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyNeed {
    pub action: &'static str,
    pub group: Scope,
    pub environment: Scope,
    pub application: Scope,
}

impl PolicyNeed {
    fn new(action: &'static str, group: Scope, environment: Scope, application: Scope) -> Self {
        Self { action, group, environment, application }
    }

    fn covered_by(&self, p: &crate::rbac::Permission) -> bool {
        p.action == self.action
            && self.group.covered_by_policy(&p.group)
            && self.environment.covered_by_policy(&p.environment)
            && self.application.covered_by_policy(&p.application)
    }

    fn describe(&self) -> String {
        let show = |s: &Scope| match s {
            Scope::One(n) => n.clone(),
            Scope::Any | Scope::Every => "*".to_owned(),
        };
        format!("{} on {}:{} for {}", self.action, show(&self.group), show(&self.environment), show(&self.application))
    }
}

/// One permission a request needs: an action on environments and teams, and how a 403 names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: Action,
    pub environment: Scope,
    pub team: Scope,
    /// The same need for a caller whose permissions come from `--rbac-policy`.
    pub policy: PolicyNeed,
    pub what: String,
}

impl Need {
    fn new(action: Action, environment: Scope, team: Scope, policy: PolicyNeed, what: String) -> Self {
        Self { action, environment, team, policy, what }
    }
}

impl Caller {
    /// True when one of the caller's roles covers `need`.
    pub fn allows(&self, need: &Need) -> bool {
        self.roles.iter().any(|r| {
            (r.action == need.action || r.action == Action::Admin)
                && need.environment.covered_by(&r.environments)
                && need.team.covered_by(&r.teams)
        }) || self.permissions.iter().flatten().any(|p| need.policy.covered_by(p))
    }

    /// 403 naming the first of `needs` the caller lacks (for a policy caller, the permission it would take).
    pub fn check(&self, needs: &[Need]) -> Result<(), ApiError> {
        match needs.iter().find(|n| !self.allows(n)) {
            Some(n) if self.permissions.is_some() => {
                Err(forbidden(format!("{} (it needs the permission {})", n.what, n.policy.describe())))
            }
            Some(n) => Err(forbidden(&n.what)),
            None => Ok(()),
        }
    }
}

/// What storing or running release flow `flow` needs before its steps: the flow role (`RunReleaseFlow`).
pub fn flow_need(flow: &EnvName) -> Need {
    let policy = PolicyNeed::new("RunReleaseFlow", Scope::Any, Scope::Any, Scope::Any);
    Need::new(Action::Flow, Scope::Any, Scope::Any, policy, format!("release flow {flow}"))
}

/// What `request` needs, read from `stage`, the state it is applied to: an application's stored team, a group's
/// environments. The writer checks it on its own stage, so a change queued before this request (a team or a group
/// that changed) is what counts; handlers may check it earlier on a snapshot, before any side effect.
pub fn required(stage: &Stage<'_>, request: &railyard_manifest::Request) -> railyard_manifest::Result<Vec<Need>> {
    use railyard_manifest::request::{
        CreateEnvironment, CreateLock, DeleteEnvironment, DeleteLock, Deploy, DeployReleaseCandidate,
        SetDeploymentStatus, StopEnvironment, UpdateEnvironment,
    };
    use railyard_manifest::{flow, LockTarget, Request, TrainTarget};
    use Scope::{Any, Every};
    let one = |name: &dyn ToString| Scope::One(name.to_string());
    let app_team =
        |app: &AppName| -> railyard_manifest::Result<Scope> { Ok(Scope::of(state::app_team(stage, app)?.as_ref())) };
    let group_envs = |g: &railyard_manifest::GroupName| -> railyard_manifest::Result<Vec<EnvName>> {
        Ok(state::group_environments(stage, g)?.into_iter().map(|(e, _)| e).collect())
    };
    // An environment's group for the policy: its `environmentGroup`, or its own name (Kuberpult's rule).
    let group_of = |env: &EnvName| -> railyard_manifest::Result<Scope> {
        Ok(Scope::One(state::env_config(stage, env)?.map_or_else(|| env.to_string(), |c| c.group_or(env))))
    };
    let on_env = |action: &'static str, env: &EnvName, app: Scope| -> railyard_manifest::Result<PolicyNeed> {
        Ok(PolicyNeed::new(action, group_of(env)?, one(env), app))
    };
    // Releasing an application needs its stored team; giving it another team needs that team too. In the policy:
    // CreateRelease for the app, in the group of each environment it has manifests for.
    let release =
        |app: &AppName, new_team: Option<&TeamName>, envs: Vec<&EnvName>| -> railyard_manifest::Result<Vec<Need>> {
            let what = format!("release of {app}");
            let stored = state::app_team(stage, app)?;
            let mut groups = envs.into_iter().map(group_of).collect::<railyard_manifest::Result<Vec<_>>>()?;
            if groups.is_empty() {
                groups.push(Any);
            }
            let team = Scope::of(stored.as_ref().or(new_team));
            let mut needs: Vec<Need> = groups
                .into_iter()
                .map(|g| {
                    let policy = PolicyNeed::new("CreateRelease", g, Any, one(app));
                    Need::new(Action::Release, Any, team.clone(), policy, what.clone())
                })
                .collect();
            if let (Some(stored), Some(new)) = (&stored, new_team) {
                if stored != new {
                    let policy = PolicyNeed::new("CreateRelease", Any, Any, one(app));
                    let what = format!("{what} (moving it from team {stored} to {new})");
                    needs.push(Need::new(Action::Release, Any, one(new), policy, what));
                }
            }
            Ok(needs)
        };
    let deploy = |app: &AppName, env: &EnvName| -> railyard_manifest::Result<Need> {
        let policy = on_env("DeployRelease", env, one(app))?;
        Ok(Need::new(Action::Deploy, one(env), app_team(app)?, policy, format!("deploy of {app} to {env}")))
    };
    let environment = |action: &'static str, name: &EnvName, group: Option<Scope>| -> railyard_manifest::Result<Need> {
        let policy = match group {
            Some(g) => PolicyNeed::new(action, g, one(name), Every),
            None => on_env(action, name, Every)?,
        };
        Ok(Need::new(Action::Environment, one(name), Any, policy, format!("environment on {name}")))
    };
    Ok(match request {
        Request::CreateEnvironment(CreateEnvironment { name, environment_group, .. }) => {
            // A new environment's group is the one it is given, else its own name.
            let group = environment_group.as_ref().map_or_else(|| one(name), |g| one(g));
            vec![environment("CreateEnvironment", name, Some(group))?]
        }
        Request::UpdateEnvironment(UpdateEnvironment { name, .. }) => {
            vec![environment("CreateEnvironment", name, None)?]
        }
        Request::StopEnvironment(StopEnvironment { name, .. }) => vec![environment("StopEnvironment", name, None)?],
        Request::DeleteEnvironment(DeleteEnvironment { name }) => vec![environment("DeleteEnvironment", name, None)?],
        Request::StopStaleEnvironments(_) | Request::DeleteReviewApps(_) => {
            let action = if matches!(request, Request::StopStaleEnvironments(_)) {
                "StopEnvironment"
            } else {
                "DeleteEnvironment"
            };
            let policy = PolicyNeed::new(action, Every, Every, Every);
            vec![Need::new(Action::Environment, Every, Every, policy, "environment on every environment".into())]
        }
        Request::CreateRelease(r) => release(&r.application, r.team.as_ref(), r.manifests.keys().collect())?,
        Request::CreateReleaseCandidate(r) => release(&r.application, None, r.manifests.keys().collect())?,
        Request::UpdateApplication(r) => release(&r.application, r.team.as_ref(), Vec::new())?,
        Request::Deploy(Deploy { application, environment, .. })
        | Request::DeployReleaseCandidate(DeployReleaseCandidate { application, environment, .. })
        | Request::SetDeploymentStatus(SetDeploymentStatus { application, environment, .. }) => {
            vec![deploy(application, environment)?]
        }
        Request::CreateLock(CreateLock { target, .. }) | Request::DeleteLock(DeleteLock { target, .. }) => {
            let action = if matches!(request, Request::CreateLock(_)) { "CreateLock" } else { "DeleteLock" };
            // A lock on a whole environment or group holds back every team: it needs a role for every team. In the
            // policy, an application lock is on its application, the others on every application (`*`).
            let (envs, team, app) = match target {
                LockTarget::Environment { environment } => (vec![environment.clone()], Every, Every),
                LockTarget::Application { environment, application } => {
                    (vec![environment.clone()], app_team(application)?, one(application))
                }
                LockTarget::Team { environment, team } => (vec![environment.clone()], one(team), Every),
                LockTarget::EnvironmentGroup { group } => (group_envs(group)?, Every, Every),
            };
            envs.iter()
                .map(|e| {
                    let teams = match &team {
                        Every => " for every team".to_owned(),
                        Scope::One(t) => format!(" for team {t}"),
                        Any => String::new(),
                    };
                    let policy = on_env(action, e, app.clone())?;
                    Ok(Need::new(Action::Lock, one(e), team.clone(), policy, format!("lock on {e}{teams}")))
                })
                .collect::<railyard_manifest::Result<Vec<_>>>()?
        }
        Request::ReleaseTrain(r) => {
            let envs = match &r.target {
                TrainTarget::Environment { environment } => vec![environment.clone()],
                TrainTarget::EnvironmentGroup { group } => group_envs(group)?,
            };
            // A train without `team` moves every team's applications.
            let (team, teams) = match &r.team {
                Some(t) => (one(t), format!("team {t}")),
                None => (Every, "every team".to_owned()),
            };
            envs.iter()
                .map(|e| {
                    let policy = on_env("DeployReleaseTrain", e, Every)?;
                    let what = format!("a release train of {teams} to {e}");
                    Ok(Need::new(Action::Train, one(e), team.clone(), policy, what))
                })
                .collect::<railyard_manifest::Result<Vec<_>>>()?
        }
        // Kuberpult: undeploy releases need CreateUndeploy and deleting the application DeployUndeploy, both release
        // permissions of the application's team here; removing it from one environment DeleteEnvironmentApplication.
        Request::CreateUndeploy(railyard_manifest::request::CreateUndeploy { application: app, .. })
        | Request::DeleteApplication(railyard_manifest::request::DeleteApplication { application: app, .. }) => {
            let action =
                if matches!(request, Request::CreateUndeploy(_)) { "CreateUndeploy" } else { "DeployUndeploy" };
            let policy = PolicyNeed::new(action, Any, Any, one(app));
            vec![Need::new(Action::Release, Any, app_team(app)?, policy, format!("release of {app}"))]
        }
        Request::RemoveFromEnvironment(r) => {
            let (env, app) = (&r.environment, &r.application);
            let policy = on_env("DeleteEnvironmentApplication", env, one(app))?;
            vec![Need::new(Action::Deploy, one(env), app_team(app)?, policy, format!("removing {app} from {env}"))]
        }
        Request::Rollback(r) => {
            let (env, app) = (&r.environment, &r.application);
            let lock = on_env("CreateLock", env, one(app))?;
            vec![
                deploy(app, env)?,
                Need::new(Action::Lock, one(env), app_team(app)?, lock, format!("lock on {env} (rollback of {app})")),
            ]
        }
        Request::PutFlow(r) => vec![flow_need(&r.flow)],
        // Sent by the server itself at start (from its flags), never by a caller; no policy line can name it.
        Request::SetArgoCdSource(_) => {
            let policy = PolicyNeed::new("Admin", Every, Every, Every);
            vec![Need::new(Action::Admin, Every, Every, policy, "admin".into())]
        }
        Request::RunFlow(r) => {
            let mut needs = vec![flow_need(&r.flow)];
            for step in &r.steps {
                match &step.action {
                    flow::Action::Request { request } => needs.extend(required(stage, request)?),
                    flow::Action::DeployCandidate { application, environment, .. } => {
                        needs.push(deploy(application, environment)?)
                    }
                    flow::Action::Tag { .. } => {}
                }
            }
            needs
        }
    })
}

/// The token a request presents: `Authorization: Bearer …`, or GitLab's `PRIVATE-TOKEN`.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    headers.get("private-token").and_then(|v| v.to_str().ok()).map(|t| t.trim().to_owned())
}

/// Paths probes and Prometheus reach without a token.
fn open_path(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/auth/config" | "/auth/token")
}

/// Where callers come from: `--auth-tokens`, and OIDC (`--oidc-issuer`) with `--rbac-policy`. Both may be on.
pub struct Authenticator {
    pub tokens: Option<Tokens>,
    pub oidc: Option<(crate::oidc::Oidc, crate::rbac::Policy)>,
    /// `--oidc-client-id`: the web UI signs people in through the issuer.
    pub ui_client_id: Option<String>,
}

impl Authenticator {
    /// The caller a presented token belongs to: a JWT goes to OIDC, anything else to the tokens file.
    async fn caller(&self, token: &str) -> Option<Caller> {
        if crate::oidc::is_jwt(token) {
            if let Some((oidc, policy)) = &self.oidc {
                return match oidc.verify(token).await {
                    Ok(claims) => {
                        let email = claims.email.clone().unwrap_or_default();
                        let name = claims.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| {
                            if email.is_empty() {
                                claims.sub.clone()
                            } else {
                                email.clone()
                            }
                        });
                        let permissions = Some(policy.permissions_of(&claims.groups));
                        Some(Caller { identity: Identity { name, email }, roles: Vec::new(), permissions })
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "refused an OIDC token");
                        None
                    }
                };
            }
        }
        self.tokens.as_ref().and_then(|t| t.find(token))
    }
}

/// Who a request comes from, put on every request by [`authenticate`]: whether auth is on, how one signs in (for
/// the web UI), and the caller if a valid token came with the request. Handlers get it through
/// [`crate::service::Service`].
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub auth_on: bool,
    pub tokens: bool,
    /// The UI can sign people in through the OIDC issuer (`--oidc-issuer` with `--oidc-client-id`).
    pub oidc: bool,
    pub caller: Option<Caller>,
}

/// The web UI's pages and assets: with auth on they answer without a token too (a page then renders as a sign-in
/// shell, with no data), and with a token like any other request.
pub fn ui_path(path: &str) -> bool {
    matches!(path, "/" | "/train" | "/locks" | "/flows" | "/flow-run" | "/auth/callback")
        || ["/app/", "/env/", "/assets/"].iter().any(|p| path.starts_with(p))
}

/// The 401 a request without a valid token gets.
pub fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid token is required (Authorization: Bearer <token> or PRIVATE-TOKEN)",
    )
}

/// The middleware: with `--auth-tokens` or OIDC, every request but the probes and the UI's sign-in shells needs a
/// valid token (401 otherwise). The request carries its [`Session`], from which handlers take the caller.
pub async fn authenticate(
    State(auth): State<Option<std::sync::Arc<Authenticator>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(auth) = auth else {
        req.extensions_mut().insert(Session::default());
        return next.run(req).await;
    };
    let oidc = auth.oidc.is_some() && auth.ui_client_id.is_some();
    let mut session = Session { auth_on: true, tokens: auth.tokens.is_some(), oidc, caller: None };
    let path = req.uri().path();
    let token = presented(req.headers());
    if open_path(path) || (token.is_none() && ui_path(path)) {
        req.extensions_mut().insert(session);
        return next.run(req).await;
    }
    let caller = match token {
        Some(token) => auth.caller(&token).await,
        None => None,
    };
    match caller {
        Some(caller) => {
            session.caller = Some(caller);
            req.extensions_mut().insert(session);
            next.run(req).await
        }
        None => {
            let mut resp = unauthorized().into_response();
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

/// 403 for a caller whose roles do not allow `what`.
pub fn forbidden(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("your token does not allow {what}"))
}

#[cfg(test)]
mod tests {
    use railyard_manifest::request::{CreateLock, CreateRelease};
    use railyard_manifest::{layout, LockId, LockTarget};

    use super::*;

    fn role(action: Action, environments: &[&str], teams: &[&str]) -> Role {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Role { action, environments: strings(environments), teams: strings(teams) }
    }

    fn caller(roles: Vec<Role>) -> Caller {
        Caller { identity: Identity::default(), roles, permissions: None }
    }

    fn release(app: &str, team: Option<&str>) -> railyard_manifest::Request {
        railyard_manifest::Request::CreateRelease(CreateRelease {
            application: AppName::parse(app).unwrap(),
            version: None,
            team: team.map(|t| TeamName::parse(t).unwrap()),
            source_commit_id: String::new(),
            source_author: String::new(),
            source_message: String::new(),
            display_version: String::new(),
            manifests: Default::default(),
            retention: None,
        })
    }

    fn group_lock(group: &str) -> railyard_manifest::Request {
        railyard_manifest::Request::CreateLock(CreateLock {
            target: LockTarget::EnvironmentGroup { group: group.parse().unwrap() },
            lock_id: LockId::parse("l").unwrap(),
            message: String::new(),
        })
    }

    #[test]
    fn needs_are_read_from_the_state_the_request_meets() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let mut stage = Stage::new(&repo, None);
        stage.write(&layout::app_team(&AppName::parse("web").unwrap()), b"core").unwrap();
        for env in ["dev", "staging"] {
            let config = serde_json::json!({"upstream": {"latest": true}, "environmentGroup": "pre"});
            stage.write(&layout::env_config(&EnvName::parse(env).unwrap()), config.to_string().as_bytes()).unwrap();
        }
        let payments = caller(vec![role(Action::Release, &["*"], &["payments"])]);
        let both = caller(vec![role(Action::Release, &["*"], &["payments", "core"])]);
        // The stored team counts, whatever team the upload names; moving the app needs the new team too.
        assert!(payments.check(&required(&stage, &release("web", Some("payments"))).unwrap()).is_err());
        assert!(payments.check(&required(&stage, &release("web", None)).unwrap()).is_err());
        assert!(both.check(&required(&stage, &release("web", Some("payments"))).unwrap()).is_ok());
        assert!(payments.check(&required(&stage, &release("new", Some("payments"))).unwrap()).is_ok());
        // A group lock needs every environment the group has now, for every team.
        let dev_only = caller(vec![role(Action::Lock, &["dev"], &["*"])]);
        let team_scoped = caller(vec![role(Action::Lock, &["*"], &["payments"])]);
        let needs = required(&stage, &group_lock("pre")).unwrap();
        assert_eq!(needs.len(), 2);
        assert!(dev_only.check(&needs).is_err() && team_scoped.check(&needs).is_err());
        assert!(caller(vec![role(Action::Lock, &["*"], &["*"])]).check(&needs).is_ok());
        let e = dev_only.check(&needs).unwrap_err();
        assert!(e.message.contains("lock on staging for every team"), "{}", e.message);
    }

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("staging-*", "staging-eu"));
        assert!(!glob("staging-*", "prod"));
        assert!(glob("review/*", "review/fix-a"));
        assert!(glob("*-eu", "prod-eu"));
        assert!(!glob("dev", "dev2"));
        assert!(glob("a*b*c", "axxbyyc"));
    }

    #[test]
    fn tokens_are_found_by_their_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.yaml");
        let hash: String = Sha256::digest(b"s3cret").iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            &file,
            format!("- token_sha256: {hash}\n  name: Ada\n  email: ada@example.com\n  roles:\n    - action: deploy\n      environments: [\"staging-*\"]\n"),
        )
        .unwrap();
        let t = Tokens::load(&file).unwrap();
        let c = t.find("s3cret").expect("found");
        assert_eq!(c.identity.name, "Ada");
        assert!(t.find("s3cret ").is_none() && t.find("").is_none());
        let policy = || PolicyNeed::new("DeployRelease", Scope::Any, Scope::Any, Scope::Any);
        let need =
            |action, env: &str, team: Scope| Need::new(action, Scope::One(env.into()), team, policy(), String::new());
        assert!(c.allows(&need(Action::Deploy, "staging-eu", Scope::One("core".into()))));
        assert!(!c.allows(&need(Action::Deploy, "prod", Scope::Any)));
        assert!(!c.allows(&need(Action::Lock, "staging-eu", Scope::Any)));
        std::fs::write(&file, "- token_sha256: abc\n  name: Bad\n  email: b@x\n").unwrap();
        let err = Tokens::load(&file).unwrap_err().to_string();
        assert!(err.contains("entry 1 (Bad)"), "{err}");
    }
}
