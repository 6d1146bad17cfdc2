//! The web UI end to end: the real `railyard-api` serving its pages to a real headless Chromium, every write made
//! by clicking the page's buttons, and the outcome read back where it lands (the remote repo's commits and files)
//! and where a person sees it (the page, without a reload where the page promises one).

use std::path::Path;
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use railyard_tests::browser::Browser;
use railyard_tests::{call, release_parts, upload_as, write_tokens, Server};
use serde_json::{json, Value};

/// The browser, or None (the test then says it is skipped) where Chromium is missing and `RAILYARD_SKIP_BROWSER=1`.
fn browser() -> Option<Browser> {
    let b = Browser::try_start();
    if b.is_none() {
        eprintln!("skipped: no Chromium/chromedriver and RAILYARD_SKIP_BROWSER=1");
    }
    b
}

/// The parts of a release of `app` for `team` with a manifest for each of `envs`.
fn team_release(app: &str, team: &str, envs: &[&str]) -> Vec<(String, Vec<u8>)> {
    let manifests: Vec<(String, String)> =
        envs.iter().map(|e| (e.to_string(), format!("kind: ConfigMap\nmetadata: {{name: {app}-{e}}}\n"))).collect();
    let refs: Vec<(&str, &str)> = manifests.iter().map(|(e, m)| (e.as_str(), m.as_str())).collect();
    let mut parts = release_parts(app, None, &refs);
    for (name, value) in &mut parts {
        if name == "team" {
            *value = team.as_bytes().to_vec();
        }
    }
    parts
}

/// Uploads the next release of `app` (team `team`) with manifests for `envs`.
fn release(s: &Server, app: &str, team: &str, envs: &[&str]) {
    s.upload(&team_release(app, team, envs)).assert_status(201);
}

fn deploy(s: &Server, env: &str, app: &str, version: u64) {
    s.deploy(env, app, version, "fail").assert_status(200);
}

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

/// dev (latest) → staging → prod (group `production`): names whose alphabetical order (dev, prod, staging) is not
/// the upstream order.
fn three_envs(s: &Server) {
    s.create_env("dev", json!({"latest": true}), None);
    s.create_env("staging", json!({"environment": "dev"}), None);
    s.create_env("prod", json!({"environment": "staging"}), Some("production"));
}

/// Polls `js` (a function body) until it returns something other than `null` or `false`; panics after `limit`.
fn poll_js(b: &Browser, what: &str, limit: Duration, js: &str, args: &[Value]) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = b.execute(js, args);
        if !v.is_null() && v != json!(false) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?} (page at {})", b.current_url());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls until `css` matches nothing; panics after 10 s.
fn wait_gone(b: &Browser, css: &str) {
    poll_js(
        b,
        &format!("`{css}` to go"),
        Duration::from_secs(10),
        "return !document.querySelector(arguments[0]);",
        &[json!(css)],
    );
}

/// What a `form.api` showed when its call came back.
struct Answered {
    /// The text of the form's `output.result`.
    text: String,
    /// Whether it was marked as an error.
    bad: bool,
}

impl Answered {
    /// The commit of `Done: commit <sha>`; panics on anything else.
    fn commit(&self) -> String {
        assert!(!self.bad, "the form showed an error: {}", self.text);
        let sha = self.text.strip_prefix("Done: commit ").unwrap_or_else(|| panic!("no commit shown: {:?}", self.text));
        assert!(sha.len() == 40 && sha.bytes().all(|c| c.is_ascii_hexdigit()), "not a sha: {sha:?}");
        sha.to_owned()
    }
}

