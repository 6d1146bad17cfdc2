//! Generated Argo CD objects: `argocd/v1alpha1/<env>.yaml` on the remote, checked against Argo CD's own CRD schemas
//! (npm `@kubernetes-models/argo-cd`, installed with `npm ci` in tests/clients/argocd by the test or .ci/run), for
//! environments with and without each optional setting and from each surface (native, Kuberpult, GitLab); the
//! commits that change the file and those that must not; a 1,000-app train; the read-back endpoint and the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Oid, Repository};
use railyard_tests::{multipart_body, repogen, Server};
use serde_json::{json, Value};

const REPO_URL: &str = "https://git.example/platform/manifests.git";

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients").join("argocd")
}

fn ensure_installed() {
    railyard_tests::npm_ci_once(&client_dir(), "@kubernetes-models/argo-cd");
}

/// Runs Argo CD's schemas over the files; returns `(kind, name)` of every object, failing on any invalid one.
fn validate(files: &[PathBuf]) -> Vec<(String, String)> {
    ensure_installed();
    let out = Command::new("node").arg(client_dir().join("validate.mjs")).args(files).output().expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schema check failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(stdout.trim()).expect("summary");
    v["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| (o["kind"].as_str().unwrap_or("").to_owned(), o["name"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn server() -> Server {
    Server::start_with(&["--argocd-repo-url", REPO_URL, "--branch", "main"])
}

fn argocd_file(env: &str) -> String {
    format!("argocd/v1alpha1/{env}.yaml")
}

/// The paths `commit` changed against its first parent, in the remote repo.
fn changed_paths(repo_dir: &Path, commit: &str) -> Vec<String> {
    let repo = Repository::open_bare(repo_dir).expect("repo");
    let c = repo.find_commit(Oid::from_str(commit).expect("sha")).expect("commit");
    let parent = c.parent(0).ok().map(|p| p.tree().expect("tree"));
    let diff = repo.diff_tree_to_tree(parent.as_ref(), Some(&c.tree().expect("tree")), None).expect("diff");
    diff.deltas().filter_map(|d| d.new_file().path().or(d.old_file().path()).map(|p| p.display().to_string())).collect()
}

fn yaml_docs(text: &str) -> Vec<Value> {
    text.split("\n---\n").skip(1).map(|doc| serde_yaml::from_str::<Value>(doc).expect("yaml doc")).collect()
}

fn all_settings() -> Value {
    json!({
        "destination": {
            "name": "prod-eu",
            "namespace": "shop",
            "appProjectNamespace": "argocd",
            "applicationNamespace": "argocd-apps"
        },
        "syncWindows": [
            {"kind": "deny", "schedule": "0 22 * * *", "duration": "8h", "applications": ["*"], "manualSync": true},
            {"kind": "allow", "schedule": "*/30 9-17 * * MON-FRI", "duration": "1h30m"}
        ],
        "accessList": [{"group": "", "kind": "Namespace"}, {"group": "rbac.authorization.k8s.io", "kind": "ClusterRole"}],
        "applicationAnnotations": {"notifications.argoproj.io/subscribe.on-sync-failed.slack": "shop-deploys"},
        "ignoreDifferences": [
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},
            {"kind": "ConfigMap", "name": "generated", "jqPathExpressions": [".data.stamp"]}
        ],
        "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]
    })
}

