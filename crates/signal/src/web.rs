//! The browser client (`assets/web/`), embedded in the binary so a server needs one file.
//!
//! [`pages`] answers `GET /` (and `/index.html`), `/app.js`, `/negotiation.js` and `/style.css`;
//! anything else is left to the server's 404. The files change only with the binary, but a
//! browser must not keep an old script next to a new page after an upgrade, so every file is
//! sent with `Cache-Control: no-cache` (they are small). The client itself is documented in
//! `assets/web/app.js` and `assets/web/negotiation.js`; this module only serves it.

use std::sync::Arc;

use crate::http::{RequestHead, Response};
use crate::server::PageHandler;

/// `assets/web/index.html`.
pub const INDEX_HTML: &str = include_str!("../../../assets/web/index.html");
/// `assets/web/app.js`.
pub const APP_JS: &str = include_str!("../../../assets/web/app.js");
/// `assets/web/negotiation.js`: the call's negotiation rules (the same as `call::core`).
pub const NEGOTIATION_JS: &str = include_str!("../../../assets/web/negotiation.js");
/// `assets/web/style.css`.
pub const STYLE_CSS: &str = include_str!("../../../assets/web/style.css");

const CACHE_CONTROL: &str = "no-cache";

/// The web client's files as a [`PageHandler`] for [`crate::Config::pages`].
pub fn pages() -> PageHandler {
    Arc::new(|head: &RequestHead| page(&head.path))
}

/// The response for `path` (without the query string), or `None` when it is not a client file.
pub fn page(path: &str) -> Option<Response> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/negotiation.js" => ("text/javascript; charset=utf-8", NEGOTIATION_JS),
        "/style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        _ => return None,
    };
    Some(Response {
        status: 200,
        content_type,
        cache_control: CACHE_CONTROL,
        body: body.as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_four_files_and_nothing_else() {
        let index = page("/").map(|r| r.content_type);
        assert_eq!(index, Some("text/html; charset=utf-8"));
        assert_eq!(
            page("/index.html").map(|r| r.body),
            page("/").map(|r| r.body)
        );
        assert_eq!(
            page("/app.js").map(|r| r.content_type),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(
            page("/negotiation.js").map(|r| r.content_type),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(
            page("/style.css").map(|r| r.content_type),
            Some("text/css; charset=utf-8")
        );
        assert!(page("/app.js.map").is_none());
        assert!(page("/../Cargo.toml").is_none());
    }

    #[test]
    fn the_page_links_its_script_and_stylesheet() {
        assert!(INDEX_HTML.contains(r#"<script src="app.js"></script>"#));
        // The rules first: app.js uses them.
        let rules = INDEX_HTML.find(r#"<script src="negotiation.js"></script>"#);
        assert!(rules.is_some_and(|i| Some(i) < INDEX_HTML.find(r#"<script src="app.js">"#)));
        assert!(INDEX_HTML.contains(r#"href="style.css""#));
    }
}