/// Submits the `form.api` matching `form` with its button; `question`: a part of the confirm question it must ask
/// (answered yes in the real dialog), None: it must ask none. Returns what the form's output showed once the call
/// came back, which the status box must show too.
fn submit(b: &Browser, form: &str, question: Option<&str>) -> Answered {
    // The page swaps <main> after a write, which drops the form; the old output element keeps its text.
    b.execute(
        "document.getElementById('status').replaceChildren();
         window.__out = document.querySelector(arguments[0] + ' output.result');
         if (!window.__out) throw new Error('no output in ' + arguments[0]);",
        &[json!(form)],
    );
    b.click(&format!("{form} button[type=submit]"));
    if let Some(q) = question {
        let asked = b.accept_confirm();
        assert!(asked.contains(q), "the question {asked:?} does not say {q:?}");
    }
    let got = poll_js(
        b,
        &format!("the answer of {form}"),
        Duration::from_secs(15),
        "const o = window.__out; const t = o.textContent;
         return t === '' || t === 'working…' ? null : [t, o.classList.contains('bad')];",
        &[],
    );
    let answered = Answered { text: got[0].as_str().unwrap_or_default().to_owned(), bad: got[1] == json!(true) };
    b.wait_for_text("#status", &answered.text);
    answered
}

/// The `data-env` of the overview's environment columns, left to right.
fn columns(b: &Browser) -> Vec<String> {
    let v = b.execute("return [...document.querySelectorAll('#overview th[data-env]')].map(t => t.dataset.env);", &[]);
    serde_json::from_value(v).expect("a list of names")
}

/// The `data-app` of the rows matching `css`, top to bottom.
fn rows(b: &Browser, css: &str) -> Vec<String> {
    let v = b.execute("return [...document.querySelectorAll(arguments[0])].map(t => t.dataset.app);", &[json!(css)]);
    serde_json::from_value(v).expect("a list of names")
}

/// The rendered text of every element matching `css`.
fn texts(b: &Browser, css: &str) -> Vec<String> {
    let v = b.execute("return [...document.querySelectorAll(arguments[0])].map(t => t.innerText);", &[json!(css)]);
    serde_json::from_value(v).expect("a list of texts")
}

fn cell(env: &str, app: &str) -> String {
    format!("#overview td[data-env=\"{env}\"][data-app=\"{app}\"]")
}

fn version_file(env: &str, app: &str) -> String {
    format!("environments/{env}/applications/{app}/version")
}

fn app_lock_file(env: &str, app: &str, id: &str, file: &str) -> String {
    format!("environments/{env}/applications/{app}/locks/{id}/{file}")
}

/// Asserts that `path` is a PNG of the browser's width (1400 px).
fn assert_png(path: &Path) {
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(png.len() > 10_000, "{} is {} bytes: a blank page?", path.display(), png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().expect("width")), 1400);
}

#[test]
fn overview_shows_versions_in_upstream_order_and_filters_by_team_and_name() {
    let Some(b) = browser() else { return };
    let s = Server::start();
    three_envs(&s);
    release(&s, "web", "red", &ENVS);
    release(&s, "web", "red", &ENVS);
    release(&s, "api", "blue", &ENVS);
    deploy(&s, "staging", "web", 1);
    deploy(&s, "staging", "api", 1);
    deploy(&s, "prod", "api", 1);

    b.goto(&s.at("/"));
    assert_eq!(columns(&b), ["dev", "staging", "prod"], "columns follow the upstreams, not the names");
    let groups = b.execute(
        "return [...document.querySelectorAll('#overview tr.groups th[scope=colgroup]')].map(t => t.textContent);",
        &[],
    );
    assert_eq!(groups, json!(["dev", "staging", "production"]));
    assert_eq!(rows(&b, "#overview tbody tr[data-app]"), ["api", "web"]);
    // dev runs every new release (latest); staging and prod what was deployed there; web never went to prod.
    for (env, app, version) in
        [("dev", "web", "v2"), ("staging", "web", "v1"), ("dev", "api", "v1"), ("prod", "api", "v1")]
    {
        assert_eq!(b.text(&format!("{} span.version", cell(env, app))), version, "{app} in {env}");
    }
    assert_eq!(b.count(&cell("prod", "web")), 0, "web is not in prod");
    assert_eq!(b.count("#overview tr[data-app=web] td.empty"), 1);
    assert_eq!(b.count("#overview .lock, #overview .queued"), 0, "no locks, nothing queued");
    assert_eq!(b.attr(&format!("{} a", cell("staging", "web")), "href").as_deref(), Some("/app/web#env-staging"));

    b.select("form.filters select[name=team]", "red");
    b.click("form.filters button[type=submit]");
    b.wait_for_text("form.filters .count", "1 applications");
    let url = b.current_url();
    assert!(url.contains("team=red") && !url.contains("app="), "{url}");
    assert_eq!(rows(&b, "#overview tbody tr[data-app]"), ["web"]);
    assert_eq!(b.text(&format!("{} span.version", cell("dev", "web"))), "v2");
    assert_eq!(b.execute("return document.querySelector('form.filters select[name=team]').value;", &[]), "red");

    // The filter is the server's: a link with it renders filtered.
    b.goto(&s.at("/?app=ap"));
    assert_eq!(rows(&b, "#overview tbody tr[data-app]"), ["api"]);
    assert_eq!(b.execute("return document.querySelector('form.filters input[name=app]').value;", &[]), "ap");
    b.goto(&s.at("/?team=green"));
    assert_eq!(b.count("#overview tbody tr[data-app]"), 0);
    b.wait_for_text("main .empty-state", "No application matches");
}