#[test]
fn generated_objects_pass_argo_cds_schemas_with_and_without_each_optional_setting() {
    let s = server();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    let server_only = json!({"destination": {"server": "https://kubernetes.default.svc"}});
    let mut envs: Vec<(String, Value)> = vec![
        ("minimal".into(), server_only.clone()),
        ("named".into(), json!({"destination": {"name": "in-cluster", "namespace": "web"}})),
        ("everything".into(), all_settings()),
        (
            "review/fix-a".into(),
            json!({"destination": {"server": "https://kubernetes.default.svc", "namespace": "review-fix-a"}}),
        ),
    ];
    for key in ["syncWindows", "accessList", "applicationAnnotations", "ignoreDifferences", "syncOptions"] {
        let mut settings = server_only.clone();
        settings[key] = all_settings()[key].clone();
        envs.push((format!("only-{}", key.to_lowercase()), settings));
    }
    for (name, settings) in &envs {
        let r = s.post_json(
            "/api/environments",
            &json!({"name": name, "upstream": {"environment": "dev"}, "argocd": settings}),
        );
        r.assert_status(201);
        assert_eq!(r.json["argocd"]["destination"], settings["destination"], "{}", r.text);
    }
    // Kuberpult's multipart EnvironmentConfig (with its empty strings) and GitLab's surface take the block too.
    let kuberpult = json!({"upstream": {"environment": "dev"}, "argocd": {"destination": {"name": "", "server": "https://kubernetes.default.svc", "namespace": "kp"}, "syncWindows": [{"kind": "allow", "schedule": "0 6 * * *", "duration": "12h", "applications": ["kuberpult-*"]}]}});
    let (ct, body) = multipart_body(&[("config", kuberpult.to_string().as_bytes())]);
    s.send_raw_body("POST", "/api/environments/kuberpult/", &ct, body).assert_status(201);
    s.post_json("/api/v4/projects/1/environments", &json!({"name": "gitlab", "argocd": server_only}))
        .assert_status(201);
    envs.push(("kuberpult".into(), json!({})));
    envs.push(("gitlab".into(), json!({})));

    let manifests: Vec<(&str, &str)> = std::iter::once("dev")
        .chain(envs.iter().map(|(e, _)| e.as_str()))
        .map(|e| (e, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"))
        .collect();
    s.release("web", None, &manifests).assert_status(201);
    s.release("api", None, &manifests).assert_status(201);
    for (env, _) in &envs {
        let path = format!("/api/environments/{}/applications/web/deploy", env.replace('/', "%2F"));
        s.put_json(&path, &json!({"version": 1})).assert_status(200);
    }
    s.wait_exported();
    s.assert_remote_layout();
    assert_eq!(s.remote_file(&argocd_file("dev")), None, "an environment without settings gets no file");

    let dir = tempfile::tempdir().expect("dir");
    let mut files = Vec::new();
    for (env, _) in &envs {
        let text = s.remote_file(&argocd_file(env)).unwrap_or_else(|| panic!("no Argo CD file for {env}"));
        let file = dir.path().join(format!("{}.yaml", env.replace('/', "-")));
        std::fs::write(&file, text).expect("write");
        files.push(file);
    }
    let objects = validate(&files);
    assert_eq!(objects.len(), envs.len() * 2, "{objects:?}");
    for (env, _) in &envs {
        let stem = env.replace('/', "-");
        assert!(objects.contains(&("AppProject".into(), stem.clone())), "{objects:?}");
        assert!(objects.contains(&("Application".into(), format!("{stem}-web"))), "{objects:?}");
    }

    // What the objects say, in the environment with every setting.
    let docs = yaml_docs(&s.remote_file(&argocd_file("everything")).expect("file"));
    let (project, app) = (&docs[0], &docs[1]);
    assert_eq!(project["metadata"]["namespace"], "argocd");
    assert_eq!(project["spec"]["sourceRepos"], json!([REPO_URL]));
    assert_eq!(project["spec"]["destinations"], json!([{"name": "prod-eu", "namespace": "shop"}]));
    assert_eq!(project["spec"]["sourceNamespaces"], json!(["argocd-apps"]));
    assert_eq!(project["spec"]["syncWindows"][0]["manualSync"], true);
    assert_eq!(project["spec"]["syncWindows"][1]["applications"], json!(["*"]));
    assert_eq!(project["spec"]["clusterResourceWhitelist"], all_settings()["accessList"]);
    assert_eq!(app["metadata"]["name"], "everything-web");
    assert_eq!(app["metadata"]["namespace"], "argocd-apps");
    assert_eq!(app["metadata"]["finalizers"], json!(["resources-finalizer.argocd.argoproj.io"]));
    assert_eq!(app["metadata"]["labels"], json!({"railyard.dev/team": "core"}));
    assert_eq!(
        app["metadata"]["annotations"],
        json!({
            "argocd.argoproj.io/manifest-generate-paths": "/environments/everything/applications/web/manifests",
            "notifications.argoproj.io/subscribe.on-sync-failed.slack": "shop-deploys",
            "railyard.dev/application": "web",
            "railyard.dev/environment": "everything",
            "railyard.dev/team": "core"
        })
    );
    assert_eq!(
        app["spec"],
        json!({
            "project": "everything",
            "source": {"repoURL": REPO_URL, "path": "environments/everything/applications/web/manifests", "targetRevision": "main"},
            "destination": {"name": "prod-eu", "namespace": "shop"},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]},
            "ignoreDifferences": all_settings()["ignoreDifferences"]
        })
    );
    let minimal = yaml_docs(&s.remote_file(&argocd_file("minimal")).expect("file"));
    assert_eq!(minimal[1]["spec"]["destination"], json!({"server": "https://kubernetes.default.svc"}));
    assert_eq!(minimal[1]["spec"]["syncPolicy"], json!({"automated": {"prune": true, "selfHeal": true}}));
    assert!(minimal[0]["spec"].get("syncWindows").is_none() && minimal[1]["spec"].get("ignoreDifferences").is_none());
    assert_eq!(minimal[0]["spec"]["destinations"][0]["namespace"], "*");

    // The read-back endpoint answers the same objects (by name or id), and the CLI prints them as YAML.
    let r = s.get("/api/environments/review%2Ffix-a/argocd");
    r.assert_status(200);
    assert_eq!(r.json["path"], "argocd/v1alpha1/review/fix-a.yaml");
    assert_eq!(r.json["objects"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.json["objects"][1]["metadata"]["name"], "review-fix-a-web");
    let id = s.get("/api/environments/everything").json["id"].clone();
    assert_eq!(s.get(&format!("/api/environments/{id}/argocd")).json["objects"][1], *app);
    s.get("/api/environments/dev/argocd").assert_error(404, "not_found", None);
    s.get("/api/environments/nope/argocd").assert_error(404, "not_found", None);
    let out = Command::new(railyard_tests::bin("railyard"))
        .args(["--url", &s.url, "envs", "argocd", "everything"])
        .output()
        .expect("railyard");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    let cli_file = dir.path().join("cli.yaml");
    std::fs::write(&cli_file, printed.as_bytes()).expect("write");
    assert_eq!(validate(&[cli_file]).len(), 2);
    assert_eq!(yaml_docs(&format!("\n{printed}"))[1], *app);
}

#[test]
fn settings_are_checked_on_write_and_bad_ones_name_the_field() {
    let s = server();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    s.wait_exported();
    let commits = s.remote_commit_count();
    let dest = json!({"server": "https://kubernetes.default.svc"});
    let window = |kind: &str, schedule: &str, duration: &str| json!({"destination": dest, "syncWindows": [{"kind": kind, "schedule": schedule, "duration": duration}]});
    for (settings, field) in [
        (window("sometimes", "0 22 * * *", "1h"), "argocd.syncWindows[0].kind"),
        (window("deny", "0 24 * * *", "1h"), "argocd.syncWindows[0].schedule"),
        (window("deny", "nightly", "1h"), "argocd.syncWindows[0].schedule"),
        (window("deny", "0 22 * * *", "8 hours"), "argocd.syncWindows[0].duration"),
        (json!({}), "argocd.destination"),
        (json!({"destination": {"name": "a", "server": "https://b"}}), "argocd.destination"),
        (json!({"destination": {"server": "kubernetes"}}), "argocd.destination.server"),
        (json!({"destination": dest, "syncOption": []}), "argocd.syncOption"),
        (json!({"destination": dest, "accessList": [{"kind": "Name space"}]}), "argocd.accessList[0].kind"),
        (json!({"destination": dest, "syncOptions": ["Prune"]}), "argocd.syncOptions[0]"),
        (
            json!({"destination": dest, "ignoreDifferences": [{"kind": "Deployment", "jsonPointers": ["spec"]}]}),
            "argocd.ignoreDifferences[0].jsonPointers",
        ),
        (
            json!({"destination": dest, "applicationAnnotations": {"railyard.dev/team": "x"}}),
            "argocd.applicationAnnotations.railyard.dev/team",
        ),
        (json!("in-cluster"), "argocd"),
    ] {
        let body = json!({"name": "staging", "argocd": settings});
        s.post_json("/api/environments", &body).assert_error(400, "invalid_input", Some(field));
        s.put_json("/api/environments/dev", &json!({"argocd": settings})).assert_error(
            400,
            "invalid_input",
            Some(field),
        );
    }
    let bad = json!({"upstream": {"latest": true}, "argocd": window("deny", "0 22 * * *", "forever")});
    let (ct, body) = multipart_body(&[("config", bad.to_string().as_bytes())]);
    s.send_raw_body("POST", "/api/environments/qa/", &ct, body).assert_error(
        400,
        "invalid_input",
        Some("argocd.syncWindows[0].duration"),
    );

    // Object names: `review/x` and `review-x` would share an AppProject; `a` + `b-c` and `a-b` + `c` an Application.
    let ok = |name: &str| json!({"name": name, "upstream": {"environment": "dev"}, "argocd": {"destination": dest}});
    s.post_json("/api/environments", &ok("review/x")).assert_status(201);
    s.post_json("/api/environments", &ok("review-x")).assert_error(409, "argocd_name_taken", None);
    s.post_json("/api/environments", &ok("shop")).assert_status(201);
    s.post_json("/api/environments", &ok("shop-eu")).assert_status(201);
    s.release("web", None, &[("dev", "kind: A\n")]).assert_status(201);
    s.release("eu-web", None, &[("dev", "kind: A\n")]).assert_error(409, "argocd_name_taken", None);
    s.wait_exported();
    assert_eq!(s.remote_commit_count(), commits + 4, "refusals write nothing");
    assert_eq!(s.remote_file("applications/eu-web/team"), None);
}

#[test]
fn the_file_changes_with_first_deploys_settings_and_deletion_and_not_with_redeploys() {
    let s = server();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    let settings = json!({"destination": {"server": "https://kubernetes.default.svc", "namespace": "web"}});
    let created = s.post_json("/api/environments", &json!({"name": "staging", "argocd": settings}));
    created.assert_status(201);
    let file = argocd_file("staging");
    s.wait_exported();
    let commit = created.commit().expect("commit");
    assert!(changed_paths(&s.remote_dir, &commit).contains(&file), "the settings' commit writes the file");
    assert_eq!(yaml_docs(&s.remote_file(&file).expect("file")).len(), 1, "only the AppProject");

    s.release("web", None, &[("dev", "a: 1\n"), ("staging", "a: 1\n")]).assert_status(201);
    s.wait_exported();
    assert_eq!(yaml_docs(&s.remote_file(&file).expect("file")).len(), 1, "a release is not a deploy to staging");
    let first = s.deploy("staging", "web", 1, "fail");
    first.assert_status(200);
    s.wait_exported();
    let first_commit = first.commit().expect("commit");
    assert!(changed_paths(&s.remote_dir, &first_commit).contains(&file), "the first deploy's commit writes it");
    let docs = yaml_docs(&s.remote_file(&file).expect("file"));
    assert_eq!(docs[1]["metadata"]["name"], "staging-web");
    let before = s.remote_file(&file);

    s.release("web", None, &[("dev", "a: 2\n"), ("staging", "a: 2\n")]).assert_status(201);
    let again = s.deploy("staging", "web", 2, "fail");
    again.assert_status(200);
    s.wait_exported();
    let paths = changed_paths(&s.remote_dir, &again.commit().expect("commit"));
    assert!(paths.contains(&"environments/staging/applications/web/version".to_owned()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with("argocd/")), "a redeploy leaves the file alone: {paths:?}");
    // a settings write that changes nothing for Argo CD changes no byte
    let same = s.put_json("/api/environments/staging", &json!({"argocd": settings, "tier": "testing"}));
    same.assert_status(200);
    s.wait_exported();
    assert!(!changed_paths(&s.remote_dir, &same.commit().expect("commit")).contains(&file));
    assert_eq!(s.remote_file(&file), before);

    // new settings rewrite it; removing them removes it; deleting the environment removes it too
    let mut more = settings.clone();
    more["syncOptions"] = json!(["CreateNamespace=true"]);
    s.put_json("/api/environments/staging", &json!({"argocd": more})).assert_status(200);
    s.wait_exported();
    assert!(s.remote_file(&file).expect("file").contains("CreateNamespace=true"));
    s.put_json("/api/environments/staging", &json!({"argocd": null})).assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file(&file), None);
    s.put_json("/api/environments/staging", &json!({"argocd": settings})).assert_status(200);
    s.wait_exported();
    assert_eq!(s.remote_file(&file), before, "the same settings give the same bytes");
    s.post_json("/api/environments/staging/stop", &json!({})).assert_status(200);
    s.delete("/api/environments/staging").assert_status(204);
    s.wait_exported();
    assert_eq!(s.remote_file(&file), None);
    assert!(!s.remote_paths().iter().any(|p| p.starts_with("argocd/")));
}

