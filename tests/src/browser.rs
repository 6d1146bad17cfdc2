//! A real browser for the web UI's end-to-end tests: Debian's headless Chromium, driven by chromedriver over
//! WebDriver (fantoccini), behind a blocking API like the rest of this harness. Every wait gives up after [`WAIT`]
//! and panics naming the selector and showing the page's URL and text.

use std::fs::File;
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// How long a wait for an element, a text or a dialog lasts before it panics, unless [`Browser::set_wait`] says.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long one WebDriver command may take: a hung browser fails the test instead of hanging it.
const COMMAND: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// How much of the page's text a failure shows.
const SHOWN: usize = 2048;
const INSTALL: &str = "apt-get install -y chromium chromium-driver";

/// A headless Chromium session; chromedriver and every browser process it started are killed on drop.
pub struct Browser {
    client: Client,
    rt: tokio::runtime::Runtime,
    wait: Duration,
    _driver: Driver,
}

impl Browser {
    /// Starts chromedriver and a fresh Chromium profile; panics if either binary is missing.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|| panic!("{}", missing_message(&missing_binaries().1)))
    }

    /// Like [`Browser::start`], but None where the binaries are missing and `RAILYARD_SKIP_BROWSER=1` is set (the
    /// test then reports itself skipped); without that variable a missing binary still panics.
    pub fn try_start() -> Option<Self> {
        let ((chromium, chromedriver), missing) = missing_binaries();
        if !missing.is_empty() {
            if std::env::var("RAILYARD_SKIP_BROWSER").as_deref() == Ok("1") {
                return None;
            }
            panic!("{}", missing_message(&missing));
        }
        let driver = Driver::start(&chromedriver);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let profile = driver.dir.path().join("chromium-profile");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else { unreachable!("a JSON object") };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = match bounded(&rt, COMMAND, builder.connect(&driver.url)) {
            Some(Ok(client)) => client,
            Some(Err(e)) => panic!("chromedriver could not start {}: {e}\n{}", chromium.display(), driver.log()),
            None => panic!("chromedriver did not open a session within {COMMAND:?}\n{}", driver.log()),
        };
        Some(Self { client, rt, wait: WAIT, _driver: driver })
    }

    /// Sets how long each wait lasts before it panics (default [`WAIT`]).
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// Opens `url` and waits for its load event.
    pub fn goto(&self, url: &str) {
        let r = self.call(self.client.goto(url));
        self.ok(&format!("goto {url}"), r);
    }

    /// The URL of the current page.
    pub fn current_url(&self) -> String {
        let r = self.call(self.client.current_url());
        self.ok("current URL", r).to_string()
    }

    /// Waits until an element matches `css`.
    pub fn wait_for(&self, css: &str) {
        let client = &self.client;
        self.until(
            &format!("wait for `{css}`"),
            move || async move { client.find(Locator::Css(css)).await.map(|_| Ok(())) },
        )
    }

    /// The rendered text of the first element matching `css`, once there is one.
    pub fn text(&self, css: &str) -> String {
        let client = &self.client;
        self.until(&format!("text of `{css}`"), move || async move {
            client.find(Locator::Css(css)).await?.text().await.map(Ok)
        })
    }

    /// Waits until the text of the first element matching `css` contains `needle`; returns that text.
    pub fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let client = &self.client;
        self.until(&format!("wait for `{css}` to contain {needle:?}"), move || async move {
            let text = client.find(Locator::Css(css)).await?.text().await?;
            Ok(if text.contains(needle) { Ok(text) } else { Err(format!("its text is {text:?}")) })
        })
    }

    /// Clicks the first element matching `css`, once there is one that can be clicked.
    pub fn click(&self, css: &str) {
        let client = &self.client;
        self.until(&format!("click `{css}`"), move || async move {
            client.find(Locator::Css(css)).await?.click().await.map(Ok)
        })
    }

    /// Clears the field matching `css` and types `value` into it.
    pub fn fill(&self, css: &str, value: &str) {
        let client = &self.client;
        self.until(&format!("fill `{css}`"), move || async move {
            let field = client.find(Locator::Css(css)).await?;
            field.clear().await?;
            field.send_keys(value).await.map(Ok)
        })
    }

    /// Picks the `<option value="value">` of the `<select>` matching `css` (waiting for the option too).
    pub fn select(&self, css: &str, value: &str) {
        let client = &self.client;
        self.until(&format!("select {value:?} in `{css}`"), move || async move {
            client.find(Locator::Css(css)).await?.select_by_value(value).await.map(Ok)
        })
    }

    /// The attribute `name` of the first element matching `css`, once there is one (None: no such attribute).
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let client = &self.client;
        self.until(&format!("attribute {name:?} of `{css}`"), move || async move {
            client.find(Locator::Css(css)).await?.attr(name).await.map(Ok)
        })
    }

    /// How many elements match `css` right now (no waiting: zero is an answer).
    pub fn count(&self, css: &str) -> usize {
        let r = self.call(self.client.find_all(Locator::Css(css)));
        self.ok(&format!("count `{css}`"), r).len()
    }

    /// Waits for a dialog (`confirm`, `alert`) to open, accepts it and returns its message.
    pub fn accept_confirm(&self) -> String {
        let client = &self.client;
        self.until("accept a dialog", move || async move {
            let message = client.get_alert_text().await?;
            client.accept_alert().await.map(|_| Ok(message))
        })
    }

    /// Makes the current page's `window.confirm` answer yes without opening a dialog (until the next navigation).
    pub fn auto_confirm(&self) {
        self.execute("window.confirm = () => true;", &[]);
    }

    /// Runs `js` as the body of a function (`arguments[i]` is `args[i]`) and returns what it returns.
    pub fn execute(&self, js: &str, args: &[Value]) -> Value {
        let r = self.call(self.client.execute(js, args.to_vec()));
        self.ok(&format!("execute {js:?}"), r)
    }

    /// Sets `key` to `value` in the current origin's `sessionStorage`.
    pub fn session_storage_set(&self, key: &str, value: &str) {
        self.execute("sessionStorage.setItem(arguments[0], arguments[1]);", &[json!(key), json!(value)]);
    }

    /// The current page's navigation timing entry (`domInteractive`, `loadEventEnd`, … in ms since its start).
    pub fn performance_timing(&self) -> Value {
        self.execute("return performance.getEntriesByType('navigation')[0].toJSON();", &[])
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let r = self.call(self.client.screenshot());
        let png = self.ok("screenshot", r);
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Runs `attempt` until it gives `Ok(Ok(_))`, retrying (every [`POLL`]) on `Ok(Err(reason))` and on the
    /// WebDriver errors that waiting can cure; panics after the wait ([`WAIT`]) with `what`, the last reason and the page.
    fn until<T, F, Fut>(&self, what: &str, mut attempt: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Result<T, String>, CmdError>>,
    {
        let deadline = Instant::now() + self.wait;
        loop {
            let reason = match self.call(attempt()) {
                Ok(Ok(v)) => return v,
                Ok(Err(reason)) => reason,
                Err(e) if curable(&e) => short(&e),
                Err(e) => self.fail(&format!("{what}: {}", short(&e))),
            };
            if Instant::now() >= deadline {
                self.fail(&format!("{what}: gave up after {:?}: {reason}", self.wait));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs one WebDriver exchange on the private runtime, bounded by [`COMMAND`].
    fn call<T>(&self, fut: impl Future<Output = Result<T, CmdError>>) -> Result<T, CmdError> {
        bounded(&self.rt, COMMAND, fut).unwrap_or_else(|| {
            Err(CmdError::Lost(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("chromedriver did not answer within {COMMAND:?}"),
            )))
        })
    }

    fn ok<T>(&self, what: &str, r: Result<T, CmdError>) -> T {
        r.unwrap_or_else(|e| self.fail(&format!("{what}: {}", short(&e))))
    }

    fn fail(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.page())
    }

    /// The current page's URL and body text (its first [`SHOWN`] bytes), for failure messages.
    fn page(&self) -> String {
        let url = match self.call(self.client.current_url()) {
            Ok(u) => u.to_string(),
            Err(e) => format!("<unknown: {}>", short(&e)),
        };
        let js = "return document.body ? document.body.innerText : document.documentElement.outerHTML;";
        let text = match self.call(self.client.execute(js, vec![])) {
            Ok(Value::String(s)) => s,
            Ok(v) => v.to_string(),
            Err(e) => format!("<unavailable: {}>", short(&e)),
        };
        let cut = (0..=SHOWN.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let more = if cut < text.len() { format!("\n… ({} more bytes)", text.len() - cut) } else { String::new() };
        format!("page {url}; its text:\n{}{more}", &text[..cut])
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session lets chromedriver close Chromium cleanly; the process group is killed after anyway.
        let _ = bounded(&self.rt, Duration::from_secs(5), self.client.clone().close());
    }
}

/// A chromedriver process in a process group of its own, with its temp dir (log and Chromium profile).
struct Driver {
    child: Child,
    url: String,
    log_path: PathBuf,
    dir: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver on a free port of 127.0.0.1 and waits until it reports itself ready.
    fn start(chromedriver: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("chromedriver.log");
        let log = File::create(&log_path).expect("chromedriver log");
        let port = crate::free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let mut driver = Self { child, url: format!("http://127.0.0.1:{port}"), log_path, dir };
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
        let deadline = Instant::now() + WAIT;
        loop {
            let status = http.get(format!("{}/status", driver.url)).send().and_then(|r| r.json::<Value>());
            if status.is_ok_and(|s| s["value"]["ready"] == true) {
                return driver;
            }
            if let Ok(Some(exit)) = driver.child.try_wait() {
                panic!("chromedriver exited ({exit}) before it was ready\n{}", driver.log());
            }
            assert!(Instant::now() < deadline, "chromedriver not ready within {WAIT:?}\n{}", driver.log());
            std::thread::sleep(POLL);
        }
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        format!("chromedriver log:\n{log}")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group holds chromedriver and the Chromium processes it started, which killing it alone would orphan.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::KILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `fut` to completion on `rt`; None if it takes longer than `limit`.
fn bounded<T>(rt: &tokio::runtime::Runtime, limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    rt.block_on(async { tokio::time::timeout(limit, fut).await.ok() })
}

/// The Chromium binary (`$CHROMIUM` or /usr/bin/chromium) and chromedriver (`$CHROMEDRIVER` or on `PATH`), and
/// the names of those missing.
fn missing_binaries() -> ((PathBuf, PathBuf), Vec<String>) {
    let chromium = std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    let chromedriver = std::env::var_os("CHROMEDRIVER").map(PathBuf::from).or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("chromedriver")).find(|p| p.is_file())
    });
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(chromium.display().to_string());
    }
    if chromedriver.is_none() {
        missing.push("chromedriver".to_owned());
    }
    ((chromium, chromedriver.unwrap_or_default()), missing)
}

fn missing_message(missing: &[String]) -> String {
    format!(
        "the browser tests need headless Chromium and chromedriver; not found: {}. Install them with `{INSTALL}` \
         (or set RAILYARD_SKIP_BROWSER=1 to skip these tests)",
        missing.join(", ")
    )
}

/// Whether waiting can cure `e`: the element is not there yet, was replaced, is covered or not yet usable, or
/// the dialog has not opened yet. Chromium reports an element that the page swapped out between finding it and
/// reading it as an "unknown error" naming a node that "does not belong to the document", or as a navigation
/// in progress: waiting cures those too.
fn curable(e: &CmdError) -> bool {
    match e {
        CmdError::Standard(w) => {
            matches!(
                w.error,
                ErrorStatus::NoSuchElement
                    | ErrorStatus::StaleElementReference
                    | ErrorStatus::ElementNotInteractable
                    | ErrorStatus::ElementClickIntercepted
                    | ErrorStatus::InvalidElementState
                    | ErrorStatus::NoSuchAlert
            ) || (w.error == ErrorStatus::UnknownError
                && ["does not belong to the document", "Execution context was destroyed", "Cannot find context"]
                    .iter()
                    .any(|m| w.message.contains(m)))
        }
        _ => false,
    }
}

/// A WebDriver error without chromedriver's native stack trace.
fn short(e: &CmdError) -> String {
    match e {
        CmdError::Standard(w) => format!("{}: {}", w.error, w.message),
        e => e.to_string(),
    }
}