#[test]
fn train_page_previews_the_dry_run_and_runs_the_train_to_prod() {
    let Some(b) = browser() else { return };
    let s = Server::start();
    three_envs(&s);
    for app in ["web", "api"] {
        let team = if app == "web" { "red" } else { "blue" };
        release(&s, app, team, &ENVS);
        deploy(&s, "staging", app, 1);
        deploy(&s, "prod", app, 1);
        release(&s, app, team, &ENVS);
        deploy(&s, "staging", app, 2);
    }
    let lock = "/api/environments/prod/applications/api/locks/hold-api";
    s.put_json(lock, &json!({"message": "incident 7"})).assert_status(200);
    let before = s.wait_exported();

    b.goto(&s.at("/train"));
    assert_eq!(b.count("#train-dry-run"), 0, "no dry run before a target is picked");
    let values = b.execute("return [...document.querySelectorAll('#train-target option')].map(o => o.value);", &[]);
    assert_eq!(values, json!(["", "environment:dev", "environment:staging", "environment:prod", "group:production"]));
    b.select("#train-target", "environment:prod");
    b.click("#train-preview");
    b.wait_for("#train-dry-run");
    assert!(b.current_url().contains("target=environment%3Aprod"), "{}", b.current_url());
    assert_eq!(rows(&b, "#train-dry-run table.moves tr[data-app]"), ["web"]);
    let moves = b.text("#train-dry-run table.moves tr[data-app=web]");
    assert_eq!(moves.split_whitespace().collect::<Vec<_>>(), ["web", "v1", "v2"]);
    assert_eq!(rows(&b, "#train-dry-run table.skips tr[data-app]"), ["api"]);
    b.wait_for_text("#train-dry-run table.skips tr[data-app=api]", "application locked");
    b.wait_for_text("#train-dry-run .summary", "1 application(s) would move.");
    // A dry run writes nothing.
    assert_eq!(s.local_head(), Some(before));

    let commit = submit(&b, "form[data-test=train-confirm]", Some("Run the release train to prod?")).commit();
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_head().map(|h| h.to_string()), Some(commit.clone()));
    assert_eq!(s.remote_file(&version_file("prod", "web")).as_deref(), Some("2"), "web moved");
    assert_eq!(s.remote_file(&version_file("prod", "api")).as_deref(), Some("1"), "the locked api stayed");
    assert_eq!(s.remote_file(&app_lock_file("prod", "api", "hold-api", "message")).as_deref(), Some("incident 7"));
    // The page shows the train's new dry run: web is where staging is now.
    b.wait_for_text("#train-dry-run table.skips tr[data-app=web]", "already deployed");
}

