//! The assets every page links, embedded in the binary: no CDN, no build step.

/// The page script: the token in the session, writes through `/api`, following new commits.
pub const JS: &str = include_str!("../assets/app.js");
/// The style sheet.
pub const CSS: &str = include_str!("../assets/app.css");

pub const JS_PATH: &str = "/assets/app.js";
pub const CSS_PATH: &str = "/assets/app.css";

/// The asset at `path` with its content type (None: no such asset).
pub fn get(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        JS_PATH => Some(("text/javascript; charset=utf-8", JS)),
        CSS_PATH => Some(("text/css; charset=utf-8", CSS)),
        _ => None,
    }
}
