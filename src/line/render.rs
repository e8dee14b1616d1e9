//! Replies and server events as JSON lines, appended straight to a
//! connection's output buffer. A message's JSON was written once when it
//! was stored; here it is only copied.
//!
//! One reply is for people only: HELP asked in the text form (from `nc`)
//! is the help text as plain lines, none starting with `{`, closed by the
//! request's one JSON reply line, `{"ok":true}`. Asked in JSON, HELP is a
//! single line with the text in `"help"`.

use crate::core::help::HELP;
use crate::json;
use crate::line::parse::Form;
use crate::message::Message;
use crate::request::{Conversation, Note, Reply, UserRef};
use serde_json::value::RawValue;

fn push_user(out: &mut Vec<u8>, user: &UserRef) {
    out.extend_from_slice(b"{\"id\":");
    json::push_u64(out, user.id);
    json::push_field_str(out, "username", &user.username);
    out.push(b'}');
}

/// Appends the reply to a request that came in `form`: its reply line, and
/// for the text form's HELP the readable lines before it.
pub fn reply(out: &mut Vec<u8>, reply: &Reply, tag: Option<&RawValue>, form: Form) {
    if form == Form::Text && matches!(reply, Reply::Help) {
        for line in HELP.lines() {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        return reply_line(out, &Reply::Acked, tag);
    }
    reply_line(out, reply, tag)
}

/// Appends the reply line (with its `\n`), echoing `tag` if the request had one.
pub fn reply_line(out: &mut Vec<u8>, reply: &Reply, tag: Option<&RawValue>) {
    match reply {
        Reply::Error(failure) => {
            out.extend_from_slice(b"{\"ok\":false,\"error\":{\"code\":\"");
            out.extend_from_slice(failure.code.as_str().as_bytes());
            out.extend_from_slice(b"\"");
            json::push_field_str(out, "message", &failure.message);
            if let Some(ms) = failure.retry_after_ms {
                json::push_field_u64(out, "retry_after_ms", ms);
            }
            out.push(b'}');
        }
        _ => out.extend_from_slice(b"{\"ok\":true"),
    }
    match reply {
        Reply::User(user) => {
            out.extend_from_slice(b",\"user\":");
            push_user(out, user);
        }
        Reply::LoggedIn { token, user } => {
            json::push_field_str(out, "token", token);
            out.extend_from_slice(b",\"user\":");
            push_user(out, user);
        }
        Reply::Sent { id, ts } => {
            json::push_field_u64(out, "id", *id);
            json::push_field_u64(out, "ts", *ts);
        }
        Reply::Messages(messages) => {
            out.extend_from_slice(b",\"messages\":[");
            for (i, m) in messages.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(m.json().as_bytes());
            }
            out.push(b']');
        }
        Reply::LoggedOut { all, capped } => {
            json::push_field_str(out, "revoked", if *all { "all" } else { "token" });
            if *capped {
                json::push_field_str(out, "reason", "revocations_per_account");
            }
        }
        Reply::History { messages, more } => {
            out.extend_from_slice(b",\"messages\":[");
            for (i, m) in messages.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(m.json().as_bytes());
            }
            out.extend_from_slice(if *more {
                b"],\"more\":true"
            } else {
                b"],\"more\":false"
            });
        }
        Reply::Conversations { list, more } => {
            out.extend_from_slice(b",\"conversations\":[");
            for (i, c) in list.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                conversation(out, c);
            }
            out.extend_from_slice(if *more {
                b"],\"more\":true"
            } else {
                b"],\"more\":false"
            });
        }
        Reply::ReadUpto(upto) => json::push_field_u64(out, "upto", *upto),
        Reply::Pong => out.extend_from_slice(b",\"pong\":true"),
        Reply::Help => json::push_field_str(out, "help", HELP),
        Reply::Acked | Reply::Bye | Reply::Error(_) | Reply::Admin(_) => {}
    }
    if let Some(tag) = tag {
        out.extend_from_slice(b",\"tag\":");
        out.extend_from_slice(tag.get().as_bytes());
    }
    out.extend_from_slice(b"}\n");
}