#[test]
fn lock_from_the_app_page_and_delete_it_on_the_locks_page() {
    let Some(b) = browser() else { return };
    let s = Server::start();
    three_envs(&s);
    release(&s, "web", "red", &ENVS);
    deploy(&s, "staging", "web", 1);
    s.wait_exported();

    b.goto(&s.at("/app/web"));
    let form = "#env-staging form[data-test=lock-staging]";
    b.fill(&format!("{form} input[name=lockId]"), "ui-hold");
    b.fill(&format!("{form} input[name=message]"), "from the browser");
    let commit = submit(&b, form, None).commit();
    assert_eq!(s.wait_exported().to_string(), commit);
    let message = s.remote_file(&app_lock_file("staging", "web", "ui-hold", "message"));
    assert_eq!(message.as_deref(), Some("from the browser"));
    assert!(s.remote_file(&app_lock_file("staging", "web", "ui-hold", "created_at")).is_some());
    assert!(s.remote_commit_message(&commit).contains("ui-hold"), "{}", s.remote_commit_message(&commit));
    // The refetched page shows the lock, in staging only.
    b.wait_for_text("#env-staging ul.locks", "ui-hold: from the browser");
    assert_eq!(b.count("#env-dev ul.locks, #env-prod ul.locks"), 0);

    b.goto(&s.at("/locks"));
    let row = "#locks tr[data-lock=ui-hold][data-kind=application][data-env=staging]";
    let text = b.text(row);
    assert!(text.contains("from the browser") && text.contains("web") && text.contains("railyard"), "{text}");
    let answered = submit(
        &b,
        &format!("{row} form[data-test=delete-application-staging-ui-hold]"),
        Some("Delete application lock ui-hold in staging?"),
    );
    let commit = answered.commit();
    wait_gone(&b, row);
    b.wait_for_text("main .empty-state", "No locks.");
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_file(&app_lock_file("staging", "web", "ui-hold", "message")), None);
    assert!(!s.remote_paths().iter().any(|p| p.contains("/locks/")), "a lock is left: {:?}", s.remote_paths());
}

#[test]
fn deploy_and_lock_rolls_prod_back_to_an_older_version_and_the_overview_marks_it() {
    let Some(b) = browser() else { return };
    let s = Server::start();
    three_envs(&s);
    for _ in 0..3 {
        release(&s, "web", "red", &ENVS);
    }
    deploy(&s, "prod", "web", 3);

    b.goto(&s.at("/app/web"));
    let form = "#env-prod form[data-test=rollback-prod]";
    let default = b.execute("return document.querySelector(arguments[0]).value;", &[json!(format!("{form} select"))]);
    assert_eq!(default, "2", "Deploy & Lock offers the release before the running one");
    b.select(&format!("{form} select[name=version]"), "1");
    b.fill(&format!("{form} input[name=message]"), "v3 breaks checkout");
    let commit = submit(&b, form, Some("Deploy web in prod and lock it there")).commit();
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_file(&version_file("prod", "web")).as_deref(), Some("1"));
    let lock = s.remote_file(&app_lock_file("prod", "web", "rollback-1", "message"));
    assert_eq!(lock.as_deref(), Some("v3 breaks checkout"));
    assert_eq!(s.remote_file(&version_file("dev", "web")).as_deref(), Some("3"), "only prod changed");
    b.wait_for_text("#env-prod p.current", "Runs v1");

    b.goto(&s.at("/"));
    assert_eq!(b.text(&format!("{} span.version", cell("prod", "web"))), "v1");
    b.wait_for(&format!("{} span.app-lock", cell("prod", "web")));
    let hover = b.attr(&cell("prod", "web"), "title").unwrap_or_default();
    assert!(hover.contains("rollback-1: v3 breaks checkout"), "{hover}");
    assert_eq!(b.count(&format!("{} span.app-lock", cell("dev", "web"))), 0);
}

