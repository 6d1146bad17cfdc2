//! Release-flow templates: validation, and resolution of a template with a run's arguments and overrides into
//! concrete steps. Pure: no git, no network.
//!
//! A template is `{"steps": [...]}` (YAML or JSON); each step has a unique `ref` and a `kind` (`release-train`,
//! `deploy`, `lock`, `unlock`, `tag`) and string fields that may use `${args.NAME}` or `${args.NAME:-default}`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
pub use crate::model::{NodeOverride, Template};
use crate::names::{AppName, EnvName, GroupName, LockId, TagName, TeamName, Version};
pub use crate::request::{Action, RunInputs, Step};
use crate::request::{CreateLock, DeleteLock, Deploy, LockBehavior, LockTarget, ReleaseTrain, Request, TrainTarget};

/// The fields each kind of step takes (besides `ref` and `kind`).
fn fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "release-train" => &["environment", "environmentGroup", "team", "gitTag", "sourceGitTag"],
        "deploy" => &["application", "environment", "version", "releaseCandidate", "lockBehavior"],
        "lock" => &["environment", "environmentGroup", "application", "team", "lockId", "message"],
        "unlock" => &["environment", "environmentGroup", "application", "team", "lockId"],
        "tag" => &["tag"],
        _ => return None,
    })
}

fn bad(place: impl std::fmt::Display, message: impl std::fmt::Display) -> Error {
    Error::Invalid { field: "template".into(), message: format!("{place}: {message}") }
}

/// A step's fields as strings (numbers and booleans are written as text).
fn scalar(place: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(bad(place, "must be a string")),
    }
}

/// The placeholders of `s`: `(name, default)` for each `${args.NAME[:-default]}`; any other `${` is an error.
fn placeholders(place: &str, s: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| bad(place, "a `${` is not closed"))?;
        let inner = &after[..end];
        let inner = inner
            .strip_prefix("args.")
            .ok_or_else(|| bad(place, format!("`${{{inner}}}`: only `${{args.NAME}}` placeholders exist")))?;
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d.to_owned())),
            None => (inner, None),
        };
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(bad(place, format!("`{name}` is not an argument name")));
        }
        out.push((name.to_owned(), default));
        rest = &after[end + 1..];
    }
    Ok(out)
}

/// Most flow-collection openers (`[`, `{`) a YAML template may hold. YAML parsers spend time quadratic in the
/// depth of nested flow collections (100,000 levels took 52 s), and the count of openers bounds that depth
/// whatever the quoting, so counting them is a check no crafted body gets past. A template needs a few per step at
/// most; JSON bodies go to a parser with a depth limit of its own.
pub const MAX_YAML_FLOW_OPENERS: usize = 1000;

impl Template {
    /// Reads and checks a template sent as JSON or YAML; a YAML body with more than [`MAX_YAML_FLOW_OPENERS`]
    /// `[` and `{` is refused before it is parsed. Parsing is CPU work: call it off the async runtime's threads.
    pub fn parse(body: &[u8], json: bool) -> Result<Template> {
        let openers = body.iter().filter(|&&c| c == b'[' || c == b'{').count();
        if !json && openers > MAX_YAML_FLOW_OPENERS {
            return Err(bad(
                "body",
                format!(
                    "a YAML template may hold at most {MAX_YAML_FLOW_OPENERS} `[` and `{{` (this one has {openers})"
                ),
            ));
        }
        let value: Value = if json {
            serde_json::from_slice(body).map_err(|e| bad("body", format!("not JSON: {e}")))?
        } else {
            serde_yaml::from_slice(body).map_err(|e| bad("body", format!("not YAML: {e}")))?
        };
        Template::validate(&value)
    }