/// One entry of a CONVERSATIONS reply.
fn conversation(out: &mut Vec<u8>, c: &Conversation) {
    out.extend_from_slice(b"{\"with\":");
    json::push_str(out, &c.with);
    json::push_field_u64(out, "with_id", c.with_id);
    out.extend_from_slice(b",\"last\":");
    match &c.last {
        Some(m) => out.extend_from_slice(m.json().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    json::push_field_u64(out, "unread", c.unread);
    json::push_field_u64(out, "read_upto", c.read_upto);
    out.push(b'}');
}

/// Appends a `sent` or `read` event.
pub fn note_event(out: &mut Vec<u8>, note: &Note) {
    match note {
        Note::Sent(message) => {
            out.extend_from_slice(b"{\"event\":\"sent\",\"message\":");
            out.extend_from_slice(message.json().as_bytes());
        }
        Note::Read(read) => {
            out.extend_from_slice(b"{\"event\":\"read\",\"by\":");
            json::push_str(out, &read.by);
            json::push_field_u64(out, "by_id", read.by_id);
            json::push_field_str(out, "with", &read.with);
            json::push_field_u64(out, "with_id", read.with_id);
            json::push_field_u64(out, "upto", read.upto);
        }
    }
    out.extend_from_slice(b"}\n");
}

/// Appends a push event for a new message.
pub fn message_event(out: &mut Vec<u8>, message: &Message) {
    out.extend_from_slice(b"{\"event\":\"message\",\"message\":");
    out.extend_from_slice(message.json().as_bytes());
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, Failure};
    use crate::message::Parties;
    use crate::request::ReadNote;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn render(reply: &Reply, tag: Option<&str>) -> Value {
        let raw = tag.map(|t| RawValue::from_string(t.to_string()).unwrap());
        let mut out = Vec::new();
        reply_line(&mut out, reply, raw.as_deref());
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn replies_match_the_contract() {
        let alice = UserRef {
            id: 1,
            username: "alice".into(),
        };
        assert_eq!(
            render(&Reply::User(alice.clone()), None),
            json!({"ok":true,"user":{"id":1,"username":"alice"}})
        );
        assert_eq!(
            render(
                &Reply::LoggedIn {
                    token: "t".into(),
                    user: alice
                },
                None
            ),
            json!({"ok":true,"token":"t","user":{"id":1,"username":"alice"}})
        );
        assert_eq!(
            render(&Reply::Sent { id: 17, ts: 5 }, None),
            json!({"ok":true,"id":17,"ts":5})
        );
        assert_eq!(
            render(&Reply::Pong, Some("[1]")),
            json!({"ok":true,"pong":true,"tag":[1]})
        );
        assert_eq!(render(&Reply::Acked, None), json!({"ok":true}));
        assert!(render(&Reply::Help, None)["help"]
            .as_str()
            .unwrap()
            .contains("SEND"));
        let failure = Failure::new(ErrorCode::NotFound, "no \"bob\"");
        assert_eq!(
            render(&Reply::Error(failure), Some("\"x\"")),
            json!({"ok":false,"error":{"code":"not_found","message":"no \"bob\""},"tag":"x"})
        );
        let wait = Failure::retry_after("too many", 1500);
        assert_eq!(
            render(&Reply::Error(wait), None),
            json!({"ok":false,"error":{"code":"rate_limited","message":"too many","retry_after_ms":1500}})
        );
    }

    #[test]
    fn text_form_help_is_readable_lines_closed_by_one_json_reply() {
        let mut out = Vec::new();
        reply(&mut out, &Reply::Help, None, Form::Text);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("\\n"), "escaped newlines: {text}");
        let lines: Vec<&str> = text.lines().collect();
        let (last, help) = lines.split_last().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(last).unwrap(),
            json!({"ok":true})
        );
        assert_eq!(help.join("\n"), HELP);
        for line in help {
            assert!(!line.trim().is_empty(), "a blank line in HELP");
            assert!(
                !line.starts_with('{'),
                "a HELP line looks like JSON: {line}"
            );
        }
        // The JSON form, and every other reply in the text form: one line.
        for form in [Form::Json, Form::Text] {
            let mut out = Vec::new();
            let json_help = if form == Form::Json {
                Reply::Help
            } else {
                Reply::Pong
            };
            reply(&mut out, &json_help, None, form);
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        }
        let mut out = Vec::new();
        reply(&mut out, &Reply::Help, None, Form::Json);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["help"], HELP);
    }

    #[test]
    fn messages_and_events_carry_the_stored_json() {
        let parties = Parties {
            from_id: 1,
            from: "alice",
            to_id: 2,
            to: "bob",
        };
        let m = Message::new(3, &parties, 9, "hi\n", None);
        let v = render(&Reply::Messages(vec![m.clone(), m.clone()]), None);
        assert_eq!(v["messages"][1]["content"], "hi\n");
        let mut out = Vec::new();
        message_event(&mut out, &m);
        let e: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(e["event"], "message");
        assert_eq!(e["message"]["id"], 3);
        assert!(e.get("ok").is_none());
    }

    #[test]
    fn history_replies_and_events_match_the_protocol() {
        let parties = Parties {
            from_id: 1,
            from: "alice",
            to_id: 2,
            to: "bob",
        };
        let m = Message::new(3, &parties, 9, "hi", None);
        let page = Reply::History {
            messages: vec![m.clone()],
            more: true,
        };
        let v = render(&page, None);
        assert_eq!(
            (v["messages"][0]["id"].as_u64(), v["more"].as_bool()),
            (Some(3), Some(true))
        );
        let list = Reply::Conversations {
            list: vec![Conversation {
                with: "bob".into(),
                with_id: 2,
                last: Some(m.clone()),
                unread: 4,
                read_upto: 1,
            }],
            more: false,
        };
        assert_eq!(
            render(&list, None),
            json!({"ok":true,"conversations":[{"with":"bob","with_id":2,"last":
                {"id":3,"from":"alice","from_id":1,"to":"bob","to_id":2,"content":"hi","ts":9},
                "unread":4,"read_upto":1}],"more":false})
        );
        assert_eq!(
            render(&Reply::ReadUpto(17), None),
            json!({"ok":true,"upto":17})
        );
        let mut out = Vec::new();
        note_event(&mut out, &Note::Sent(m.clone()));
        let read = ReadNote {
            by: "bob".into(),
            by_id: 2,
            with: "alice".into(),
            with_id: 1,
            upto: 3,
        };
        note_event(&mut out, &Note::Read(Arc::new(read)));
        let lines: Vec<Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            json!({"event":"sent","message":serde_json::from_str::<Value>(m.json()).unwrap()})
        );
        assert_eq!(
            lines[1],
            json!({"event":"read","by":"bob","by_id":2,"with":"alice","with_id":1,"upto":3})
        );
    }
}