#[test]
fn overview_follows_a_deploy_made_elsewhere_without_reloading() {
    let Some(mut b) = browser() else { return };
    let s = Server::start();
    three_envs(&s);
    release(&s, "web", "red", &ENVS);
    release(&s, "web", "red", &ENVS);
    deploy(&s, "staging", "web", 1);

    b.goto(&s.at("/"));
    assert_eq!(b.text(&format!("{} span.version", cell("staging", "web"))), "v1");
    b.execute("window.__marker = 1;", &[]);
    deploy(&s, "staging", "web", 2);
    // The page polls every 2 s.
    b.set_wait(Duration::from_secs(6));
    b.wait_for_text(&format!("{} span.version", cell("staging", "web")), "v2");
    assert_eq!(b.execute("return window.__marker;", &[]), json!(1), "the page was reloaded");
    let head = s.local_head().expect("head").to_string();
    assert_eq!(b.attr("main#main", "data-head"), Some(head));
}

#[test]
fn with_tokens_the_ui_signs_in_and_offers_only_what_the_token_allows() {
    let Some(b) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let tokens = write_tokens(
        dir.path(),
        &[
            ("admin-token", "Ada", "[{action: admin}]"),
            ("deploy-token", "Dana", "[{action: deploy, environments: [dev]}, {action: lock}]"),
            ("read-token", "Reed", "[]"),
        ],
    );
    let s = Server::start_in(dir, &["--auth-tokens", tokens.to_str().expect("path")]);
    for (name, upstream, group) in
        [("dev", json!({"latest": true}), None), ("prod", json!({"environment": "dev"}), Some("production"))]
    {
        let mut body = json!({"name": name, "upstream": upstream});
        if let Some(g) = group {
            body["environmentGroup"] = json!(g);
        }
        call(&s, "POST", "/api/environments", Some("admin-token"), Some(&body)).assert_status(201);
    }
    for _ in 0..2 {
        upload_as(&s, "/api/release", Some("admin-token"), &team_release("web", "red", &["dev", "prod"]))
            .assert_status(201);
    }
    s.wait_exported();

    // No token: the sign-in shell, no data.
    b.goto(&s.at("/"));
    b.wait_for("main[data-signin] form#token-form input#token");
    assert_eq!(b.count("#overview"), 0);
    // A wrong token: back to the sign-in, saying why.
    b.fill("#token", "not-a-token");
    b.click("#token-form button[type=submit]");
    b.wait_for_text("#signin-error", "The token was refused");
    b.wait_for("main[data-signin] form#token-form");
    assert_eq!(b.execute("return sessionStorage.getItem('railyard.token');", &[]), Value::Null);

    b.fill("#token", "deploy-token");
    b.click("#token-form button[type=submit]");
    b.wait_for(&format!("{} span.version", cell("dev", "web")));
    assert_eq!(b.text("#who-name"), "Dana");
    assert_eq!(b.text(&format!("{} span.version", cell("dev", "web"))), "v2");

    // A page loaded afresh keeps the token of the tab.
    b.goto(&s.at("/app/web"));
    let prod = "form[data-test=deploy-prod] button[type=submit]";
    b.wait_for(prod);
    assert!(b.attr(prod, "disabled").is_some(), "Deploy in prod is enabled for a dev deployer");
    let why = b.attr(prod, "title").unwrap_or_default();
    assert!(why.contains("does not allow deploy of web to prod"), "{why:?}");
    let dev = "form[data-test=deploy-dev] button[type=submit]";
    assert_eq!(b.attr(dev, "disabled"), None, "Deploy in dev is disabled");
    assert_eq!(b.attr(dev, "title"), None);
    assert_eq!(b.attr("form[data-test=lock-prod] button[type=submit]", "disabled"), None, "the token may lock prod");

    b.select("form[data-test=deploy-dev] select[name=version]", "1");
    let commit = submit(&b, "form[data-test=deploy-dev]", Some("Deploy web to dev?")).commit();
    assert_eq!(s.wait_exported().to_string(), commit);
    assert_eq!(s.remote_file(&version_file("dev", "web")).as_deref(), Some("1"));
    let repo = Repository::open_bare(&s.remote_dir).expect("remote");
    let c = repo.find_commit(Oid::from_str(&commit).expect("sha")).expect("commit on the remote");
    let author = c.author();
    assert_eq!((author.name().ok(), author.email().ok()), (Some("Dana"), Some("dana@example.com")));
    assert_eq!(s.remote_file("environments/dev/applications/web/deployed_by").as_deref(), Some("Dana"));

    // The overview follows new commits with the token too.
    b.goto(&s.at("/"));
    b.wait_for(&format!("{} span.version", cell("dev", "web")));
    b.execute("window.__marker = 1;", &[]);
    call(
        &s,
        "PUT",
        "/api/environments/prod/applications/web/deploy",
        Some("admin-token"),
        Some(&json!({"version": 2})),
    )
    .assert_status(200);
    b.wait_for_text(&format!("{} span.version", cell("prod", "web")), "v2");
    assert_eq!(b.execute("return window.__marker;", &[]), json!(1), "the page was reloaded");
    assert_eq!(b.text("#who-name"), "Dana");

    // Signing out forgets the token; a token without roles may look but not touch.
    b.click("#signout");
    b.wait_for("main[data-signin] form#token-form");
    b.fill("#token", "read-token");
    b.click("#token-form button[type=submit]");
    b.wait_for_text("#who-name", "Reed");
    b.goto(&s.at("/app/web"));
    b.wait_for(dev);
    for button in [dev, prod, "form[data-test=lock-dev] button[type=submit]"] {
        assert!(b.attr(button, "disabled").is_some(), "{button} is enabled for a reader");
    }
}

