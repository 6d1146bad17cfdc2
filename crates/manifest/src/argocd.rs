//! Argo CD: an environment's `argocd` settings (Kuberpult's fields), how they are checked, the names of the objects
//! made from them, and the objects themselves: one `AppProject` per environment and one `Application` per
//! application deployed there. Pure functions of their inputs; `transform::argocd` decides when to run them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::names::{AppName, EnvName, TeamName};

/// Where Argo CD runs when the settings do not say: the namespace of its control plane.
pub const DEFAULT_NAMESPACE: &str = "argocd";
/// The finalizer that makes Argo CD delete an Application's resources with it.
pub const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
/// Annotation and label keys Railyard sets on every Application (callers may not set them themselves).
pub const RESERVED_PREFIX: &str = "railyard.dev/";
pub const MANIFEST_GENERATE_PATHS: &str = "argocd.argoproj.io/manifest-generate-paths";
const API_VERSION: &str = "argoproj.io/v1alpha1";

/// An environment's `argocd` block, as stored in `environments/<env>/config.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgoCd {
    #[serde(default)]
    pub destination: Destination,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_windows: Vec<SyncWindow>,
    /// The AppProject's `clusterResourceWhitelist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_list: Vec<AccessEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub application_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<IgnoreDifference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
}

/// The cluster (by `name` or by `server`, not both) and namespaces the environment deploys to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The namespace the Applications deploy into (none: the namespaces the manifests name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Where the AppProject lives (default `argocd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_project_namespace: Option<String>,
    /// Where the Applications live (default: the AppProject's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_namespace: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// `allow` or `deny`.
    pub kind: String,
    /// A cron schedule (five fields, or a descriptor such as `@daily`).
    pub schedule: String,
    /// A Go duration (`1h`, `30m`, `1h30m`).
    pub duration: String,
    /// Application name patterns the window applies to (none: every Application of the environment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual_sync: bool,
}

/// A cluster-scoped resource kind the environment's Applications may manage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(default)]
    pub group: String,
    pub kind: String,
}

/// Argo CD's `ResourceIgnoreDifferences`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreDifference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields_managers: Vec<String>,
}

/// The fields each object of the block may have: a typo is refused by name rather than silently dropped.
const FIELDS: &[(&str, &[&str])] = &[
    (
        "argocd",
        &["destination", "syncWindows", "accessList", "applicationAnnotations", "ignoreDifferences", "syncOptions"],
    ),
    ("destination", &["name", "server", "namespace", "appProjectNamespace", "applicationNamespace"]),
    ("syncWindows", &["kind", "schedule", "duration", "applications", "manualSync"]),
    ("accessList", &["group", "kind"]),
    (
        "ignoreDifferences",
        &["group", "kind", "name", "namespace", "jsonPointers", "jqPathExpressions", "managedFieldsManagers"],
    ),
];