#[test]
fn a_train_over_1000_apps_rewrites_each_target_file_once_in_its_commit() {
    let apps = 1000;
    // env-0 (upstream latest, no Argo CD settings) runs all 1,000; env-1 and env-2 have settings and no app yet.
    let spec = repogen::RepoSpec { apps, envs: 3, releases: apps, hot_releases: 0, commits: 0, argocd: true };
    let (s, _) = railyard_tests::start_generated(&spec, &["--argocd-repo-url", repogen::ARGOCD_REPO_URL]);
    let file = |e: usize| argocd_file(&repogen::env(e));
    assert_eq!(s.remote_file(&file(0)), None);
    assert_eq!(yaml_docs(&s.remote_file(&file(1)).expect("env-1")).len(), 1);
    let before_env2 = s.remote_file(&file(2));

    let r = s.put_json("/api/environments/env-1/releasetrain", &json!({}));
    r.assert_status(200);
    assert_eq!(r.json["environments"][0]["deployed"].as_array().map(Vec::len), Some(apps), "{}", r.text);
    s.wait_exported();
    let paths = changed_paths(&s.remote_dir, &r.commit().expect("commit"));
    let argocd: Vec<&String> = paths.iter().filter(|p| p.starts_with("argocd/")).collect();
    assert_eq!(argocd, [&file(1)], "the train's commit rewrites env-1's file and no other");
    assert_eq!(paths.iter().filter(|p| p.ends_with("/version")).count(), apps);
    let docs = yaml_docs(&s.remote_file(&file(1)).expect("env-1"));
    assert_eq!(docs.len(), apps + 1);
    assert_eq!(docs[apps]["metadata"]["name"], format!("env-1-{}", repogen::app(apps - 1)));
    assert_eq!(s.remote_file(&file(2)), before_env2);

    let tmp = tempfile::tempdir().expect("dir");
    let path = tmp.path().join("env-1.yaml");
    std::fs::write(&path, s.remote_file(&file(1)).expect("env-1")).expect("write");
    assert_eq!(validate(&[path]).len(), apps + 1);
}

