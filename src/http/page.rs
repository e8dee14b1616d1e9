//! The web chat page served at `GET /` and the files it loads: the HTML
//! (`web/index.html`), its scripts (`web/app.js` and the files it uses),
//! its style
//! (`web/app.css`) and its icon, all built into the binary. The page has no
//! inline script or style, so its Content-Security-Policy lets the browser
//! run only files from this server and talk only to this server.

use super::render::{push_head, Persistence};
use super::routes::Asset;

/// `web/index.html`, embedded at build time.
pub const PAGE: &str = include_str!("../../web/index.html");
/// `web/app.js`: the page's views, rendering, sending and event handling.
pub const SCRIPT: &str = include_str!("../../web/app.js");
/// `web/cache.js`, `web/transport.js`, `web/convs.js`, `web/ws.js`: the
/// scripts app.js uses (loaded before it): the localStorage cache, the HTTP
/// transport, the conversations the server keeps, the WebSocket transport.
pub const CACHE_SCRIPT: &str = include_str!("../../web/cache.js");
pub const TRANSPORT_SCRIPT: &str = include_str!("../../web/transport.js");
pub const CONVS_SCRIPT: &str = include_str!("../../web/convs.js");
pub const WS_SCRIPT: &str = include_str!("../../web/ws.js");
/// `web/app.css`: all of the page's style.
pub const STYLE: &str = include_str!("../../web/app.css");
/// `web/favicon.ico`: a 16x16 icon, so a browser that asks for it gets one
/// instead of a 404 in its console.
pub const FAVICON: &[u8] = include_bytes!("../../web/favicon.ico");

/// Script, style and images only from this server, as files (no inline
/// code, no `eval`); requests only to this server; no plugins, no framing,
/// no `<base>`, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

impl Asset {
    pub fn body(self) -> &'static [u8] {
        match self {
            Asset::Page => PAGE.as_bytes(),
            Asset::Script => SCRIPT.as_bytes(),
            Asset::Style => STYLE.as_bytes(),
            Asset::Favicon => FAVICON,
            Asset::CacheScript => CACHE_SCRIPT.as_bytes(),
            Asset::TransportScript => TRANSPORT_SCRIPT.as_bytes(),
            Asset::ConvsScript => CONVS_SCRIPT.as_bytes(),
            Asset::WsScript => WS_SCRIPT.as_bytes(),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Asset::Page => "text/html; charset=utf-8",
            Asset::Script
            | Asset::CacheScript
            | Asset::TransportScript
            | Asset::ConvsScript
            | Asset::WsScript => "text/javascript; charset=utf-8",
            Asset::Style => "text/css; charset=utf-8",
            Asset::Favicon => "image/x-icon",
        }
    }
}

/// Headers every asset carries: its type is the one stated, and no
/// address of this server leaks to another site.
const COMMON: [(&str, &str); 2] = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

/// Appends the asset's response (headers only for `HEAD`).
pub fn respond(
    out: &mut Vec<u8>,
    asset: Asset,
    head_only: bool,
    persistence: Persistence,
    secure: bool,
) {
    let body = asset.body();
    let [nosniff, referrer] = COMMON;
    match asset {
        Asset::Page => push_head(
            out,
            200,
            persistence,
            secure,
            asset.content_type(),
            body.len(),
            &[
                ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
                nosniff,
                referrer,
                ("X-Frame-Options", "DENY"),
                ("Cache-Control", "no-cache"),
            ],
        ),
        // Revalidated each load, so a new build's script meets its page.
        Asset::Script
        | Asset::CacheScript
        | Asset::TransportScript
        | Asset::ConvsScript
        | Asset::WsScript
        | Asset::Style => push_head(
            out,
            200,
            persistence,
            secure,
            asset.content_type(),
            body.len(),
            &[nosniff, referrer, ("Cache-Control", "no-cache")],
        ),
        Asset::Favicon => push_head(
            out,
            200,
            persistence,
            secure,
            asset.content_type(),
            body.len(),
            &[
                nosniff,
                referrer,
                ("Cache-Control", "public, max-age=86400"),
            ],
        ),
    }
    if !head_only {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_gives_the_length_without_the_body() {
        for asset in [
            Asset::Page,
            Asset::Script,
            Asset::Style,
            Asset::Favicon,
            Asset::CacheScript,
            Asset::TransportScript,
            Asset::ConvsScript,
            Asset::WsScript,
        ] {
            let mut get = Vec::new();
            respond(&mut get, asset, false, Persistence::Implicit, false);
            let mut head = Vec::new();
            respond(&mut head, asset, true, Persistence::Implicit, false);
            assert_eq!(get.len(), head.len() + asset.body().len());
            let text = String::from_utf8(head).unwrap();
            assert!(text.contains(&format!("Content-Length: {}\r\n", asset.body().len())));
            assert!(text.contains("X-Content-Type-Options: nosniff\r\n"));
        }
    }

    #[test]
    fn the_policy_allows_no_inline_code() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        let mut head = Vec::new();
        respond(&mut head, Asset::Page, true, Persistence::Implicit, false);
        let text = String::from_utf8(head).unwrap();
        assert!(text.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"));
    }

    #[test]
    fn the_page_has_no_inline_script_style_or_handlers() {
        let lower = PAGE.to_ascii_lowercase();
        assert!(!lower.contains("<style"), "inline <style>");
        assert!(!lower.contains("style="), "style attribute");
        for (at, _) in lower.match_indices(" on") {
            let name: String = lower[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let next = lower[at + 1 + name.len()..].chars().next();
            assert!(next != Some('='), "an inline event handler: {name}=");
        }
        for tag in lower.split("<script").skip(1) {
            let head = &tag[..tag.find('>').expect("closed tag")];
            assert!(head.contains("src="), "inline <script>");
        }
        assert!(PAGE.contains(r#"<script src="/app.js""#));
        assert!(PAGE.contains(r#"<link rel="stylesheet" href="/app.css">"#));
    }
}
