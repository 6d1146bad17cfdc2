//! The typed operations every surface calls: a native handler and a compatibility adapter (Northflank, GitLab,
//! Kuberpult, Aviator) turn their paths and bodies into these inputs and shape the typed results into their
//! answers. Nothing here knows HTTP paths or another surface's shapes.

pub mod flows;
pub mod trains;

use git2::Oid;
use railyard_manifest::{Outcome, Request};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::routes::AppState;
use crate::writer::Applied;

/// What a write did, and the commit that holds it (None: it changed nothing). Serialised as the outcome's members
/// with `commit` beside them.
#[derive(Debug, Clone, Serialize)]
pub struct Written<T> {
    #[serde(flatten)]
    pub outcome: T,
    pub commit: Option<String>,
}

impl<T> Written<T> {
    fn new(outcome: T, commit: Option<Oid>) -> Self {
        Self { outcome, commit: commit.map(|c| c.to_string()) }
    }
}

/// Queues `request` and takes its typed result out of the writer's answer.
pub(crate) async fn write<T: TryFrom<Outcome, Error = Outcome>>(
    st: &AppState,
    request: Request,
) -> ApiResult<Written<T>> {
    typed(st.write(request).await?)
}

/// [`write`] for a request that names `blobs` by id (see [`AppState::write_with_blobs`]).
pub(crate) async fn write_with_blobs<T: TryFrom<Outcome, Error = Outcome>>(
    st: &AppState,
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