fn known_fields(path: &str, section: &str, v: &Value) -> Result<()> {
    let Some(obj) = v.as_object() else { return Ok(()) };
    let allowed = FIELDS.iter().find(|(s, _)| *s == section).map_or(&[][..], |(_, f)| *f);
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Error::invalid(
            format!("{path}.{k}"),
            format!("{path}.{k} is not a field of {path} (known: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

impl ArgoCd {
    /// Reads and checks an `argocd` block from a request (Kuberpult's empty strings count as absent).
    pub fn parse(v: &Value) -> Result<Self> {
        if !v.is_object() {
            return Err(Error::invalid("argocd", "argocd must be an object"));
        }
        known_fields("argocd", "argocd", v)?;
        if let Some(d) = v.get("destination") {
            known_fields("argocd.destination", "destination", d)?;
        }
        for list in ["syncWindows", "accessList", "ignoreDifferences"] {
            if let Some(items) = v.get(list).and_then(Value::as_array) {
                for (i, item) in items.iter().enumerate() {
                    known_fields(&format!("argocd.{list}[{i}]"), list, item)?;
                }
            }
        }
        let mut cfg: ArgoCd =
            serde_json::from_value(v.clone()).map_err(|e| Error::invalid("argocd", format!("argocd: {e}")))?;
        let d = &mut cfg.destination;
        for field in
            [&mut d.name, &mut d.server, &mut d.namespace, &mut d.app_project_namespace, &mut d.application_namespace]
        {
            if field.as_deref().is_some_and(str::is_empty) {
                *field = None;
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every field; the error names the first bad one (`argocd.syncWindows[0].kind`).
    pub fn validate(&self) -> Result<()> {
        let d = &self.destination;
        match (&d.name, &d.server) {
            (None, None) => {
                return Err(Error::invalid(
                    "argocd.destination",
                    "argocd.destination needs the cluster's name or its server URL",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "argocd.destination",
                    "argocd.destination takes either name or server, not both",
                ))
            }
            (Some(name), None) => {
                if name.len() > 253 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(Error::invalid(
                        "argocd.destination.name",
                        format!("argocd.destination.name {name:?} is not a cluster name"),
                    ));
                }
            }
            (None, Some(server)) => {
                let ok = (server.starts_with("https://") || server.starts_with("http://"))
                    && server.len() <= 2048
                    && !server.chars().any(|c| c.is_whitespace() || c.is_control());
                if !ok {
                    return Err(Error::invalid(
                        "argocd.destination.server",
                        format!("argocd.destination.server {server:?} must be an http(s) URL"),
                    ));
                }
            }
        }
        for (field, ns) in [
            ("argocd.destination.namespace", &d.namespace),
            ("argocd.destination.appProjectNamespace", &d.app_project_namespace),
            ("argocd.destination.applicationNamespace", &d.application_namespace),
        ] {
            if let Some(ns) = ns {
                if !is_dns_label(ns) {
                    return Err(Error::invalid(
                        field,
                        format!("{field} {ns:?} is not a Kubernetes namespace name (a DNS-1123 label)"),
                    ));
                }
            }
        }
        for (i, w) in self.sync_windows.iter().enumerate() {
            let at = |f: &str| format!("argocd.syncWindows[{i}].{f}");
            if !matches!(w.kind.as_str(), "allow" | "deny") {
                return Err(Error::invalid(
                    at("kind"),
                    format!("{} must be allow or deny, not {:?}", at("kind"), w.kind),
                ));
            }
            if let Err(why) = check_schedule(&w.schedule) {
                return Err(Error::invalid(
                    at("schedule"),
                    format!("{} {:?} is not a cron schedule: {why}", at("schedule"), w.schedule),
                ));
            }
            if !is_duration(&w.duration) {
                return Err(Error::invalid(
                    at("duration"),
                    format!("{} {:?} must be a positive duration such as 1h or 30m", at("duration"), w.duration),
                ));
            }
            if w.applications.iter().any(|a| a.is_empty() || a.chars().any(char::is_whitespace)) {
                return Err(Error::invalid(
                    at("applications"),
                    format!("{} must be application name patterns without spaces", at("applications")),
                ));
            }
        }
        for (i, a) in self.access_list.iter().enumerate() {
            if !is_kind(&a.kind) {
                let f = format!("argocd.accessList[{i}].kind");
                return Err(Error::invalid(f.clone(), format!("{f} {:?} is not a resource kind", a.kind)));
            }
            if !is_group(&a.group) {
                let f = format!("argocd.accessList[{i}].group");
                return Err(Error::invalid(f.clone(), format!("{f} {:?} is not an API group", a.group)));
            }
        }
        for (key, value) in &self.application_annotations {
            let f = format!("argocd.applicationAnnotations.{key}");
            if !is_annotation_key(key) {
                return Err(Error::invalid(f.clone(), format!("{f}: {key:?} is not a Kubernetes annotation key")));
            }
            if key.starts_with(RESERVED_PREFIX) || key == MANIFEST_GENERATE_PATHS {
                return Err(Error::invalid(f.clone(), format!("{f}: Railyard sets {key:?} itself")));
            }
            if value.len() > 65536 {
                return Err(Error::invalid(f.clone(), format!("{f}: the value is longer than 64 KiB")));
            }
        }
        for (i, d) in self.ignore_differences.iter().enumerate() {
            let f = |x: &str| format!("argocd.ignoreDifferences[{i}].{x}");
            if !is_kind(&d.kind) {
                return Err(Error::invalid(f("kind"), format!("{} {:?} is not a resource kind", f("kind"), d.kind)));
            }
            if d.group.as_deref().is_some_and(|g| !is_group(g)) {
                return Err(Error::invalid(f("group"), format!("{} is not an API group", f("group"))));
            }
            if d.json_pointers.iter().any(|p| !p.starts_with('/')) {
                return Err(Error::invalid(f("jsonPointers"), format!("{} must each start with /", f("jsonPointers"))));
            }
            if d.jq_path_expressions.iter().chain(&d.managed_fields_managers).any(|s| s.trim().is_empty()) {
                return Err(Error::invalid(f("jqPathExpressions"), format!("{} may not hold empty strings", f(""))));
            }
        }
        for (i, o) in self.sync_options.iter().enumerate() {
            let ok = o.split_once('=').is_some_and(|(k, v)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric()) && !v.is_empty() && !v.contains(' ')
            });
            if !ok {
                let f = format!("argocd.syncOptions[{i}]");
                return Err(Error::invalid(
                    f.clone(),
                    format!("{f} {o:?} must look like Name=value (e.g. CreateNamespace=true)"),
                ));
            }
        }
        Ok(())
    }

    fn project_namespace(&self) -> &str {
        self.destination.app_project_namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    fn application_namespace(&self) -> &str {
        self.destination.application_namespace.as_deref().unwrap_or_else(|| self.project_namespace())
    }

    /// The cluster part of a destination: `name` or `server`.
    fn cluster(&self, into: &mut Map<String, Value>) {
        if let Some(n) = &self.destination.name {
            into.insert("name".into(), json!(n));
        }
        if let Some(s) = &self.destination.server {
            into.insert("server".into(), json!(s));
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_dns_part(s)
}

fn is_dns_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain as Kubernetes checks an object name: dot-separated parts of `[a-z0-9-]` that start and end
/// with a letter or digit, at most 253 characters in all.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_part)
}

fn is_kind(s: &str) -> bool {
    s == "*" || (s.starts_with(|c: char| c.is_ascii_alphabetic()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn is_group(s: &str) -> bool {
    s.is_empty() || s == "*" || is_dns_subdomain(s)
}

fn is_annotation_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    name_ok && prefix.is_none_or(is_dns_subdomain)
}

/// A Go duration (`time.ParseDuration`) greater than zero: numbers with units `ns us µs ms s m h`.
fn is_duration(s: &str) -> bool {
    let mut rest = s;
    let mut positive = false;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let Ok(n) = num.parse::<f64>() else { return false };
        let Some(unit) =
            ["ns", "us", "µs", "ms", "s", "m", "h"].iter().filter(|u| tail.starts_with(**u)).max_by_key(|u| u.len())
        else {
            return false;
        };
        positive |= n > 0.0;
        rest = &tail[unit.len()..];
    }
    positive
}

/// Checks a cron schedule as Argo CD reads it (robfig/cron: five fields, or a descriptor).
fn check_schedule(s: &str) -> std::result::Result<(), String> {
    const DESCRIPTORS: &[&str] = &["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];
    const MONTHS: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let s = s.trim();
    if let Some(every) = s.strip_prefix("@every ") {
        return if is_duration(every.trim()) { Ok(()) } else { Err(format!("{every:?} is not a duration")) };
    }
    if s.starts_with('@') {
        return if DESCRIPTORS.contains(&s) { Ok(()) } else { Err(format!("unknown descriptor {s}")) };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("it has {} fields; minute hour day-of-month month day-of-week are 5", fields.len()));
    }
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, MONTHS, 1),
        ("day of week", 0, 6, DAYS, 0),
    ];
    for (field, (what, min, max, names, first)) in fields.iter().zip(specs) {
        let value = |v: &str| -> std::result::Result<u32, String> {
            let n = match names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
                Some(i) => i as u32 + first,
                None => v.parse::<u32>().map_err(|_| format!("{v:?} is not a {what}"))?,
            };
            if n < min || n > max {
                return Err(format!("{what} {n} is outside {min}-{max}"));
            }
            Ok(n)
        };
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, st)) => (r, Some(st)),
                None => (item, None),
            };
            if let Some(st) = step {
                if st.parse::<u32>().map_or(true, |n| n == 0) {
                    return Err(format!("step {st:?} of the {what} is not a positive number"));
                }
            }
            let wildcard = range == "*" || (range == "?" && (what == "day of month" || what == "day of week"));
            if wildcard {
                continue;
            }
            match range.split_once('-') {
                Some((a, b)) => {
                    if value(a)? > value(b)? {
                        return Err(format!("the {what} range {range} runs backwards"));
                    }
                }
                None => {
                    value(range)?;
                }
            }
        }
    }
    Ok(())
}

