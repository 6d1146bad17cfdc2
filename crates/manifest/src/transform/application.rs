//! update-application: team and source repository of an application.

use crate::error::{Error, Result};
use crate::layout;
use crate::request::{ApplicationUpdated, UpdateApplication};
use crate::stage::Stage;
use crate::state;

/// `org/repo`: two non-empty parts of `[A-Za-z0-9_.-]`, neither `.` nor `..`.
pub(crate) fn valid_repository(repo: &str) -> bool {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.len() <= 100
            && p.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    };
    matches!(repo.split_once('/'), Some((org, name)) if part_ok(org) && part_ok(name))
}

pub(super) fn update(stage: &mut Stage<'_>, r: &UpdateApplication) -> Result<ApplicationUpdated> {
    if !state::app_exists(stage, &r.application)? {
        super::argocd::check_new_app(stage, &r.application)?;
    }
    if let Some(team) = &r.team {
        if stage.write_if_changed(&layout::app_team(&r.application), team.as_str().as_bytes())? {
            super::argocd::mark_app(stage, &r.application)?;
        }
    }
    if let Some(repo) = &r.repository {
        if !valid_repository(repo) {
            return Err(Error::invalid("repository", format!("repository {repo:?} must look like \"org/repo\"")));
        }
        stage.write_if_changed(&layout::app_repository(&r.application), repo.as_bytes())?;
    }
    Ok(ApplicationUpdated {
        application: r.application.clone(),
        team: state::app_team(stage, &r.application)?,
        repository: state::app_repository(stage, &r.application)?,
    })
}

#[cfg(test)]
mod tests {
    use super::valid_repository;

    #[test]
    fn repositories() {
        assert!(valid_repository("org/repo.rs"));
        for bad in ["org", "org/", "/repo", "a/b/c", "../x", "org/..", "o rg/x"] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }
}
