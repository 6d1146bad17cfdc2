//! Release candidates and deployment records (Aviator semantics): a candidate is a release whose display version is
//! `<release>-rc<N>`; a deployment is a deploy of it plus a record with a status.

use super::{deploy, release, Ctx};
use crate::error::{Error, Result};
use crate::layout;
use crate::names::{AppName, EnvName, Version};
use crate::request::{
    CreateRelease, CreateReleaseCandidate, Deploy, DeployReleaseCandidate, DeploymentRecord, DeploymentStatus,
    LockBehavior, ReleaseCandidateCreated, SetDeploymentStatus,
};
use crate::stage::Stage;
use crate::state;

/// `<release-version>-rc<N>`: a non-empty release version of letters, digits, `.`, `_` and `-`, then `-rc` and a
/// number; at most 100 characters.
pub fn valid_release_candidate_version(v: &str) -> bool {
    let Some((release, n)) = v.rsplit_once("-rc") else { return false };
    v.len() <= 100
        && !release.is_empty()
        && release.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// A commit hash: 7 to 40 hex digits (SHA-1, possibly abbreviated) or 64 (SHA-256).
pub fn valid_commit_hash(c: &str) -> bool {
    c.bytes().all(|b| b.is_ascii_hexdigit()) && ((7..=40).contains(&c.len()) || c.len() == 64)
}

pub(super) fn create(
    stage: &mut Stage<'_>,
    ctx: &Ctx<'_>,
    r: &CreateReleaseCandidate,
) -> Result<ReleaseCandidateCreated> {
    if !valid_release_candidate_version(&r.release_candidate_version) {
        return Err(Error::invalid("release_candidate_version", "Invalid release candidate version"));
    }
    if !valid_commit_hash(&r.commit) {
        return Err(Error::invalid("commit", "Invalid commit hash"));
    }
    let app = &r.application;
    match state::app_repository(stage, app)? {
        Some(repo) if repo != r.repository => return Err(Error::not_found("repository", &r.repository)),
        Some(_) => {}
        None => stage.write(&layout::app_repository(app), r.repository.as_bytes())?,
    }
    let existing = state::release_candidate(stage, app, &r.release_candidate_version)?;
    if let Some(v) = existing {
        if !same_commit(stage, app, v, &r.commit)? {
            return Err(candidate_exists(r));
        }
        if r.manifests.is_empty() {
            // The same candidate again (its manifests, if any, were given the first time).
            return Ok(ReleaseCandidateCreated {
                project: app.clone(),
                release_candidate_version: r.release_candidate_version.clone(),
                version: v,
                created: false,
                repo: r.repository.clone(),
                commit: r.commit.clone(),
                deployed: vec![],
                queued: vec![],
                build_workflow: None,
            });
        }
    }
    let release = CreateRelease {
        application: app.clone(),
        version: existing,
        team: None,
        source_commit_id: r.commit.clone(),
        source_author: String::new(),
        source_message: String::new(),
        display_version: r.release_candidate_version.clone(),
        manifests: r.manifests.clone(),
        retention: None,
    };
    let out = release::store(stage, ctx, &release).map_err(|e| match e {
        Error::Conflict { code: "release_exists", .. } => candidate_exists(r),
        e => e,
    })?;
    if let (Some(build), true) = (&r.build, out.created) {
        let json = serde_json::to_vec_pretty(build).map_err(|e| Error::invalid("build", e.to_string()))?;
        stage.write(&layout::release_build(app, out.version), &json)?;
    }
    Ok(ReleaseCandidateCreated {
        project: app.clone(),
        release_candidate_version: r.release_candidate_version.clone(),
        version: out.version,
        created: out.created,
        repo: r.repository.clone(),
        commit: r.commit.clone(),
        deployed: out.deployed,
        queued: out.queued,
        build_workflow: r.build.clone().filter(|_| out.created),
    })
}

fn same_commit(stage: &Stage<'_>, app: &AppName, v: Version, commit: &str) -> Result<bool> {
    Ok(stage.read_text(&layout::release_file(app, v, layout::RELEASE_SOURCE_COMMIT_ID))?.as_deref() == Some(commit))
}

fn candidate_exists(r: &CreateReleaseCandidate) -> Error {
    Error::conflict(
        "release_candidate_exists",
        format!(
            "release candidate {} of {} already exists with other content",
            r.release_candidate_version, r.application
        ),
    )
}

/// The environment and the release of a candidate, with the messages Aviator's API uses.
fn target(stage: &Stage<'_>, app: &AppName, env: &EnvName, rc: &str) -> Result<Version> {
    if !valid_release_candidate_version(rc) {
        return Err(Error::invalid("release_candidate_version", "Invalid release candidate version"));
    }
    if state::env_config(stage, env)?.is_none() {
        return Err(Error::not_found("release environment", env));
    }
    state::release_candidate(stage, app, rc)?.ok_or_else(|| Error::not_found("release", format!("{app} {rc}")))
}

fn store(stage: &mut Stage<'_>, record: &DeploymentRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).map_err(|e| Error::invalid("deployment", e.to_string()))?;
    stage.write(&layout::deployment_record(&record.project, &record.environment, record.id), &json)?;
    Ok(())
}

/// A new record of candidate `rc` (release `version`) of `app` in `env`, numbered after the last one there.
fn new_record(
    stage: &Stage<'_>,
    ctx: &Ctx<'_>,
    (app, env, rc, version): (&AppName, &EnvName, &str, Version),
    status: DeploymentStatus,
    deployed: bool,
) -> Result<DeploymentRecord> {
    let id = state::deployment_records(stage, app, env)?.last().map_or(1, |r| r.id + 1);
    Ok(DeploymentRecord {
        id,
        project: app.clone(),
        environment: env.clone(),
        release_candidate_version: rc.to_owned(),
        version,
        status,
        deployed,
        created_at: ctx.at.to_owned(),
        updated_at: ctx.at.to_owned(),
        created_by_name: ctx.author.name.clone(),
        created_by_email: ctx.author.email.clone(),
    })
}

pub(super) fn deploy(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &DeployReleaseCandidate) -> Result<DeploymentRecord> {
    let version = target(stage, &r.application, &r.environment, &r.release_candidate_version)?;
    let d = Deploy {
        environment: r.environment.clone(),
        application: r.application.clone(),
        version,
        lock_behavior: LockBehavior::Fail,
    };
    deploy::deploy(stage, ctx, &d)?;
    let target = (&r.application, &r.environment, r.release_candidate_version.as_str(), version);
    let record = new_record(stage, ctx, target, DeploymentStatus::Pending, true)?;
    store(stage, &record)?;
    Ok(record)
}

pub(super) fn set_status(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &SetDeploymentStatus) -> Result<DeploymentRecord> {
    let version = target(stage, &r.application, &r.environment, &r.release_candidate_version)?;
    let latest = state::deployment_records(stage, &r.application, &r.environment)?
        .into_iter()
        .rev()
        .find(|d| d.release_candidate_version == r.release_candidate_version);
    let record = match latest {
        Some(mut d) => {
            if d.status != r.status {
                d.status = r.status;
                d.updated_at = ctx.at.to_owned();
            }
            d
        }
        None => {
            let target = (&r.application, &r.environment, r.release_candidate_version.as_str(), version);
            new_record(stage, ctx, target, r.status, false)?
        }
    };
    store(stage, &record)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_candidate_versions_need_the_rc_suffix() {
        for ok in ["1.4.0-rc1", "v2-rc10", "2026.11.23_build-7-rc0", "x-rc1"] {
            assert!(valid_release_candidate_version(ok), "{ok}");
        }
        for bad in ["1.4.0", "1.4.0-rc", "1.4.0-rcX", "-rc1", "1.4.0-RC1", "1.4 .0-rc1", "1/4-rc1", "1.4.0-rc1 ", ""] {
            assert!(!valid_release_candidate_version(bad), "{bad}");
        }
        assert!(!valid_release_candidate_version(&format!("{}-rc1", "a".repeat(97))));
    }

    #[test]
    fn commit_hashes_are_7_to_40_or_64_hex_digits() {
        for ok in ["abcdef0", "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", &"a".repeat(64), "ABCDEF0"] {
            assert!(valid_commit_hash(ok), "{ok}");
        }
        for bad in ["abcdef", &"a".repeat(41), &"a".repeat(63), &"a".repeat(65), "abcdefg", ""] {
            assert!(!valid_commit_hash(bad), "{bad}");
        }
    }
}
