//! Responses: a status line and headers, and each endpoint's reply as the
//! JSON the original goTalk clients read (`{"Id":1,"Name":"alice"}`, a
//! `/sync` array with `Content`, `UserIdSend` and `UserIdReceive`), or an
//! error in the line protocol's shape. Messages are not serialised again:
//! their stored JSON is copied, with the original keys put in front.
//! Nothing here ever writes a password or a hash: no reply holds one.

use super::routes::Endpoint;
use super::Refusal;
use crate::core::help::TOKEN_REJECTED;
use crate::error::{ErrorCode, Failure};
use crate::json;
use crate::message::Message;
use crate::request::{Reply, UserRef};
use std::sync::Arc;

/// What the response says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 keep-alive: nothing to say.
    Implicit,
    /// HTTP/1.0 that asked to stay open: `Connection: keep-alive`.
    KeepAlive,
    /// The server closes after this response: `Connection: close`.
    Close,
}

impl Persistence {
    pub fn of(keep_alive: bool, http10: bool) -> Persistence {
        match (keep_alive, http10) {
            (false, _) => Persistence::Close,
            (true, true) => Persistence::KeepAlive,
            (true, false) => Persistence::Implicit,
        }
    }
}

/// The reason phrase of each status the shim sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Sent on every response over TLS: browsers use https for this server
/// for a year, so a later plain `http://` link cannot be intercepted.
pub const HSTS: &str = "Strict-Transport-Security: max-age=31536000\r\n";

