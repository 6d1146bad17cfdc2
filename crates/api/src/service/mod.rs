//! The typed operations every surface calls: a native handler and a compatibility adapter (Northflank, GitLab,
//! Kuberpult, Aviator) turn their paths and bodies into these inputs and shape the typed results into their
//! answers. Nothing here knows HTTP paths or another surface's shapes.

pub mod candidates;
pub mod environments;
pub mod flows;
pub mod trains;

use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use git2::Oid;
use railyard_manifest::{Envelope, Outcome, Request};
use serde::Serialize;

use crate::auth::{Caller, Need, Session};
use crate::error::{ApiError, ApiResult};
use crate::routes::{now, AppState};
use crate::writer::{Applied, Job};

/// One request's handle on the service: the shared state and who is asking. Handlers take it as an extractor; it
/// comes from the [`Session`] the authentication layer put on the request, so a request that did not pass that
/// layer is refused (500) rather than treated as "auth off".
#[derive(Clone)]
pub struct Service {
    state: AppState,
    session: Session,
}

impl FromRequestParts<AppState> for Service {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the request did not pass the authentication layer"))?;
        Ok(Self { state: state.clone(), session })
    }
}

impl Deref for Service {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.state
    }
}

impl Service {
    /// The service for `session`'s caller (the extractor builds it per request).
    pub fn new(state: AppState, session: Session) -> Self {
        Self { state, session }
    }

    /// Who the request comes from: None with auth off; with auth on, a request without a valid token (a UI page's
    /// sign-in shell) may read what is open but is refused (401) anything that needs a caller.
    pub fn caller(&self) -> ApiResult<Option<&Caller>> {
        match (&self.session.caller, self.session.auth_on) {
            (Some(caller), _) => Ok(Some(caller)),
            (None, false) => Ok(None),
            (None, true) => Err(crate::auth::unauthorized()),
        }
    }

    /// Checks on the current state that the caller may make `request` (403 otherwise): for handlers that do
    /// something before queueing it. The writer checks again on the state it applies the request to.
    pub async fn authorize(&self, request: &Request) -> ApiResult<()> {
        let Some(caller) = self.caller()?.cloned() else { return Ok(()) };
        let request = request.clone();
        self.with_stage(move |stage| caller.check(&crate::auth::required(stage, &request)?)).await
    }

    /// Checks a need that does not depend on the state (403 otherwise), before a handler does any work.
    pub fn authorize_now(&self, need: &Need) -> ApiResult<()> {
        self.caller()?.map_or(Ok(()), |c| c.check(std::slice::from_ref(need)))
    }

    /// Queues `request` for the writer and waits for its commit. With auth on, the caller's roles must allow it on
    /// the state the writer applies it to (403 otherwise), and the caller is its author.
    pub async fn write(&self, request: Request) -> ApiResult<Applied> {
        self.write_with_blobs(request, Vec::new()).await
    }

    /// [`Service::write`] for a request that names `blobs` by id: the writer stores them once the caller is
    /// authorized, and only if the request succeeds.
    pub async fn write_with_blobs(&self, request: Request, blobs: Vec<Vec<u8>>) -> ApiResult<Applied> {
        let caller = self.caller()?.cloned();
        let author = caller.as_ref().map(|c| c.identity.clone()).unwrap_or_default();
        let envelope = Envelope { author, at: now(), request };
        self.writer.submit(Job { envelope, caller, blobs }).await
    }
}

/// What a write did, and the commit that holds it (None: it changed nothing). Serialised as the outcome's members
/// with `commit` beside them.
#[derive(Debug, Clone, Serialize)]
pub struct Written<T> {
    #[serde(flatten)]
    pub outcome: T,
    pub commit: Option<String>,
}

/// A dry run's answer: what the write would do, `commit: null` and `dryRun: true` (trains and flow runs, native
/// and Northflank).
#[derive(Debug, Clone, Serialize)]
pub struct DryRun<T> {
    #[serde(flatten)]
    pub outcome: T,
    pub commit: Option<String>,
    #[serde(rename = "dryRun")]
    pub dry_run: bool,
}

impl<T> DryRun<T> {
    pub fn new(outcome: T) -> Self {
        Self { outcome, commit: None, dry_run: true }
    }
}

impl<T> Written<T> {
    fn new(outcome: T, commit: Option<Oid>) -> Self {
        Self { outcome, commit: commit.map(|c| c.to_string()) }
    }
}

/// Queues `request` and takes its typed result out of the writer's answer.
pub(crate) async fn write<T: TryFrom<Outcome, Error = Outcome>>(
    st: &Service,
    request: Request,
) -> ApiResult<Written<T>> {
    typed(st.write(request).await?)
}

/// [`write`] for a request that names `blobs` by id (see [`Service::write_with_blobs`]).
pub(crate) async fn write_with_blobs<T: TryFrom<Outcome, Error = Outcome>>(
    st: &Service,
    request: Request,
    blobs: Vec<Vec<u8>>,
) -> ApiResult<Written<T>> {
    typed(st.write_with_blobs(request, blobs).await?)
}

fn typed<T: TryFrom<Outcome, Error = Outcome>>(applied: Applied) -> ApiResult<Written<T>> {
    let outcome = T::try_from(applied.outcome)
        .map_err(|other| ApiError::internal(format!("the writer answered an unexpected outcome: {other:?}")))?;
    Ok(Written::new(outcome, applied.commit))
}