    /// Checks a template: known kinds, unique refs, the fields each kind takes and needs, placeholder syntax.
    pub fn validate(value: &Value) -> Result<Template> {
        let obj = value.as_object().ok_or_else(|| bad("template", "must be an object with `steps`"))?;
        for key in obj.keys() {
            if key != "steps" && key != "description" {
                return Err(bad(key, "unknown key (a template has `steps` and an optional `description`)"));
            }
        }
        let description = match obj.get("description") {
            None | Some(Value::Null) => None,
            Some(v) => Some(scalar("description", v)?),
        };
        let steps = obj.get("steps").and_then(Value::as_array).ok_or_else(|| bad("steps", "must be a list"))?;
        if steps.is_empty() {
            return Err(bad("steps", "a flow needs at least one step"));
        }
        let mut refs = BTreeSet::new();
        let mut out = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            let step = step.as_object().ok_or_else(|| bad(&at, "must be an object"))?;
            let step_ref = match step.get("ref") {
                Some(v) => scalar(&format!("{at}.ref"), v)?,
                None => return Err(bad(&at, "`ref` is required")),
            };
            let ref_ok = !step_ref.is_empty()
                && step_ref.len() <= 64
                && step_ref.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ref_ok {
                return Err(bad(format!("{at}.ref"), "1 to 64 letters, digits, `-` or `_`"));
            }
            if !refs.insert(step_ref.clone()) {
                return Err(bad(format!("{at}.ref"), format!("`{step_ref}` is used by an earlier step")));
            }
            let at = format!("{at} ({step_ref})");
            let kind = match step.get("kind") {
                Some(v) => scalar(&format!("{at}.kind"), v)?,
                None => return Err(bad(&at, "`kind` is required")),
            };
            let allowed = fields(&kind).ok_or_else(|| {
                bad(
                    format!("{at}.kind"),
                    format!("unknown step kind `{kind}` (release-train, deploy, lock, unlock, tag)"),
                )
            })?;
            let mut map = BTreeMap::new();
            for (key, v) in step {
                if key == "ref" || key == "kind" {
                    continue;
                }
                if !allowed.contains(&key.as_str()) {
                    return Err(bad(format!("{at}.{key}"), format!("a `{kind}` step does not take `{key}`")));
                }
                let text = scalar(&format!("{at}.{key}"), v)?;
                placeholders(&format!("{at}.{key}"), &text)?;
                map.insert(key.clone(), text);
            }
            check_required(&at, &kind, &map)?;
            map.insert("ref".into(), step_ref);
            map.insert("kind".into(), kind);
            out.push(map);
        }
        Ok(Template { description, steps: out })
    }

    /// The template as YAML, as stored in `release-flows/<flow>.yaml`.
    pub fn to_yaml(&self) -> String {
        let steps: Vec<Map<String, Value>> = self
            .steps
            .iter()
            .map(|s| {
                let mut m = Map::new();
                // ref and kind first, for people reading the file
                for key in ["ref", "kind"] {
                    m.insert(key.into(), Value::String(s[key].clone()));
                }
                for (k, v) in s.iter().filter(|(k, _)| *k != "ref" && *k != "kind") {
                    m.insert(k.clone(), Value::String(v.clone()));
                }
                m
            })
            .collect();
        let mut top = Map::new();
        if let Some(d) = &self.description {
            top.insert("description".into(), Value::String(d.clone()));
        }
        top.insert("steps".into(), Value::Array(steps.into_iter().map(Value::Object).collect()));
        serde_yaml::to_string(&Value::Object(top)).unwrap_or_default()
    }

    /// Reads a stored template.
    pub fn from_yaml(path: &str, text: &str) -> Result<Template> {
        let value: Value =
            serde_yaml::from_str(text).map_err(|e| Error::Corrupt { path: path.into(), reason: e.to_string() })?;
        Template::validate(&value)
    }
}

