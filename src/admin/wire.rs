//! The admin socket's words: one JSON object per line each way. A request
//! names its operation in `op` (`user.add`, `user.list`, `user.show`,
//! `user.export`, `user.disable`, `user.enable`, `user.reset-password`,
//! `user.logout`, `user.delete`, `stats`); a reply has `"ok":true` and its
//! fields, or `"ok":false` with `error` (a protocol error code) and
//! `message`. Parsing and rendering only; no I/O.

use super::{AdminReply, AdminRequest};
use crate::error::{ErrorCode, Failure};
use crate::logging::rfc3339_utc;
use crate::request::Reply;
use crate::store::admin::{AccountExport, AccountRow, AdminAnswer, ExportedMessage};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// `user list`'s page when no `--limit` is given, and its most.
pub const DEFAULT_LIST_LIMIT: usize = 100;
pub const MAX_LIST_LIMIT: usize = 10_000;

/// A request line, parsed.
#[derive(Debug)]
pub enum WireRequest {
    Core(AdminRequest),
    /// The `/stats` figures, answered by the loop.
    Stats,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    op: String,
    name: Option<String>,
    password: Option<String>,
    prefix: Option<String>,
    limit: Option<usize>,
}

/// Reads one request line, or says what is wrong with it.
pub fn parse(line: &[u8]) -> Result<WireRequest, Failure> {
    let line: Line = serde_json::from_slice(line).map_err(|e| {
        Failure::bad_request(format!(
            "an admin request is one JSON object per line, like {{\"op\":\"user.show\",\"name\":\"alice\"}}: {e}"
        ))
    })?;
    let name = || {
        line.name
            .clone()
            .ok_or_else(|| Failure::bad_request(format!("{} needs a \"name\"", line.op)))
    };
    let password = || {
        line.password
            .clone()
            .ok_or_else(|| Failure::bad_request(format!("{} needs a \"password\"", line.op)))
    };
    Ok(WireRequest::Core(match line.op.as_str() {
        "stats" => return Ok(WireRequest::Stats),
        "user.add" => AdminRequest::Add {
            name: name()?,
            password: password()?,
        },
        "user.reset-password" => AdminRequest::ResetPassword {
            name: name()?,
            password: password()?,
        },
        "user.list" => AdminRequest::List {
            prefix: line.prefix.clone().unwrap_or_default(),
            limit: line
                .limit
                .unwrap_or(DEFAULT_LIST_LIMIT)
                .clamp(1, MAX_LIST_LIMIT),
        },
        "user.show" => AdminRequest::Show { name: name()? },
        "user.export" => AdminRequest::Export { name: name()? },
        "user.disable" => AdminRequest::Disable { name: name()? },
        "user.enable" => AdminRequest::Enable { name: name()? },
        "user.logout" => AdminRequest::Logout { name: name()? },
        "user.delete" => AdminRequest::Delete { name: name()? },
        other => {
            return Err(Failure::new(
                ErrorCode::UnknownCommand,
                format!("unknown admin operation '{other}'"),
            ))
        }
    }))
}

/// The reply line (without its newline) to a request the core answered.
pub fn render(reply: &Reply) -> String {
    let value = match reply {
        Reply::User(user) => json!({"ok": true, "id": user.id, "name": &*user.username}),
        Reply::Admin(admin) => match &**admin {
            AdminReply::Done { what } => json!({"ok": true, "done": what}),
            AdminReply::Found {
                answer,
                sessions_online,
            } => found(answer, *sessions_online),
        },
        Reply::Error(failure) => return error(failure),
        other => {
            log::error!("admin: unexpected reply {other:?}");
            return error(&Failure::new(ErrorCode::Internal, "unexpected reply"));
        }
    };
    value.to_string()
}

/// A refusal's line.
pub fn error(failure: &Failure) -> String {
    json!({"ok": false, "error": failure.code.as_str(), "message": &*failure.message}).to_string()
}

/// `stats`' line: the `/stats` JSON under `stats`.
pub fn stats(figures: &str) -> String {
    match serde_json::from_str::<Value>(figures) {
        Ok(v) => json!({"ok": true, "stats": v}).to_string(),
        Err(e) => error(&Failure::new(ErrorCode::Internal, e.to_string())),
    }
}

fn time(ms: u64) -> Value {
    match ms {
        0 => Value::Null,
        ms => Value::String(rfc3339_utc(ms)),
    }
}

fn account(row: &AccountRow) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), row.id.into());
    m.insert("name".into(), row.username.clone().into());
    m.insert("created".into(), time(row.created));
    m.insert("last_login".into(), time(row.last_login));
    m.insert("disabled".into(), row.disabled.into());
    m
}

fn message(m: &ExportedMessage) -> Value {
    json!({"id": m.id, "from_id": m.from_id, "to_id": m.to_id, "ts": m.ts,
           "content": m.content, "client_id": m.client_id})
}

fn found(answer: &AdminAnswer, sessions_online: usize) -> Value {
    match answer {
        AdminAnswer::List(rows) => {
            let users: Vec<Value> = rows.iter().map(|r| Value::Object(account(r))).collect();
            json!({"ok": true, "users": users})
        }
        AdminAnswer::Show(None) => gone(),
        AdminAnswer::Export(e) if e.row.is_none() => gone(),
        AdminAnswer::Show(Some(record)) => {
            let mut m = account(&record.row);
            m.insert("sessions_online".into(), sessions_online.into());
            m.insert(
                "unacknowledged_messages".into(),
                record.pending_messages.into(),
            );
            m.insert("unacknowledged_bytes".into(), record.pending_bytes.into());
            // Messages in its conversations; null with --memory.
            m.insert(
                "history_messages".into(),
                record.history_messages.map_or(Value::Null, Value::from),
            );
            json!({"ok": true, "user": m})
        }
        AdminAnswer::Export(e) => json!({"ok": true, "export": export(e, sessions_online)}),
    }
}

/// The account was deleted between finding it and reading its record.
fn gone() -> Value {
    json!({"ok": false, "error": "not_found", "message": "the account is gone"})
}

fn export(e: &AccountExport, sessions_online: usize) -> Value {
    let mut m = e.row.as_ref().map(account).unwrap_or_default();
    m.insert("tokens_valid_from".into(), time(e.tokens_valid_from));
    m.insert("sessions_online".into(), sessions_online.into());
    let ids: Vec<Value> = e
        .client_ids
        .iter()
        .map(|(cid, id, ts)| json!({"client_id": cid, "message_id": id, "ts": ts}))
        .collect();
    let revoked: Vec<Value> = e
        .revoked_tokens
        .iter()
        .map(|(t, exp)| json!({"token_id": t, "expires": exp}))
        .collect();
    let markers: Vec<Value> = e
        .markers
        .iter()
        .map(|(peer, upto)| json!({"peer_id": peer, "upto": upto}))
        .collect();
    json!({
        "account": m,
        "messages_sent": e.sent.iter().map(message).collect::<Vec<_>>(),
        "messages_received": e.received.iter().map(message).collect::<Vec<_>>(),
        "client_ids": ids,
        "revoked_tokens": revoked,
        // Every message of its conversations, and how far it has read each.
        "history": e.history.iter().map(message).collect::<Vec<_>>(),
        "markers": markers,
    })
}