/// The stem of an environment's Argo CD object names: its name with the folder's `/` as `-` (`review/fix-a` →
/// `review-fix-a`). Two environments with the same stem are refused at creation.
pub fn name_stem(env: &EnvName) -> String {
    env.as_str().replace('/', "-")
}

/// The AppProject of `env`.
pub fn project_name(env: &EnvName) -> String {
    name_stem(env)
}

/// The Application of `app` in `env`: `<stem>-<app>`, refused if Kubernetes would not take it.
pub fn application_name(env: &EnvName, app: &AppName) -> Result<String> {
    let name = format!("{}-{app}", name_stem(env));
    if !is_dns_subdomain(&name) {
        return Err(Error::invalid(
            "name",
            format!("the Argo CD Application name {name:?} of {app} in {env} is not a Kubernetes name (DNS-1123, at most 253 characters)"),
        ));
    }
    Ok(name)
}

/// Where Argo CD reads the manifest repo: the URL and the branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    pub target_revision: String,
}

/// One application deployed in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub application: AppName,
    pub team: Option<TeamName>,
}

/// The AppProject of `env`.
pub fn app_project(env: &EnvName, cfg: &ArgoCd, source: &Source) -> Value {
    let mut destination = Map::new();
    cfg.cluster(&mut destination);
    destination.insert("namespace".into(), json!(cfg.destination.namespace.as_deref().unwrap_or("*")));
    let mut spec = Map::new();
    spec.insert("description".into(), json!(format!("Railyard environment {env}")));
    spec.insert("destinations".into(), json!([destination]));
    spec.insert("sourceRepos".into(), json!([source.repo_url]));
    if cfg.application_namespace() != cfg.project_namespace() {
        // Applications outside the control plane's namespace need their project to allow it.
        spec.insert("sourceNamespaces".into(), json!([cfg.application_namespace()]));
    }
    if !cfg.sync_windows.is_empty() {
        let windows: Vec<Value> = cfg
            .sync_windows
            .iter()
            .map(|w| {
                let apps = if w.applications.is_empty() { vec!["*".to_owned()] } else { w.applications.clone() };
                json!({
                    "kind": w.kind,
                    "schedule": w.schedule,
                    "duration": w.duration,
                    "applications": apps,
                    "manualSync": w.manual_sync,
                })
            })
            .collect();
        spec.insert("syncWindows".into(), json!(windows));
    }
    if !cfg.access_list.is_empty() {
        spec.insert("clusterResourceWhitelist".into(), json!(cfg.access_list));
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "AppProject",
        "metadata": {
            "name": project_name(env),
            "namespace": cfg.project_namespace(),
            "annotations": { "railyard.dev/environment": env },
        },
        "spec": spec,
    })
}