fn check_required(at: &str, kind: &str, m: &BTreeMap<String, String>) -> Result<()> {
    let has = |k: &str| m.contains_key(k);
    let one_of = |a: &str, b: &str| -> Result<()> {
        if has(a) == has(b) {
            return Err(bad(at, format!("a `{kind}` step needs exactly one of `{a}` and `{b}`")));
        }
        Ok(())
    };
    let needs = |k: &str| -> Result<()> {
        if !has(k) {
            return Err(bad(at, format!("a `{kind}` step needs `{k}`")));
        }
        Ok(())
    };
    match kind {
        "release-train" => one_of("environment", "environmentGroup"),
        "deploy" => {
            needs("application")?;
            needs("environment")?;
            one_of("version", "releaseCandidate")
        }
        "lock" | "unlock" => {
            needs("lockId")?;
            one_of("environment", "environmentGroup")?;
            if has("application") && has("team") {
                return Err(bad(at, "a lock is on an application or a team, not both"));
            }
            if has("environmentGroup") && (has("application") || has("team")) {
                return Err(bad(at, "application and team locks need `environment`"));
            }
            Ok(())
        }
        _ => needs("tag"),
    }
}

fn parse<T, E: Into<Error>>(place: &str, s: &str, f: impl Fn(&str) -> std::result::Result<T, E>) -> Result<T> {
    f(s).map_err(|e| {
        let e: Error = e.into();
        bad(place, e)
    })
}

fn substitute(place: &str, s: &str, args: &BTreeMap<String, String>) -> Result<String> {
    let mut out = s.to_owned();
    for (name, default) in placeholders(place, s)? {
        let value = args
            .get(&name)
            .cloned()
            .or(default.clone())
            .ok_or_else(|| bad(place, format!("`${{args.{name}}}` has no value: pass argument `{name}`")))?;
        let token = match &default {
            Some(d) => format!("${{args.{name}:-{d}}}"),
            None => format!("${{args.{name}}}"),
        };
        out = out.replacen(&token, &value, 1);
    }
    Ok(out)
}

