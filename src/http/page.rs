//! The web chat page served at `GET /`: one self-contained HTML file
//! (inline CSS and JavaScript) built into the binary, sent with headers
//! that let the browser run nothing but the page's own inline code and
//! talk to nothing but this server.

use super::render::{push_head, Persistence};

/// `web/index.html`, embedded at build time.
pub const PAGE: &str = include_str!("../../web/index.html");

/// Only the page itself and its inline script and style; requests only to
/// this server; no framing, no `<base>`, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; \
style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// `web/favicon.ico`, embedded at build time: a 16x16 icon, so a browser
/// that asks for it gets one instead of a 404 in its console.
pub const FAVICON: &[u8] = include_bytes!("../../web/favicon.ico");

/// Appends the icon's response (headers only for `HEAD`).
pub fn favicon(out: &mut Vec<u8>, head_only: bool, persistence: Persistence, secure: bool) {
    push_head(
        out,
        200,
        persistence,
        secure,
        "image/x-icon",
        FAVICON.len(),
        &[
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "public, max-age=86400"),
        ],
    );
    if !head_only {
        out.extend_from_slice(FAVICON);
    }
}

/// Appends the page's response (headers only for `HEAD`).
pub fn respond(out: &mut Vec<u8>, head_only: bool, persistence: Persistence, secure: bool) {
    push_head(
        out,
        200,
        persistence,
        secure,
        "text/html; charset=utf-8",
        PAGE.len(),
        &[
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-cache"),
        ],
    );
    if !head_only {
        out.extend_from_slice(PAGE.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_gives_the_length_without_the_body() {
        let mut get = Vec::new();
        respond(&mut get, false, Persistence::Implicit, false);
        let mut head = Vec::new();
        respond(&mut head, true, Persistence::Implicit, false);
        assert_eq!(get.len(), head.len() + PAGE.len());
        let text = String::from_utf8(head).unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", PAGE.len())));
        assert!(text.contains("Content-Security-Policy: default-src 'none';"));
    }
}