/// The Application of one deployed app.
pub fn application(env: &EnvName, cfg: &ArgoCd, source: &Source, app: &Deployed) -> Result<Value> {
    let path = crate::layout::env_app_manifests_dir(env, &app.application);
    let mut annotations: Map<String, Value> =
        cfg.application_annotations.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    annotations.insert(MANIFEST_GENERATE_PATHS.into(), json!(format!("/{path}")));
    annotations.insert("railyard.dev/environment".into(), json!(env));
    annotations.insert("railyard.dev/application".into(), json!(app.application));
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(application_name(env, &app.application)?));
    metadata.insert("namespace".into(), json!(cfg.application_namespace()));
    if let Some(team) = &app.team {
        annotations.insert("railyard.dev/team".into(), json!(team));
        metadata.insert("labels".into(), json!({ "railyard.dev/team": team }));
    }
    metadata.insert("annotations".into(), Value::Object(annotations));
    metadata.insert("finalizers".into(), json!([FINALIZER]));
    let mut destination = Map::new();
    cfg.cluster(&mut destination);
    if let Some(ns) = &cfg.destination.namespace {
        destination.insert("namespace".into(), json!(ns));
    }
    let mut sync_policy = Map::new();
    sync_policy.insert("automated".into(), json!({ "prune": true, "selfHeal": true }));
    if !cfg.sync_options.is_empty() {
        sync_policy.insert("syncOptions".into(), json!(cfg.sync_options));
    }
    let mut spec = Map::new();
    spec.insert("project".into(), json!(project_name(env)));
    spec.insert(
        "source".into(),
        json!({ "repoURL": source.repo_url, "path": path, "targetRevision": source.target_revision }),
    );
    spec.insert("destination".into(), Value::Object(destination));
    spec.insert("syncPolicy".into(), Value::Object(sync_policy));
    if !cfg.ignore_differences.is_empty() {
        spec.insert("ignoreDifferences".into(), json!(cfg.ignore_differences));
    }
    Ok(json!({ "apiVersion": API_VERSION, "kind": "Application", "metadata": metadata, "spec": spec }))
}

