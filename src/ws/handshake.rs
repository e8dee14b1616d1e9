//! The opening handshake (RFC 6455 section 4.2): what a `GET /ws` request
//! must say to be switched to the WebSocket door, the `101 Switching
//! Protocols` answer (its `Sec-WebSocket-Accept` derived by `tungstenite`)
//! and the HTTP error a request that may not upgrade gets instead. The
//! HTTP door has checked `Host` and `Origin` already, as for every request.
//!
//! The headers are noted while the HTTP door parses the head
//! ([`UpgradeHeaders::note`]), borrowed from the input, nothing allocated.

use crate::config::Config;
use crate::error::ErrorCode;
use crate::http::parse::Request;
use crate::http::render::{self, Persistence};
use crate::http::Refusal;

/// The subprotocol the server speaks, echoed when a client offers it.
pub const SUBPROTOCOL: &str = "gotalk.v1";

/// The only protocol version (RFC 6455).
const VERSION: &[u8] = b"13";

/// What a request's head says about upgrading to a WebSocket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpgradeHeaders<'a> {
    /// `Upgrade` names `websocket`.
    pub websocket: bool,
    /// `Connection` names `upgrade`.
    pub connection_upgrade: bool,
    /// `Sec-WebSocket-Key`.
    pub key: Option<&'a [u8]>,
    /// `Sec-WebSocket-Version`.
    pub version: Option<&'a [u8]>,
    /// `Sec-WebSocket-Protocol` offers [`SUBPROTOCOL`].
    pub offers_subprotocol: bool,
}

impl<'a> UpgradeHeaders<'a> {
    /// Notes a header, if it is one of the handshake's.
    pub fn note(&mut self, name: &str, value: &'a [u8]) {
        if name.eq_ignore_ascii_case("upgrade") {
            self.websocket |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"websocket"));
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            self.key = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            self.version = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            self.offers_subprotocol |= tokens(value).any(|t| t == SUBPROTOCOL.as_bytes());
        }
    }

    /// Notes one token of the `Connection` header.
    pub fn note_connection(&mut self, token: &[u8]) {
        self.connection_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
    }
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(|t| t.trim_ascii())
}

/// An upgrade the server takes.
#[derive(Debug, PartialEq, Eq)]
pub struct Accepted<'a> {
    key: &'a [u8],
    subprotocol: bool,
}

/// Whether `request` (a `GET /ws` whose `Host` and `Origin` passed) may
/// switch to the WebSocket door.
pub fn accept<'a>(request: &Request<'a>, config: &Config) -> Result<Accepted<'a>, Refusal> {
    if config.no_websocket {
        return Err(Refusal::new(
            404,
            ErrorCode::NotFound,
            "WebSocket is turned off on this server (--no-websocket); use the HTTP \
             endpoints (POST /send, /sync) or the line protocol",
        ));
    }
    let upgrade = &request.upgrade;
    if !upgrade.websocket || !upgrade.connection_upgrade {
        return Err(Refusal::new(
            426,
            ErrorCode::BadRequest,
            "GET /ws opens a WebSocket: it needs the headers Upgrade: websocket and \
             Connection: Upgrade (a proxy in front may have dropped them)",
        ));
    }
    if request.http10 {
        return Err(Refusal::new(
            400,
            ErrorCode::BadRequest,
            "a WebSocket needs HTTP/1.1",
        ));
    }
    if upgrade.version != Some(VERSION) {
        return Err(Refusal::new(
            426,
            ErrorCode::BadRequest,
            "the WebSocket version this server speaks is 13 (Sec-WebSocket-Version: 13)",
        ));
    }
    // A key is 16 random bytes in base64: 24 characters.
    let key = upgrade.key.filter(|k| k.len() == 24).ok_or_else(|| {
        Refusal::new(
            400,
            ErrorCode::BadRequest,
            "Sec-WebSocket-Key is missing or is not 16 bytes in base64",
        )
    })?;
    if !request.body.is_empty() {
        return Err(Refusal::new(
            400,
            ErrorCode::BadRequest,
            "a WebSocket upgrade has no body",
        ));
    }
    Ok(Accepted {
        key,
        subprotocol: upgrade.offers_subprotocol,
    })
}

/// Appends `101 Switching Protocols` for an accepted upgrade.
pub fn switching_protocols(out: &mut Vec<u8>, accepted: &Accepted<'_>, secure: bool) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: ",
    );
    let accept = tungstenite::handshake::derive_accept_key(accepted.key);
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if accepted.subprotocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(SUBPROTOCOL.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if secure {
        out.extend_from_slice(render::HSTS.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the HTTP error for an upgrade that is refused (426 says which
/// version and upgrade the server takes).
pub fn refusal(out: &mut Vec<u8>, refusal: &Refusal, persistence: Persistence, secure: bool) {
    let mut body = Vec::new();
    render::error_body(&mut body, refusal.code, &refusal.message);
    let extra: &[(&str, &str)] = if refusal.status == 426 {
        &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")]
    } else {
        &[]
    };
    render::push_head(
        out,
        refusal.status,
        persistence,
        secure,
        "application/json",
        body.len(),
        extra,
    );
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{Reader, Step};

    fn parsed(head: &str, check: impl FnOnce(Result<Accepted<'_>, Refusal>)) {
        let mut reader = Reader::default();
        match reader.next(head.as_bytes()) {
            Step::Request { request, .. } => check(accept(&request, &Config::default())),
            other => panic!("{other:?}"),
        }
    }

    const GOOD: &str = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: WebSocket\r\n\
Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, gotalk.v1\r\n\r\n";

    #[test]
    fn the_rfc_example_key_is_answered_with_its_accept_and_the_subprotocol() {
        parsed(GOOD, |result| {
            let accepted = result.unwrap();
            let mut out = Vec::new();
            switching_protocols(&mut out, &accepted, false);
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
            // RFC 6455 section 1.3.
            assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
            assert!(text.contains("\r\nSec-WebSocket-Protocol: gotalk.v1\r\n"));
            assert!(text.ends_with("\r\n\r\n"));
        });
        let other_protocol = GOOD.replace("chat, gotalk.v1", "chat");
        parsed(&other_protocol, |result| {
            let mut out = Vec::new();
            switching_protocols(&mut out, &result.unwrap(), true);
            let text = String::from_utf8(out).unwrap();
            assert!(!text.contains("Sec-WebSocket-Protocol"));
            assert!(text.contains("Strict-Transport-Security"));
        });
    }

    #[test]
    fn an_upgrade_missing_a_piece_is_refused() {
        for (from, to, status) in [
            ("Upgrade: WebSocket\r\n", "", 426),
            ("keep-alive, Upgrade", "keep-alive", 426),
            ("Version: 13", "Version: 8", 426),
            ("dGhlIHNhbXBsZSBub25jZQ==", "short", 400),
            ("HTTP/1.1", "HTTP/1.0", 400),
        ] {
            let head = GOOD.replace(from, to);
            parsed(&head, |result| {
                assert_eq!(result.unwrap_err().status, status, "{from} -> {to}")
            });
        }
    }

    #[test]
    fn a_version_refusal_says_which_version() {
        let mut out = Vec::new();
        let refused = Refusal::new(426, ErrorCode::BadRequest, "v13");
        refusal(&mut out, &refused, Persistence::Close, false);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }
}