/// Appends a status line and headers, through the empty line; `secure`
/// (the connection is TLS) adds [`HSTS`].
pub fn push_head(
    out: &mut Vec<u8>,
    status: u16,
    persistence: Persistence,
    secure: bool,
    content_type: &str,
    content_length: usize,
    extra: &[(&str, &str)],
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    json::push_u64(out, status.into());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    json::push_u64(out, content_length as u64);
    out.extend_from_slice(b"\r\n");
    for (name, value) in extra {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match persistence {
        Persistence::Implicit => {}
        Persistence::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    if secure {
        out.extend_from_slice(HSTS.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a complete JSON response.
pub fn push_json(
    out: &mut Vec<u8>,
    status: u16,
    persistence: Persistence,
    secure: bool,
    body: &[u8],
    allow: Option<&str>,
) {
    push_json_retry(out, status, persistence, secure, body, allow, None)
}

/// [`push_json`], with `Retry-After` in whole seconds (rounded up) from a
/// refusal that says how long to wait; a 429 or 503 without one says 1.
fn push_json_retry(
    out: &mut Vec<u8>,
    status: u16,
    persistence: Persistence,
    secure: bool,
    body: &[u8],
    allow: Option<&str>,
    retry_after_ms: Option<u64>,
) {
    let retry_after = retry_after_ms.map(|ms| ms.div_ceil(1000).max(1).to_string());
    // At most four extra headers, in place: no list is built per response.
    let mut extra = [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("", ""),
        ("", ""),
    ];
    let mut n = 2;
    if let Some(methods) = allow {
        extra[n] = ("Allow", methods);
        n += 1;
    }
    if let Some(seconds) = &retry_after {
        extra[n] = ("Retry-After", seconds);
        n += 1;
    } else if status == 429 || status == 503 {
        extra[n] = ("Retry-After", "1");
        n += 1;
    }
    push_head(
        out,
        status,
        persistence,
        secure,
        "application/json",
        body.len(),
        &extra[..n],
    );
    out.extend_from_slice(body);
}

/// Appends the response to one endpoint's reply; returns its status.
pub fn reply(
    out: &mut Vec<u8>,
    endpoint: Endpoint,
    reply: &Reply,
    persistence: Persistence,
    secure: bool,
) -> u16 {
    let retry_after_ms = match reply {
        Reply::Error(failure) => failure.retry_after_ms,
        _ => None,
    };
    // The body is rendered first (its length goes in the head) into a
    // buffer the thread keeps, so a response allocates nothing of its own.
    BODY.with_borrow_mut(|body| {
        body.clear();
        let status = reply_body(body, endpoint, reply);
        push_json_retry(out, status, persistence, secure, body, None, retry_after_ms);
        if body.capacity() > KEEP_BODY_BYTES {
            *body = Vec::new();
        }
        status
    })
}

thread_local! {
    /// The body of the response being rendered (see [`reply`]).
    static BODY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A body buffer grown past this (a long `/sync` page) is let go after use.
const KEEP_BODY_BYTES: usize = 64 * 1024;

/// Appends the response to a request the shim itself refused.
pub fn refusal(out: &mut Vec<u8>, refusal: &Refusal, persistence: Persistence, secure: bool) {
    let mut body = Vec::new();
    error_body(&mut body, refusal.code, &refusal.message);
    push_json(
        out,
        refusal.status,
        persistence,
        secure,
        &body,
        refusal.allow,
    );
}

/// Writes one endpoint's reply body; returns the status.
pub fn reply_body(body: &mut Vec<u8>, endpoint: Endpoint, reply: &Reply) -> u16 {
    match (endpoint, reply) {
        (_, Reply::Error(failure)) => {
            error_body_retry(
                body,
                failure.code,
                http_message(failure),
                failure.retry_after_ms,
            );
            failure.code.http_status()
        }
        (Endpoint::Register | Endpoint::Lookup, Reply::User(user)) => {
            user_object(body, user);
            body.push(b'}');
            200
        }
        (Endpoint::Login, Reply::LoggedIn { token, user }) => {
            user_object(body, user);
            json::push_field_str(body, "SessionID", token);
            body.push(b'}');
            200
        }
        (Endpoint::Send, Reply::Sent { id, ts }) => {
            body.extend_from_slice(b"{\"ok\":true");
            json::push_field_u64(body, "id", *id);
            json::push_field_u64(body, "ts", *ts);
            body.push(b'}');
            200
        }
        (Endpoint::Sync, Reply::Messages(messages)) => {
            messages_array(body, messages);
            200
        }
        (Endpoint::Logout, Reply::LoggedOut { all, capped }) => {
            body.extend_from_slice(b"{\"ok\":true");
            json::push_field_str(body, "revoked", if *all { "all" } else { "token" });
            if *capped {
                json::push_field_str(body, "reason", "revocations_per_account");
            }
            body.push(b'}');
            200
        }
        (
            Endpoint::History | Endpoint::Conversations | Endpoint::Read,
            Reply::History { .. } | Reply::Conversations { .. } | Reply::ReadUpto(_),
        ) => {
            // The same body as the line protocol's reply.
            crate::line::render::reply_line(body, reply, None);
            body.pop();
            200
        }
        (endpoint, other) => {
            log::error!("the HTTP shim has no rendering of {other:?} for {endpoint:?}");
            let failure = Failure::new(ErrorCode::Internal, "the server gave an unexpected reply");
            error_body(body, failure.code, &failure.message);
            500
        }
    }
}

/// A failure's message as HTTP words it: where the core tells a line
/// client to send `LOGIN`, an HTTP client is told to post to `/login`.
fn http_message(failure: &Failure) -> &str {
    if failure.message == TOKEN_REJECTED {
        return "the token is invalid, expired or revoked; log in again with POST /login";
    }
    &failure.message
}

/// `{"Id":..,"Name":..` without the closing brace.
fn user_object(body: &mut Vec<u8>, user: &UserRef) {
    body.extend_from_slice(b"{\"Id\":");
    json::push_u64(body, user.id);
    json::push_field_str(body, "Name", &user.username);
}

/// `{"ok":false,"error":{"code":..,"message":..}}`, as the line protocol.
pub fn error_body(body: &mut Vec<u8>, code: ErrorCode, message: &str) {
    error_body_retry(body, code, message, None)
}

/// [`error_body`], with `"retry_after_ms"` in the error object when given.
fn error_body_retry(body: &mut Vec<u8>, code: ErrorCode, message: &str, retry: Option<u64>) {
    body.extend_from_slice(b"{\"ok\":false,\"error\":{\"code\":\"");
    body.extend_from_slice(code.as_str().as_bytes());
    body.push(b'"');
    json::push_field_str(body, "message", message);
    if let Some(ms) = retry {
        json::push_field_u64(body, "retry_after_ms", ms);
    }
    body.extend_from_slice(b"}}");
}

/// The `/sync` array: each message with the original keys first, then the
/// line protocol's fields as stored.
fn messages_array(body: &mut Vec<u8>, messages: &[Arc<Message>]) {
    body.push(b'[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"Content\":");
        body.extend_from_slice(m.content_json().as_bytes());
        json::push_field_u64(body, "UserIdSend", m.from_id);
        json::push_field_u64(body, "UserIdReceive", m.to_id);
        body.push(b',');
        // The stored object without its opening brace: `"id":..,...}`.
        body.extend_from_slice(&m.json().as_bytes()[1..]);
    }
    body.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Parties;
    use serde_json::{json, Value};

    fn body(endpoint: Endpoint, reply: &Reply) -> (u16, Value) {
        let mut out = Vec::new();
        let status = reply_body(&mut out, endpoint, reply);
        (status, serde_json::from_slice(&out).unwrap())
    }

    fn alice() -> UserRef {
        UserRef {
            id: 1,
            username: "alice".into(),
        }
    }

    #[test]
    fn account_replies_use_the_original_keys() {
        let user = Reply::User(alice());
        let expected = (200, json!({"Id":1,"Name":"alice"}));
        assert_eq!(body(Endpoint::Register, &user), expected);
        assert_eq!(body(Endpoint::Lookup, &user), expected);
        let logged_in = Reply::LoggedIn {
            token: "tok".into(),
            user: alice(),
        };
        assert_eq!(
            body(Endpoint::Login, &logged_in),
            (200, json!({"Id":1,"Name":"alice","SessionID":"tok"}))
        );
        assert_eq!(
            body(Endpoint::Send, &Reply::Sent { id: 7, ts: 9 }),
            (200, json!({"ok":true,"id":7,"ts":9}))
        );
    }

    #[test]
    fn sync_messages_carry_both_sets_of_keys() {
        let parties = Parties {
            from_id: 1,
            from: "alice",
            to_id: 2,
            to: "bob",
        };
        let a = Message::new(3, &parties, 5, "say \"hi\"\n", Some("c1"));
        let b = Message::new(4, &parties, 6, "x", None);
        let (status, v) = body(Endpoint::Sync, &Reply::Messages(vec![a, b]));
        assert_eq!(status, 200);
        assert_eq!(
            v,
            json!([
                {"Content":"say \"hi\"\n","UserIdSend":1,"UserIdReceive":2,"id":3,"from":"alice",
                 "from_id":1,"to":"bob","to_id":2,"content":"say \"hi\"\n","ts":5,"client_id":"c1"},
                {"Content":"x","UserIdSend":1,"UserIdReceive":2,"id":4,"from":"alice",
                 "from_id":1,"to":"bob","to_id":2,"content":"x","ts":6}
            ])
        );
        assert_eq!(
            body(Endpoint::Sync, &Reply::Messages(vec![])),
            (200, json!([]))
        );
    }

    #[test]
    fn errors_map_codes_to_statuses() {
        for (code, status) in [
            (ErrorCode::BadRequest, 400),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Conflict, 409),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::Unavailable, 503),
        ] {
            let reply = Reply::Error(Failure::new(code, "why \"so\""));
            assert_eq!(
                body(Endpoint::Send, &reply),
                (
                    status,
                    json!({"ok":false,"error":{"code":code.as_str(),"message":"why \"so\""}})
                )
            );
        }
        assert_eq!(body(Endpoint::Send, &Reply::Pong).0, 500);
    }

    #[test]
    fn a_throttled_request_says_when_to_retry_in_body_and_header() {
        let reply = Reply::Error(Failure::retry_after("slow down", 2500));
        assert_eq!(
            body(Endpoint::Login, &reply),
            (
                429,
                json!({"ok":false,"error":{"code":"rate_limited","message":"slow down","retry_after_ms":2500}})
            )
        );
        let mut out = Vec::new();
        super::reply(
            &mut out,
            Endpoint::Login,
            &reply,
            Persistence::Implicit,
            false,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Retry-After: 3\r\n"), "{text}");
    }

    #[test]
    fn a_rejected_token_sends_the_client_to_login_not_to_the_line_command() {
        let reply = Reply::Error(Failure::new(ErrorCode::Unauthorized, TOKEN_REJECTED));
        let (status, v) = body(Endpoint::Sync, &reply);
        assert_eq!(status, 401);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("/login"), "{message}");
        assert!(!message.contains("LOGIN"), "{message}");
    }

    #[test]
    fn heads_say_length_type_and_persistence() {
        let mut out = Vec::new();
        push_json(
            &mut out,
            405,
            Persistence::Close,
            false,
            b"{}",
            Some("POST"),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        for line in [
            "Content-Type: application/json\r\n",
            "Content-Length: 2\r\n",
            "Allow: POST\r\n",
            "Connection: close\r\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from {text:?}");
        }
        assert!(text.ends_with("\r\n\r\n{}"), "{text:?}");
        let mut out = Vec::new();
        push_json(&mut out, 429, Persistence::KeepAlive, false, b"{}", None);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Connection: keep-alive\r\n"), "{text}");
        assert!(text.contains("Retry-After: 1\r\n"), "{text}");
        let mut out = Vec::new();
        push_json(&mut out, 200, Persistence::Implicit, false, b"[]", None);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Connection:"), "{text}");
        assert!(!text.contains("Strict-Transport-Security"), "{text}");
    }

    #[test]
    fn responses_over_tls_carry_hsts() {
        let mut out = Vec::new();
        push_json(&mut out, 200, Persistence::Implicit, true, b"[]", None);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\r\nStrict-Transport-Security: max-age=31536000\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n[]"), "{text:?}");
    }
}