/// Every object of `env`: the AppProject, then one Application per deployed app in the order given.
pub fn objects(env: &EnvName, cfg: &ArgoCd, source: &Source, apps: &[Deployed]) -> Result<Vec<Value>> {
    let mut out = vec![app_project(env, cfg, source)];
    for app in apps {
        out.push(application(env, cfg, source, app)?);
    }
    Ok(out)
}

/// `objects` as the YAML stream of `argocd/v1alpha1/<env>.yaml`.
pub fn render(env: &EnvName, objects: &[Value]) -> Result<String> {
    let mut out = format!(
        "# Generated by Railyard from environments/{env}/config.json and the applications deployed there; do not edit.\n"
    );
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(o).map_err(|e| Error::invalid("argocd", e.to_string()))?);
    }
    Ok(out)
}

/// Reads the objects back from a file `render` wrote.
pub fn parse_stream(text: &str) -> std::result::Result<Vec<Value>, serde_yaml::Error> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ArgoCd> {
        ArgoCd::parse(&v)
    }

    fn field_of(r: Result<ArgoCd>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field.into_owned(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn kuberpult_config_with_empty_strings_reads() {
        let cfg =
            parse(json!({"destination": {"name": "", "server": "https://k8s.example", "namespace": "web"}})).unwrap();
        assert_eq!(cfg.destination.name, None);
        assert_eq!(cfg.destination.server.as_deref(), Some("https://k8s.example"));
    }

    #[test]
    fn bad_fields_are_named() {
        let d = json!({"name": "prod-cluster"});
        assert_eq!(field_of(parse(json!({}))), "argocd.destination");
        assert_eq!(field_of(parse(json!({"destination": {"name": "a", "server": "https://b"}}))), "argocd.destination");
        assert_eq!(field_of(parse(json!({"destination": {"server": "k8s"}}))), "argocd.destination.server");
        assert_eq!(field_of(parse(json!({"destination": d, "syncWindow": []}))), "argocd.syncWindow");
        assert_eq!(
            field_of(parse(json!({"destination": {"name": "x", "namespace": "Bad_NS"}}))),
            "argocd.destination.namespace"
        );
        let w = |k: &str, s: &str, dur: &str| json!({"destination": d, "syncWindows": [{"kind": k, "schedule": s, "duration": dur}]});
        assert_eq!(field_of(parse(w("maybe", "0 22 * * *", "1h"))), "argocd.syncWindows[0].kind");
        assert_eq!(field_of(parse(w("deny", "0 25 * * *", "1h"))), "argocd.syncWindows[0].schedule");
        assert_eq!(field_of(parse(w("deny", "every night", "1h"))), "argocd.syncWindows[0].schedule");
        assert_eq!(field_of(parse(w("deny", "0 22 * * *", "an hour"))), "argocd.syncWindows[0].duration");
        assert_eq!(field_of(parse(w("deny", "0 22 * * *", "0s"))), "argocd.syncWindows[0].duration");
        for ok in ["0 22 * * *", "*/15 9-17 * * MON-FRI", "0 0 1 JAN,JUL ?", "@daily", "@every 2h"] {
            parse(w("allow", ok, "1h30m")).unwrap();
        }
        assert_eq!(
            field_of(parse(json!({"destination": d, "accessList": [{"group": "", "kind": "Name Space"}]}))),
            "argocd.accessList[0].kind"
        );
        assert_eq!(
            field_of(parse(json!({"destination": d, "applicationAnnotations": {"railyard.dev/team": "x"}}))),
            "argocd.applicationAnnotations.railyard.dev/team"
        );
        assert_eq!(
            field_of(parse(
                json!({"destination": d, "ignoreDifferences": [{"kind": "Deployment", "jsonPointers": ["spec"]}]})
            )),
            "argocd.ignoreDifferences[0].jsonPointers"
        );
        assert_eq!(
            field_of(parse(json!({"destination": d, "syncOptions": ["CreateNamespace"]}))),
            "argocd.syncOptions[0]"
        );
    }

    #[test]
    fn longest_names_are_kubernetes_names() {
        let env = EnvName::parse(&format!("{}/{}", "a".repeat(63), "b".repeat(63))).unwrap();
        let app = AppName::parse(&"c".repeat(39)).unwrap();
        let name = application_name(&env, &app).unwrap();
        assert_eq!(name.len(), 63 + 1 + 63 + 1 + 39);
        assert!(name.starts_with("aaa") && name.contains("a-b"));
    }

    #[test]
    fn objects_render_deterministically_and_read_back() {
        let env = EnvName::parse("review/fix-a").unwrap();
        let cfg = parse(json!({
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web", "applicationNamespace": "apps"},
            "applicationAnnotations": {"notifications.argoproj.io/subscribe.on-sync-succeeded.slack": "deploys"},
            "syncOptions": ["CreateNamespace=true"],
        }))
        .unwrap();
        let source = Source { repo_url: "https://git.example/manifests.git".into(), target_revision: "main".into() };
        let apps = vec![Deployed {
            application: AppName::parse("web").unwrap(),
            team: Some(TeamName::parse("core").unwrap()),
        }];
        let objs = objects(&env, &cfg, &source, &apps).unwrap();
        let text = render(&env, &objs).unwrap();
        assert_eq!(text, render(&env, &objects(&env, &cfg, &source, &apps).unwrap()).unwrap());
        assert_eq!(parse_stream(&text).unwrap(), objs);
        let app = &objs[1];
        assert_eq!(app["metadata"]["name"], "review-fix-a-web");
        assert_eq!(app["metadata"]["namespace"], "apps");
        assert_eq!(app["spec"]["source"]["path"], "environments/review/fix-a/applications/web/manifests");
        assert_eq!(
            app["metadata"]["annotations"][MANIFEST_GENERATE_PATHS],
            "/environments/review/fix-a/applications/web/manifests"
        );
        assert_eq!(objs[0]["spec"]["sourceNamespaces"], json!(["apps"]));
        assert_eq!(objs[0]["metadata"]["namespace"], "argocd");
    }
}
