//! The web pages: plain HTML + JS, no build step, embedded in the binary.

pub const INDEX: &str = include_str!("../pages/index.html");
pub const TEACH: &str = include_str!("../pages/teach.html");
pub const CLASS: &str = include_str!("../pages/class.html");

/// A static asset by file name: (content type, body).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "app.js" => Some((
            "text/javascript; charset=utf-8",
            include_str!("../pages/app.js"),
        )),
        "style.css" => Some((
            "text/css; charset=utf-8",
            include_str!("../pages/style.css"),
        )),
        _ => None,
    }
}
