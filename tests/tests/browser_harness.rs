//! The browser harness against real software: headless Chromium, through chromedriver, on a page served from
//! 127.0.0.1 by a tiny HTTP server of the test's own.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use railyard_tests::browser::Browser;
use serde_json::json;

const PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>Harness page</title></head>
<body>
  <h1>Harness page</h1>
  <form id="release" onsubmit="return false">
    <input id="app" name="app" value="placeholder">
    <select id="env">
      <option value="dev">Development</option>
      <option value="prod">Production</option>
    </select>
    <button id="go" type="button"
      onclick="document.getElementById('out').textContent = 'deploy ' + app.value + ' to ' + env.value">Deploy</button>
  </form>
  <div id="out"></div>
  <button id="delete" type="button"
    onclick="document.getElementById('answer').textContent = confirm('Delete checkout?') ? 'deleted' : 'kept'">Delete</button>
  <div id="answer"></div>
  <a id="docs" href="/docs" data-env="dev">Docs</a>
  <ul><li class="item">a</li><li class="item">b</li><li class="item">c</li></ul>
  <div id="later"></div>
  <script>setTimeout(() => { document.getElementById('later').textContent = 'appeared late'; }, 300);</script>
</body>
</html>
"#;

/// Serves [`PAGE`] at `/` (404 elsewhere) on a free port; returns the page's URL.
fn serve_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            // One thread per connection: Chromium opens speculative connections that may never send a request.
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request = String::new();
                if reader.read_line(&mut request).unwrap_or(0) == 0 {
                    return;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let (status, body) =
                    if request.starts_with("GET / ") { ("200 OK", PAGE) } else { ("404 Not Found", "") };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

#[test]
fn browser_fills_clicks_confirms_and_screenshots_a_real_page() {
    let started = Instant::now();
    let Some(mut b) = Browser::try_start() else {
        eprintln!("skipped: no Chromium/chromedriver and RAILYARD_SKIP_BROWSER=1");
        return;
    };
    let url = serve_page();
    b.goto(&url);
    assert_eq!(b.current_url(), url);
    assert_eq!(b.text("h1"), "Harness page");

    b.fill("#app", "checkout");
    b.select("#env", "prod");
    b.click("#go");
    assert_eq!(b.wait_for_text("#out", "deploy"), "deploy checkout to prod");
    // `fill` replaces what the field held rather than appending to it.
    b.fill("#app", "cart");
    b.click("#go");
    b.wait_for_text("#out", "deploy cart to prod");

    b.wait_for_text("#later", "appeared late");
    b.wait_for("#later");
    assert_eq!(b.attr("#docs", "href").as_deref(), Some("/docs"));
    assert_eq!(b.attr("#docs", "data-env").as_deref(), Some("dev"));
    assert_eq!(b.attr("#docs", "title"), None);
    assert_eq!(b.count("li.item"), 3);
    assert_eq!(b.count(".nothing-matches"), 0);

    // A real confirm dialog, accepted through WebDriver.
    b.click("#delete");
    assert_eq!(b.accept_confirm(), "Delete checkout?");
    b.wait_for_text("#answer", "deleted");
    // And one answered by the page's own `window.confirm`, replaced.
    b.execute("document.getElementById('answer').textContent = '';", &[]);
    b.auto_confirm();
    b.click("#delete");
    b.wait_for_text("#answer", "deleted");

    assert_eq!(b.execute("return arguments[0] + arguments[1];", &[json!(40), json!(2)]), json!(42));
    b.session_storage_set("railyard-token", "t0ken");
    assert_eq!(b.execute("return sessionStorage.getItem('railyard-token');", &[]), json!("t0ken"));

    let dir = tempfile::tempdir().expect("dir");
    let shot = dir.path().join("page.png");
    b.screenshot(&shot);
    let png = std::fs::read(&shot).expect("screenshot file");
    assert!(png.len() > 24, "screenshot of {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    // IHDR's width: the viewport that --window-size asked for.
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1400);

    let timing = b.performance_timing();
    let interactive = timing["domInteractive"].as_f64().unwrap_or_else(|| panic!("no domInteractive: {timing}"));
    assert!(interactive > 0.0, "{timing}");
    assert_eq!(timing["name"], json!(url));

    // A wait that cannot succeed names its selector and shows the page.
    b.set_wait(Duration::from_millis(300));
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.wait_for_text("#out", "never there")))
        .expect_err("the wait should fail");
    let message = failed.downcast_ref::<String>().expect("a formatted panic message");
    assert!(message.contains("`#out`") && message.contains("never there"), "{message}");
    assert!(message.contains("deploy cart to prod") && message.contains("Harness page"), "{message}");
    let failed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.click("#missing"))).expect_err("no element");
    let message = failed.downcast_ref::<String>().expect("a formatted panic message");
    assert!(message.contains("`#missing`") && message.contains(&url), "{message}");

    eprintln!("browser harness test took {:?}", started.elapsed());
}