#[test]
fn env_page_locks_the_environment_and_a_deploy_there_shows_the_refusal() {
    let Some(b) = browser() else { return };
    let s = Server::start();
    three_envs(&s);
    release(&s, "web", "red", &ENVS);
    release(&s, "web", "red", &ENVS);
    deploy(&s, "staging", "web", 1);

    b.goto(&s.at("/env/staging"));
    b.wait_for_text("pre#config", "\"environment\": \"dev\"");
    b.wait_for_text("main .hint", "No locks.");
    b.fill("form[data-test=lock-env] input[name=lockId]", "freeze");
    b.fill("form[data-test=lock-env] input[name=message]", "release freeze");
    let commit = submit(&b, "form[data-test=lock-env]", None).commit();
    assert_eq!(s.wait_exported().to_string(), commit);
    let message = s.remote_file("environments/staging/locks/freeze/message");
    assert_eq!(message.as_deref(), Some("release freeze"));
    let row = b.wait_for_text("#env-locks tbody tr", "freeze");
    assert!(row.contains("environment") && row.contains("release freeze") && row.contains("railyard"), "{row}");

    // The API refuses the deploy; the page says why, in the form and the status box, and nothing is written.
    b.goto(&s.at("/app/web"));
    b.wait_for_text("#env-staging ul.locks", "environment lock freeze: release freeze");
    let answered = submit(&b, "form[data-test=deploy-staging]", Some("Deploy web to staging?"));
    assert!(answered.bad, "a refused deploy is not shown as an error: {}", answered.text);
    assert!(answered.text.contains("release freeze"), "{}", answered.text);
    b.wait_for("#status .msg.bad");
    assert_eq!(s.local_head().map(|h| h.to_string()), Some(commit));
    assert_eq!(s.remote_file(&version_file("staging", "web")).as_deref(), Some("1"));

    b.goto(&s.at("/"));
    b.wait_for("#overview th[data-env=staging] span.env-lock");
    let hover = b.attr("#overview th[data-env=staging]", "title").unwrap_or_default();
    assert!(hover.contains("freeze: release freeze"), "{hover}");
    assert_eq!(b.count("#overview th[data-env=dev] span.env-lock, #overview th[data-env=prod] span.env-lock"), 0);
}