#[test]
fn a_new_repo_url_rewrites_every_file_at_start() {
    let s = server();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    let settings = json!({"destination": {"server": "https://kubernetes.default.svc"}});
    s.put_json("/api/environments/dev", &json!({"argocd": settings})).assert_status(200);
    s.release("web", None, &[("dev", "a: 1\n")]).assert_status(201);
    s.wait_exported();
    assert!(s.remote_file(&argocd_file("dev")).expect("file").contains(REPO_URL));
    let dir = s.kill();
    let moved = "https://git.example/platform/moved.git";
    let s = Server::start_in(dir, &["--argocd-repo-url", moved]);
    s.wait_exported();
    let docs = yaml_docs(&s.remote_file(&argocd_file("dev")).expect("file"));
    assert_eq!(docs[0]["spec"]["sourceRepos"], json!([moved]));
    assert_eq!(docs[1]["spec"]["source"]["repoURL"], moved);
    let commits = s.remote_commit_count();
    // the same flags again: nothing to record, no commit
    let dir = s.kill();
    let s = Server::start_in(dir, &["--argocd-repo-url", moved]);
    s.wait_exported();
    assert_eq!(s.remote_commit_count(), commits);
}

#[test]
fn an_application_goes_with_its_removal_from_an_environment_and_with_its_deletion() {
    let s = server();
    s.create_env("dev", json!({"latest": true}), None).assert_status(201);
    let settings = json!({"destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"}});
    s.post_json("/api/environments", &json!({"name": "staging", "argocd": settings})).assert_status(201);
    for app in ["web", "api"] {
        s.release(app, None, &[("dev", "a: 1\n"), ("staging", "a: 1\n")]).assert_status(201);
        s.deploy("staging", app, 1, "fail").assert_status(200);
    }
    let file = argocd_file("staging");
    s.wait_exported();
    let names = |s: &Server| -> Vec<String> {
        yaml_docs(&s.remote_file(&file).expect("file"))
            .iter()
            .filter(|d| d["kind"] == "Application")
            .map(|d| d["metadata"]["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names(&s), ["staging-api", "staging-web"]);

    // Removing web from staging removes its Application in the same commit.
    let removed = s.delete("/api/environments/staging/applications/web");
    removed.assert_status(200);
    s.wait_exported();
    assert!(
        changed_paths(&s.remote_dir, &removed.commit().expect("commit")).contains(&file),
        "the removal's commit rewrites the file"
    );
    assert_eq!(names(&s), ["staging-api"]);

    // Undeploying api and deleting it everywhere removes the last Application.
    let undeploy = s.post_json("/api/applications/api/undeploy", &json!({}));
    undeploy.assert_status(201);
    let v = undeploy.json["version"].as_u64().expect("undeploy version");
    s.deploy("staging", "api", v, "fail").assert_status(200);
    let deleted = s.delete("/api/applications/api");
    deleted.assert_status(200);
    s.wait_exported();
    assert!(changed_paths(&s.remote_dir, &deleted.commit().expect("commit")).contains(&file));
    assert!(names(&s).is_empty(), "{:?}", names(&s));
}