impl Template {
    /// The concrete steps of a run: each step's fields with its `overrides` applied, then arguments substituted,
    /// then typed; `releaseNodeOverrides` replace what a deploy step deploys for that application. Train steps
    /// carry their `sourceGitTag` unresolved (the caller resolves tags).
    pub fn resolve(&self, inputs: &RunInputs) -> Result<Vec<Step>> {
        for r in inputs.overrides.keys() {
            if !self.steps.iter().any(|s| &s["ref"] == r) {
                return Err(Error::Invalid {
                    field: "overrides".into(),
                    message: format!("overrides.{r}: no step has this ref"),
                });
            }
        }
        for (app, o) in &inputs.release_node_overrides {
            if o.version.is_some() == o.release_candidate.is_some() {
                return Err(Error::Invalid {
                    field: "releaseNodeOverrides".into(),
                    message: format!(
                        "releaseNodeOverrides.{app}: give exactly one of `version` and `releaseCandidate`"
                    ),
                });
            }
        }
        let mut out = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let (step_ref, kind) = (step["ref"].clone(), step["kind"].clone());
            let at = format!("steps[{i}] ({step_ref})");
            let mut m: BTreeMap<String, String> =
                step.iter().filter(|(k, _)| *k != "ref" && *k != "kind").map(|(k, v)| (k.clone(), v.clone())).collect();
            if let Some(o) = inputs.overrides.get(&step_ref) {
                let allowed = fields(&kind).unwrap_or_default();
                for (k, v) in o {
                    if !allowed.contains(&k.as_str()) {
                        return Err(Error::Invalid {
                            field: "overrides".into(),
                            message: format!("overrides.{step_ref}.{k}: a `{kind}` step does not take `{k}`"),
                        });
                    }
                    m.insert(k.clone(), v.clone());
                }
                check_required(&format!("{at} with overrides"), &kind, &m)?;
            }
            let mut v: BTreeMap<String, String> = BTreeMap::new();
            for (k, raw) in &m {
                v.insert(k.clone(), substitute(&format!("{at}.{k}"), raw, &inputs.arguments)?);
            }
            let get = |k: &str| v.get(k).map(String::as_str);
            let field = |k: &str| format!("{at}.{k}");
            let env = |k: &str| get(k).map(|s| parse(&field(k), s, EnvName::parse)).transpose();
            let group =
                || get("environmentGroup").map(|s| parse(&field("environmentGroup"), s, GroupName::parse)).transpose();
            let action = match kind.as_str() {
                "release-train" => {
                    let target = match (env("environment")?, group()?) {
                        (Some(environment), _) => TrainTarget::Environment { environment },
                        (None, Some(group)) => TrainTarget::EnvironmentGroup { group },
                        (None, None) => return Err(bad(&at, "needs `environment` or `environmentGroup`")),
                    };
                    let train = ReleaseTrain {
                        target,
                        team: get("team").map(|s| parse(&field("team"), s, TeamName::parse)).transpose()?,
                        source_git_tag: get("sourceGitTag")
                            .map(|s| parse(&field("sourceGitTag"), s, TagName::parse))
                            .transpose()?,
                        source_commit: None,
                        git_tag: get("gitTag").map(|s| parse(&field("gitTag"), s, TagName::parse)).transpose()?,
                        minimize: false,
                    };
                    Action::Request { request: Box::new(Request::ReleaseTrain(train)) }
                }
                "deploy" => {
                    let application =
                        parse(&field("application"), get("application").unwrap_or_default(), AppName::parse)?;
                    let environment = env("environment")?.ok_or_else(|| bad(&at, "needs `environment`"))?;
                    let lock_behavior = match get("lockBehavior") {
                        None | Some("fail") => LockBehavior::Fail,
                        Some("queue") => LockBehavior::Queue,
                        Some("ignore") => LockBehavior::Ignore,
                        Some(other) => {
                            return Err(bad(field("lockBehavior"), format!("`{other}`: fail, queue or ignore")))
                        }
                    };
                    let node = inputs.release_node_overrides.get(&application);
                    let version = node.and_then(|n| n.version).map(Ok).or_else(|| {
                        node.is_none()
                            .then(|| get("version").map(|s| parse(&field("version"), s, Version::parse)))
                            .flatten()
                    });
                    let candidate = node
                        .and_then(|n| n.release_candidate.clone())
                        .or_else(|| node.is_none().then(|| get("releaseCandidate").map(str::to_owned)).flatten());
                    match (version.transpose()?, candidate) {
                        (Some(version), _) => Action::Request {
                            request: Box::new(Request::Deploy(Deploy {
                                environment,
                                application,
                                version,
                                lock_behavior,
                            })),
                        },
                        (None, Some(release_candidate_version)) => Action::DeployCandidate {
                            application,
                            environment,
                            release_candidate_version,
                            lock_behavior,
                        },
                        (None, None) => return Err(bad(&at, "needs `version` or `releaseCandidate`")),
                    }
                }
                "lock" | "unlock" => {
                    let lock_id = parse(&field("lockId"), get("lockId").unwrap_or_default(), LockId::parse)?;
                    let target = match (env("environment")?, group()?) {
                        (Some(environment), _) => match (get("application"), get("team")) {
                            (Some(a), _) => LockTarget::Application {
                                environment,
                                application: parse(&field("application"), a, AppName::parse)?,
                            },
                            (None, Some(t)) => {
                                LockTarget::Team { environment, team: parse(&field("team"), t, TeamName::parse)? }
                            }
                            (None, None) => LockTarget::Environment { environment },
                        },
                        (None, Some(group)) => LockTarget::EnvironmentGroup { group },
                        (None, None) => return Err(bad(&at, "needs `environment` or `environmentGroup`")),
                    };
                    let request = if kind == "lock" {
                        Request::CreateLock(CreateLock {
                            target,
                            lock_id,
                            message: get("message").unwrap_or_default().to_owned(),
                        })
                    } else {
                        Request::DeleteLock(DeleteLock { target, lock_id })
                    };
                    Action::Request { request: Box::new(request) }
                }
                _ => Action::Tag { tag: parse(&field("tag"), get("tag").unwrap_or_default(), TagName::parse)? },
            };
            out.push(Step { step_ref, kind, action });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"steps": [
            {"ref": "freeze", "kind": "lock", "environment": "${args.TARGET:-prod}", "lockId": "flow", "message": "release ${args.RELEASE}"},
            {"ref": "train", "kind": "release-train", "environment": "${args.TARGET:-prod}", "team": "${args.TEAM}"},
            {"ref": "mark", "kind": "tag", "tag": "release-${args.RELEASE}"},
            {"ref": "thaw", "kind": "unlock", "environment": "${args.TARGET:-prod}", "lockId": "flow"}
        ]})
    }

    fn err(v: Value) -> String {
        Template::validate(&v).unwrap_err().to_string()
    }

    #[test]
    fn validation_names_the_place() {
        assert!(err(json!({"steps": [{"kind": "tag", "tag": "x"}]})).contains("steps[0]: `ref` is required"));
        assert!(err(
            json!({"steps": [{"ref": "a", "kind": "tag", "tag": "x"}, {"ref": "a", "kind": "tag", "tag": "y"}]})
        )
        .contains("steps[1].ref: `a` is used by an earlier step"));
        assert!(err(json!({"steps": [{"ref": "a", "kind": "launch"}]}))
            .contains("steps[0] (a).kind: unknown step kind `launch`"));
        assert!(err(json!({"steps": [{"ref": "a", "kind": "tag", "tag": "${env.X}"}]})).contains("steps[0] (a).tag"));
        assert!(err(json!({"steps": [{"ref": "a", "kind": "tag", "tag": "${args.X"}]})).contains("not closed"));
        assert!(err(json!({"steps": [{"ref": "a", "kind": "deploy", "application": "web", "environment": "dev"}]}))
            .contains("exactly one of `version` and `releaseCandidate`"));
        assert!(err(json!({"steps": [{"ref": "a", "kind": "tag", "tag": "x", "colour": "red"}]}))
            .contains("steps[0] (a).colour"));
        assert!(err(json!({"steps": []})).contains("at least one step"));
        assert!(err(json!({"steps": [], "extra": 1})).contains("extra"));
    }

    #[test]
    fn resolves_arguments_defaults_overrides_and_node_overrides() {
        let t = Template::validate(&template()).unwrap();
        let back = Template::from_yaml("x", &t.to_yaml()).unwrap();
        assert_eq!(back, t, "YAML round trip");
        let missing = t.resolve(&RunInputs::default()).unwrap_err().to_string();
        assert!(missing.contains("steps[0] (freeze).message: `${args.RELEASE}` has no value"), "{missing}");
        let mut inputs = RunInputs::default();
        inputs.arguments.insert("RELEASE".into(), "42".into());
        inputs.arguments.insert("TEAM".into(), "payments".into());
        let steps = t.resolve(&inputs).unwrap();
        let Action::Request { request } = &steps[1].action else { panic!() };
        let Request::ReleaseTrain(train) = request.as_ref() else { panic!() };
        assert_eq!(train.target, TrainTarget::Environment { environment: EnvName::parse("prod").unwrap() });
        assert_eq!(train.team.as_ref().map(|t| t.as_str()), Some("payments"));
        assert_eq!(steps[2].action, Action::Tag { tag: TagName::parse("release-42").unwrap() });
        inputs.overrides.insert("train".into(), BTreeMap::from([("environment".into(), "qa".into())]));
        let steps = t.resolve(&inputs).unwrap();
        let Action::Request { request } = &steps[1].action else { panic!() };
        assert!(
            matches!(request.as_ref(), Request::ReleaseTrain(t) if t.target == TrainTarget::Environment { environment: EnvName::parse("qa").unwrap() })
        );
        inputs.overrides.insert("nope".into(), BTreeMap::new());
        assert!(t.resolve(&inputs).unwrap_err().to_string().contains("overrides.nope"));
    }
}