/// Writes a screenshot of the page to `dir/name`, and to `$RAILYARD_UI_SCREENSHOTS/name` when that names a
/// directory (how docs/images is made).
fn shoot(b: &Browser, dir: &Path, name: &str) {
    let path = dir.join(name);
    b.screenshot(&path);
    assert_png(&path);
    if let Some(docs) = std::env::var_os("RAILYARD_UI_SCREENSHOTS") {
        let docs = Path::new(&docs);
        assert!(docs.is_dir(), "RAILYARD_UI_SCREENSHOTS={} is not a directory", docs.display());
        std::fs::copy(&path, docs.join(name)).expect("copy the screenshot");
    }
}

#[test]
fn screenshots_of_a_realistic_overview_and_train_dry_run() {
    let Some(b) = browser() else { return };
    let s = Server::start();
    s.create_env("dev", json!({"latest": true}), Some("pre-production"));
    s.create_env("staging", json!({"environment": "dev"}), Some("pre-production"));
    for prod in ["prod-eu", "prod-us", "prod-ap"] {
        s.create_env(prod, json!({"environment": "staging"}), Some("production"));
    }
    let envs = ["dev", "staging", "prod-eu", "prod-us", "prod-ap"];
    // (app, team, releases, in staging, in each prod)
    let apps = [
        ("checkout", "payments", 5, 5, 4),
        ("cart", "payments", 3, 3, 3),
        ("payments", "payments", 4, 4, 3),
        ("catalog", "shop", 6, 5, 5),
        ("search", "shop", 2, 2, 1),
        ("accounts", "identity", 3, 3, 2),
        ("notifications", "platform", 2, 2, 2),
        ("gateway", "platform", 4, 3, 3),
    ];
    for (app, team, releases, staging, prod) in apps {
        for _ in 0..releases {
            release(&s, app, team, &envs);
        }
        deploy(&s, "staging", app, staging);
        for env in ["prod-eu", "prod-us", "prod-ap"] {
            deploy(&s, env, app, prod);
        }
    }
    let lock = "/api/environments/prod-us/applications/payments/locks/pci-audit";
    s.put_json(lock, &json!({"message": "PCI audit until Friday"})).assert_status(200);
    s.deploy("prod-us", "payments", 4, "queue").assert_status(200);
    s.put_json("/api/environments/prod-ap/locks/maintenance", &json!({"message": "datacenter move"}))
        .assert_status(200);
    s.wait_exported();
    let dir = tempfile::tempdir().expect("dir");

    b.goto(&s.at("/"));
    // Within a group the same distance from `latest`: by name.
    assert_eq!(columns(&b), ["dev", "staging", "prod-ap", "prod-eu", "prod-us"]);
    assert_eq!(b.count("#overview tbody tr[data-app]"), apps.len());
    b.wait_for_text(&format!("{} span.queued", cell("prod-us", "payments")), "queued v4");
    b.wait_for(&format!("{} span.app-lock", cell("prod-us", "payments")));
    b.wait_for("#overview th[data-env=prod-ap] span.env-lock");
    shoot(&b, dir.path(), "ui-overview.png");

    b.goto(&s.at("/train"));
    b.select("#train-target", "group:production");
    b.click("#train-preview");
    b.wait_for("#train-dry-run");
    // prod-ap is locked as a whole, payments in prod-us alone.
    let payments = texts(&b, "#train-dry-run table.skips tr[data-app=payments]");
    assert_eq!(payments, ["payments\tenvironment locked", "payments\tapplication locked"]);
    let checkout = texts(&b, "#train-dry-run table.moves tr[data-app=checkout]");
    assert_eq!(checkout, ["checkout\tv4\tv5", "checkout\tv4\tv5"], "checkout moves in prod-eu and prod-us");
    b.wait_for_text("#train-dry-run .summary", "7 application(s) would move.");
    // The picture: one environment's dry run, moves and skips and the button in view.
    b.select("#train-target", "environment:prod-us");
    b.click("#train-preview");
    b.wait_for_text("#train-dry-run .summary", "3 application(s) would move.");
    assert_eq!(rows(&b, "#train-dry-run table.moves tr[data-app]"), ["accounts", "checkout", "search"]);
    b.wait_for("form[data-test=train-confirm] button[type=submit]");
    shoot(&b, dir.path(), "ui-train.png");
}
