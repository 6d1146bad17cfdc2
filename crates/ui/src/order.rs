//! The order environments are shown in: grouped by environment group, groups and their environments in upstream
//! order (an environment fed by `latest` first, then what it feeds, and so on), names breaking ties.

use std::collections::HashMap;

use railyard_manifest::{EnvName, EnvironmentConfig};

/// One column group: the group's name and its environments, in order (indices into the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub environments: Vec<usize>,
}

/// How far `env` is from `latest` along its upstreams (0: fed by `latest` or by nothing). A cycle, which the
/// API refuses to store but a hand-edited repo may hold, counts as the length walked before it closes.
fn depth(configs: &HashMap<&EnvName, &EnvironmentConfig>, env: &EnvName) -> usize {
    let mut seen = vec![env];
    let mut at = env;
    while let Some(up) = configs.get(at).and_then(|c| c.upstream.as_ref()).and_then(|u| u.environment.as_ref()) {
        if seen.contains(&up) || !configs.contains_key(up) {
            break;
        }
        seen.push(up);
        at = up;
    }
    seen.len() - 1
}

/// The environments `envs` grouped and ordered for the overview's columns.
pub fn groups(envs: &[(&EnvName, &EnvironmentConfig)]) -> Vec<Group> {
    let configs: HashMap<&EnvName, &EnvironmentConfig> = envs.iter().copied().collect();
    let depths: Vec<usize> = envs.iter().map(|(e, _)| depth(&configs, e)).collect();
    let mut by_group: Vec<Group> = Vec::new();
    for (i, (env, config)) in envs.iter().enumerate() {
        let name = config.group_or(env);
        match by_group.iter_mut().find(|g| g.name == name) {
            Some(g) => g.environments.push(i),
            None => by_group.push(Group { name, environments: vec![i] }),
        }
    }
    for g in &mut by_group {
        g.environments.sort_by(|&a, &b| depths[a].cmp(&depths[b]).then_with(|| envs[a].0.cmp(envs[b].0)));
    }
    let first = |g: &Group| g.environments.iter().map(|&i| depths[i]).min().unwrap_or(0);
    by_group.sort_by(|a, b| first(a).cmp(&first(b)).then_with(|| a.name.cmp(&b.name)));
    by_group
}

#[cfg(test)]
mod tests {
    use railyard_manifest::{GroupName, Upstream};

    use super::*;

    fn env(name: &str, upstream: Option<&str>, group: Option<&str>) -> (EnvName, EnvironmentConfig) {
        let upstream = Some(match upstream {
            None => Upstream { latest: Some(true), environment: None },
            Some(e) => Upstream { latest: None, environment: Some(EnvName::parse(e).unwrap()) },
        });
        let config = EnvironmentConfig {
            upstream,
            environment_group: group.map(|g| GroupName::parse(g).unwrap()),
            ..Default::default()
        };
        (EnvName::parse(name).unwrap(), config)
    }

    fn names(envs: &[(EnvName, EnvironmentConfig)]) -> Vec<(String, Vec<String>)> {
        let refs: Vec<_> = envs.iter().map(|(e, c)| (e, c)).collect();
        groups(&refs)
            .into_iter()
            .map(|g| (g.name, g.environments.iter().map(|&i| envs[i].0.to_string()).collect()))
            .collect()
    }

    #[test]
    fn groups_follow_the_upstream_chain_not_the_names() {
        // Alphabetically: a-prod, b-dev, c-staging; by upstream: dev, staging, prod.
        let envs = vec![
            env("a-prod-de", Some("c-staging"), Some("prod")),
            env("a-prod-us", Some("c-staging"), Some("prod")),
            env("b-dev", None, None),
            env("c-staging", Some("b-dev"), None),
        ];
        assert_eq!(
            names(&envs),
            vec![
                ("b-dev".to_owned(), vec!["b-dev".to_owned()]),
                ("c-staging".to_owned(), vec!["c-staging".to_owned()]),
                ("prod".to_owned(), vec!["a-prod-de".to_owned(), "a-prod-us".to_owned()]),
            ]
        );
    }

    #[test]
    fn a_cycle_or_a_missing_upstream_does_not_hang_or_panic() {
        let envs = vec![env("x", Some("y"), None), env("y", Some("x"), None), env("z", Some("gone"), None)];
        let got = names(&envs);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, "z", "an upstream that does not exist counts as depth 0: {got:?}");
    }
}
