//! create-environment.

use super::Ctx;
use crate::error::{Error, Result};
use crate::layout;
use crate::model::{EnvironmentConfig, Tier};
use crate::names::EnvName;
use crate::request::{CreateEnvironment, EnvironmentCreated};
use crate::stage::Stage;
use crate::state;

/// The next environment id: ids are never reused, so the counter lives in the repo and only goes up.
fn next_id(stage: &mut Stage<'_>) -> Result<u64> {
    let stored = match stage.read_text(layout::NEXT_ENVIRONMENT_ID)? {
        Some(t) => t
            .parse::<u64>()
            .map_err(|e| Error::Corrupt { path: layout::NEXT_ENVIRONMENT_ID.into(), reason: e.to_string() })?,
        // A repo written before the counter existed (or by Kuberpult): start after the highest id in use.
        None => state::environments(stage)?.iter().map(|(_, c)| c.id).max().unwrap_or(0) + 1,
    };
    let id = stored.max(1);
    stage.write(layout::NEXT_ENVIRONMENT_ID, (id + 1).to_string().as_bytes())?;
    Ok(id)
}

pub(super) fn create(stage: &mut Stage<'_>, ctx: &Ctx<'_>, r: &CreateEnvironment) -> Result<EnvironmentCreated> {
    let name = &r.name;
    if state::env_config(stage, name)?.is_some() {
        return Err(Error::conflict("environment_exists", format!("environment \"{name}\" already exists")));
    }
    // `review/x` needs `review` to be a folder, not an environment, and `review` must not be taken by a folder.
    if let Some((folder, _)) = name.as_str().split_once('/') {
        let folder = EnvName::parse(folder)?;
        if state::env_config(stage, &folder)?.is_some() {
            return Err(Error::conflict("environment_exists", format!("\"{folder}\" is an environment, not a folder")));
        }
    } else if !stage.list(&layout::env_dir(name))?.is_empty() {
        return Err(Error::conflict("environment_exists", format!("\"{name}\" is a folder of environments")));
    }
    if let Some(upstream) = &r.upstream {
        match (&upstream.environment, upstream.is_latest()) {
            (Some(_), true) => {
                return Err(Error::invalid("upstream", "upstream takes either latest or environment, not both"));
            }
            (Some(up), false) => {
                if up == name {
                    return Err(Error::invalid("upstream", "an environment cannot be its own upstream"));
                }
                if state::env_config(stage, up)?.is_none() {
                    return Err(Error::not_found("upstream environment", up));
                }
            }
            _ => {}
        }
    }
    let config = EnvironmentConfig {
        upstream: r.upstream.clone(),
        environment_group: r.environment_group.clone(),
        tier: r.tier.unwrap_or_else(|| Tier::guess(name)),
        external_url: r.external_url.clone(),
        id: next_id(stage)?,
        created_at: Some(ctx.at.to_owned()),
        updated_at: Some(ctx.at.to_owned()),
        ..EnvironmentConfig::default()
    };
    let json = serde_json::to_vec_pretty(&config).map_err(|e| Error::invalid("config", e.to_string()))?;
    stage.write(&layout::env_config(name), &json)?;
    Ok(EnvironmentCreated { name: name.clone(), config })
}

#[cfg(test)]
mod tests {
    use crate::transform::test_support::*;
    use crate::{state, Error, Stage};

    #[test]
    fn ids_are_never_reused_and_names_are_unique() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        create_env(&mut s, "staging", from_env("dev"), Some("pre"));
        let cfg = state::env_config(&s, &env("staging")).unwrap().unwrap();
        assert_eq!(cfg.id, 2);
        assert_eq!(cfg.upstream.unwrap().environment, Some(env("dev")));
        assert_eq!(cfg.environment_group.unwrap().as_str(), "pre");
        s.remove_dir("environments/staging").unwrap();
        create_env(&mut s, "qa", from_env("dev"), None);
        assert_eq!(state::env_config(&s, &env("qa")).unwrap().unwrap().id, 3);
    }

    #[test]
    fn refuses_duplicates_unknown_upstream_and_folder_clashes() {
        let (_d, repo) = repo();
        let mut s = Stage::new(&repo, None);
        create_env(&mut s, "dev", latest(), None);
        let dup = run(
            &mut s,
            crate::Request::CreateEnvironment(crate::request::CreateEnvironment {
                name: env("dev"),
                upstream: None,
                environment_group: None,
                tier: None,
                external_url: None,
            }),
        );
        assert!(matches!(dup, Err(Error::Conflict { code: "environment_exists", .. })));
        let bad_up = run(
            &mut s,
            crate::Request::CreateEnvironment(crate::request::CreateEnvironment {
                name: env("prod"),
                upstream: Some(from_env("nope")),
                environment_group: None,
                tier: None,
                external_url: None,
            }),
        );
        assert!(matches!(bad_up, Err(Error::NotFound { .. })));
        let in_env = run(
            &mut s,
            crate::Request::CreateEnvironment(crate::request::CreateEnvironment {
                name: env("dev/x"),
                upstream: None,
                environment_group: None,
                tier: None,
                external_url: None,
            }),
        );
        assert!(matches!(in_env, Err(Error::Conflict { .. })));
        create_env(&mut s, "review/fix-a", latest(), None);
        let names: Vec<String> = state::environments(&s).unwrap().into_iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, vec!["dev", "review/fix-a"]);
    }
}
