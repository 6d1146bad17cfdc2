//! `--rbac-policy FILE`: Kuberpult's Dex policy format, so a Kuberpult policy works unchanged. Permission lines
//! `p, role:<role>, <Action>, <envGroup>:<env>, <app>, allow` and group lines `g, <groups claim value>, role:<role>`;
//! spaces around commas are ignored, blank lines and `#` comments skipped, anything else refused with its line
//! number. `*` stands for every environment group, environment or application. Actions are Kuberpult's plus
//! Railyard's own (see [`ACTIONS`]); the environment-independent ones (creating a release or an undeploy) take `*`
//! as the environment, as in Kuberpult.

use std::collections::BTreeSet;
use std::path::Path;

/// Every action a permission line may name: Kuberpult's, then Railyard's own.
pub const ACTIONS: &[&str] = &[
    "CreateLock",
    "DeleteLock",
    "CreateRelease",
    "DeployRelease",
    "CreateUndeploy",
    "DeployUndeploy",
    "CreateEnvironment",
    "DeleteEnvironment",
    "CreateEnvironmentApplication",
    "DeleteEnvironmentApplication",
    "DeployReleaseTrain",
    // Railyard's own.
    "RunReleaseFlow",
    "StopEnvironment",
];

/// Actions not tied to an environment: their lines name the environment `*` (`<group>:*`).
const ENVIRONMENT_INDEPENDENT: &[&str] = &["CreateRelease", "CreateUndeploy", "DeployUndeploy", "RunReleaseFlow"];

/// One permission line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub role: String,
    pub action: String,
    pub group: String,
    pub environment: String,
    pub application: String,
}

/// A loaded policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    permissions: Vec<Permission>,
    /// (groups claim value, role)
    groups: Vec<(String, String)>,
}

/// A name in a policy line: `*`, or letters, digits and `-_.` (Kuberpult's names and Dex group names).
fn name_ok(s: &str) -> bool {
    s == "*" || (!s.is_empty() && s.len() <= 253 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c)))
}

impl Policy {
    pub fn load(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut policy = Policy::default();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let role_of = |f: &str| -> Result<String, String> {
                match f.strip_prefix("role:") {
                    Some(r) if name_ok(r) && r != "*" => Ok(r.to_owned()),
                    _ => Err(format!("line {n}: expected `role:<name>`, got {f:?}")),
                }
            };
            match fields[0] {
                "p" => {
                    let [_, role, action, envs, app, effect] = fields[..] else {
                        return Err(format!("line {n}: a permission line has 6 fields, this one {}", fields.len()));
                    };
                    let role = role_of(role)?;
                    if !ACTIONS.contains(&action) {
                        return Err(format!("line {n}: unknown action {action:?} (one of {})", ACTIONS.join(", ")));
                    }
                    let Some((group, environment)) = envs.split_once(':').filter(|(g, e)| name_ok(g) && name_ok(e))
                    else {
                        return Err(format!(
                            "line {n}: the environment must be <envGroup>:<environment>, got {envs:?}"
                        ));
                    };
                    if ENVIRONMENT_INDEPENDENT.contains(&action) && environment != "*" {
                        return Err(format!("line {n}: {action} is not tied to an environment: write {group}:*"));
                    }
                    if !name_ok(app) {
                        return Err(format!("line {n}: invalid application {app:?}"));
                    }
                    if effect != "allow" {
                        return Err(format!("line {n}: the last field must be `allow`, got {effect:?}"));
                    }
                    policy.permissions.push(Permission {
                        role,
                        action: action.to_owned(),
                        group: group.to_owned(),
                        environment: environment.to_owned(),
                        application: app.to_owned(),
                    });
                }
                "g" => {
                    let [_, group, role] = fields[..] else {
                        return Err(format!("line {n}: a group line has 3 fields, this one {}", fields.len()));
                    };
                    if group.is_empty() {
                        return Err(format!("line {n}: the group is empty"));
                    }
                    policy.groups.push((group.to_owned(), role_of(role)?));
                }
                other => return Err(format!("line {n}: a line starts with `p` or `g`, not {other:?}")),
            }
        }
        if policy.permissions.is_empty() {
            return Err("the policy has no permission lines".into());
        }
        Ok(policy)
    }

    /// The permissions of someone in `groups` (values of the token's groups claim).
    pub fn permissions_of(&self, groups: &[String]) -> Vec<Permission> {
        let roles: BTreeSet<&str> =
            self.groups.iter().filter(|(g, _)| groups.iter().any(|c| c == g)).map(|(_, r)| r.as_str()).collect();
        self.permissions.iter().filter(|p| roles.contains(p.role.as_str())).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.permissions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.permissions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kuberpult_lines_parse_with_spaces_and_bad_lines_name_their_number() {
        let p = Policy::parse(
            "# comment\np, role:developer, CreateLock, development:development, *, allow\n\
             p,role:developer,CreateRelease,*:*,web,allow\n g, dev-team, role:developer\n",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.permissions_of(&["dev-team".into()]).len(), 2);
        assert!(p.permissions_of(&["others".into()]).is_empty());
        for (bad, line) in [
            ("p, role:d, CreateLock, dev:dev, *, allow\nx, y\n", "line 2"),
            ("p, role:d, Fly, dev:dev, *, allow\n", "line 1: unknown action"),
            ("p, role:d, CreateLock, dev, *, allow\n", "line 1: the environment"),
            ("p, role:d, CreateRelease, dev:dev, *, allow\n", "write dev:*"),
            ("p, d, CreateLock, dev:dev, *, allow\n", "role:"),
            ("p, role:d, CreateLock, dev:dev, *, deny\n", "allow"),
            ("p, role:d, CreateLock, dev:dev, *, allow\ng, x\n", "line 2: a group line"),
        ] {
            let e = Policy::parse(bad).unwrap_err();
            assert!(e.contains(line), "{bad:?}: {e}");
        }
    }
}
