//! The contract's error codes, the failure a command replies with, and the
//! reasons a connection is closed (for logs).

use std::borrow::Cow;
use std::fmt;

/// The error codes of the wire contract; nothing else is ever sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    UnknownCommand,
    Unauthorized,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order (`code as usize` indexes it).
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownCommand,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the shim answers this code with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::UnknownCommand => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// A failed request: a contract code plus a message written for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// For a refusal that passes with time (LOGIN throttling, REGISTER per
    /// address): how long to wait before trying again. The doors render it
    /// as `retry_after_ms` (and HTTP's `Retry-After` header).
    pub retry_after_ms: Option<u64>,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Failure {
        Failure {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// A `rate_limited` failure that passes after `retry_after_ms`.
    pub fn retry_after(message: impl Into<Cow<'static, str>>, retry_after_ms: u64) -> Failure {
        Failure {
            retry_after_ms: Some(retry_after_ms),
            ..Failure::new(ErrorCode::RateLimited, message)
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Failure {
        Failure::new(ErrorCode::BadRequest, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// Why the server closed a connection; logged, never sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its end.
    PeerClosed,
    /// The client asked to (QUIT, or HTTP `Connection: close`).
    ClientQuit,
    /// Output for the client piled up past the limit: it reads too slowly.
    SlowConsumer,
    /// A malformed HTTP request that cannot be recovered from.
    ProtocolError,
    /// A socket error.
    IoError,
    /// The server is at its connection limit.
    ServerFull,
    /// The peer address is at its connection limit.
    AddressFull,
    /// All clients together left more output unread than the server's
    /// total budget, and this one held the most.
    OutputBudget,
    /// A line connection did not log in in time (or never said which door).
    LoginTimeout,
    /// An HTTP request did not arrive whole in time.
    RequestTimeout,
    /// An HTTP connection stayed idle past its keep-alive time.
    IdleTimeout,
    /// The server is shutting down: everything owed was written.
    ServerShutdown,
    /// The server is shutting down and its time ran out first.
    ShutdownTimeout,
    /// A TLS protocol error (a bad or truncated handshake, a bad record),
    /// or a TLS handshake on a server without a certificate.
    TlsError,
    /// The TLS handshake did not finish in time.
    TlsHandshakeTimeout,
    /// A plain connection to a server that requires TLS (told why first).
    PlaintextRefused,
    /// A PROXY header from an untrusted peer, a malformed one, or none
    /// from a trusted proxy under `--proxy-protocol`.
    ProxyRefused,
    /// A TLS handshake past `--tls-handshakes-per-address-second`.
    HandshakeRate,
    /// WebSocket: the client's close handshake (its code echoed).
    WsClosed,
    /// WebSocket close 1002: an unmasked frame, reserved bits, an unknown
    /// opcode, a bad control frame or continuation.
    WsProtocolError,
    /// WebSocket close 1003: a binary message.
    WsUnsupportedData,
    /// WebSocket close 1007: text that is not UTF-8.
    WsInvalidUtf8,
    /// WebSocket close 1009: a message over `--max-line`.
    WsMessageTooBig,
    /// WebSocket: no answer to a keep-alive ping within
    /// `--ws-ping-interval`.
    WsPingTimeout,
}

impl CloseReason {
    /// Every reason, in declaration order.
    pub const ALL: [CloseReason; 24] = [
        CloseReason::PeerClosed,
        CloseReason::ClientQuit,
        CloseReason::SlowConsumer,
        CloseReason::ProtocolError,
        CloseReason::IoError,
        CloseReason::ServerFull,
        CloseReason::AddressFull,
        CloseReason::OutputBudget,
        CloseReason::LoginTimeout,
        CloseReason::RequestTimeout,
        CloseReason::IdleTimeout,
        CloseReason::ServerShutdown,
        CloseReason::ShutdownTimeout,
        CloseReason::TlsError,
        CloseReason::TlsHandshakeTimeout,
        CloseReason::PlaintextRefused,
        CloseReason::ProxyRefused,
        CloseReason::HandshakeRate,
        CloseReason::WsClosed,
        CloseReason::WsProtocolError,
        CloseReason::WsUnsupportedData,
        CloseReason::WsInvalidUtf8,
        CloseReason::WsMessageTooBig,
        CloseReason::WsPingTimeout,
    ];

    /// The reason as logs and the `closed` figures name it.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::ClientQuit => "client_quit",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::IoError => "io_error",
            CloseReason::ServerFull => "server_full",
            CloseReason::AddressFull => "address_full",
            CloseReason::OutputBudget => "output_budget",
            CloseReason::LoginTimeout => "login_timeout",
            CloseReason::RequestTimeout => "request_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::ServerShutdown => "server_shutdown",
            CloseReason::ShutdownTimeout => "shutdown_timeout",
            CloseReason::TlsError => "tls_error",
            CloseReason::TlsHandshakeTimeout => "tls_handshake_timeout",
            CloseReason::PlaintextRefused => "plaintext_refused",
            CloseReason::ProxyRefused => "proxy_refused",
            CloseReason::HandshakeRate => "tls_handshake_rate",
            CloseReason::WsClosed => "ws_closed",
            CloseReason::WsProtocolError => "ws_protocol_error",
            CloseReason::WsUnsupportedData => "ws_unsupported_data",
            CloseReason::WsInvalidUtf8 => "ws_invalid_payload",
            CloseReason::WsMessageTooBig => "ws_message_too_big",
            CloseReason::WsPingTimeout => "ws_ping_timeout",
        }
    }

    /// Whether the client should get everything written before the close
    /// (a close it asked for, a refusal it is told, or the server's stop),
    /// rather than being cut off.
    pub fn is_orderly(self) -> bool {
        matches!(
            self,
            CloseReason::ClientQuit
                | CloseReason::ServerShutdown
                | CloseReason::ProtocolError
                | CloseReason::PlaintextRefused
                | CloseReason::WsClosed
                | CloseReason::WsProtocolError
                | CloseReason::WsUnsupportedData
                | CloseReason::WsInvalidUtf8
                | CloseReason::WsMessageTooBig
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_close_reason_has_its_own_snake_case_name() {
        let names: HashSet<&str> = CloseReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), CloseReason::ALL.len());
        for name in names {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
        // Names the figures and the operator docs use.
        assert_eq!(CloseReason::HandshakeRate.name(), "tls_handshake_rate");
        assert_eq!(CloseReason::PeerClosed.name(), "peer_closed");
        assert_eq!(CloseReason::OutputBudget.name(), "output_budget");
    }

    #[test]
    fn only_closes_the_client_is_owed_an_answer_for_are_orderly() {
        let orderly: Vec<CloseReason> = CloseReason::ALL
            .into_iter()
            .filter(|r| r.is_orderly())
            .collect();
        assert_eq!(
            orderly,
            [
                CloseReason::ClientQuit,
                CloseReason::ProtocolError,
                CloseReason::ServerShutdown,
                CloseReason::PlaintextRefused,
                CloseReason::WsClosed,
                CloseReason::WsProtocolError,
                CloseReason::WsUnsupportedData,
                CloseReason::WsInvalidUtf8,
                CloseReason::WsMessageTooBig,
            ]
        );
    }

    #[test]
    fn every_error_code_has_its_wire_name_and_status() {
        let names: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, i);
            assert!((400..600).contains(&code.http_status()));
        }
    }
}
