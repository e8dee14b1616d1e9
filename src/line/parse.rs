//! One line of the line protocol → a [`Call`]. A line that starts with `{`
//! is a JSON object; anything else is a text command (`SEND bob hi`).
//! Every way a line can be wrong has its own clear error message.

use super::fast_json;
use super::json_request::{JsonRequest, Text};
use crate::config::limits;
use crate::error::{ErrorCode, Failure};
use crate::request::{Call, HistoryArgs, Recipient, Request, SyncArgs};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A parsed line: the call (or why it is not one), the JSON `tag` to echo,
/// and which form the line was in.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub call: Result<Call<'a>, Failure>,
    pub tag: Option<&'a RawValue>,
    pub form: Form,
}

/// Which form a request came in: a program's JSON object, or a person's
/// words. Only a reply meant to be read by a person differs by form (the
/// text form's HELP is readable lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Json,
    Text,
}

/// Parses one line (without its newline). `None` for a blank line, which
/// the protocol ignores.
pub fn parse_line(line: &[u8]) -> Option<Parsed<'_>> {
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    // One UTF-8 check for the whole line (std's has a fast ASCII path);
    // serde_json then reads it as &str without checking each string again.
    let text = match std::str::from_utf8(&line[start..]) {
        Ok(text) => text,
        Err(e) => {
            return Some(failed(Failure::bad_request(format!(
                "the line is not valid UTF-8 (bad byte at position {})",
                start + e.valid_up_to()
            ))))
        }
    };
    if text.as_bytes()[0] == b'{' {
        // serde_json rejects raw control bytes (NUL among them) itself.
        return Some(parse_json(text));
    }
    if let Some(pos) = text.find('\0') {
        return Some(failed(Failure::bad_request(format!(
            "the line contains a NUL byte at position {}",
            start + pos
        ))));
    }
    if text.trim_end().is_empty() {
        return None;
    }
    Some(match text.as_bytes()[0] {
        b'[' | b'"' if serde_json::from_str::<IgnoredAny>(text).is_ok() => failed(
            Failure::bad_request("a JSON request must be an object, like {\"cmd\":\"ping\"}"),
        ),
        _ => Parsed {
            call: parse_text(text),
            tag: None,
            form: Form::Text,
        },
    })
}

fn failed(failure: Failure) -> Parsed<'static> {
    Parsed {
        call: Err(failure),
        tag: None,
        form: Form::Json,
    }
}

// ---------------------------------------------------------------- JSON form

fn parse_json(text: &str) -> Parsed<'_> {
    // Built in place and read by reference: the request is a few hundred
    // bytes, and this runs for every JSON line.
    let mut req = JsonRequest::default();
    if !fast_json::parse_into(text, &mut req) {
        let mut de = serde_json::Deserializer::from_str(text);
        match JsonRequest::deserialize(&mut de).and_then(|r| de.end().map(|_| r)) {
            Ok(parsed) => req = parsed,
            Err(e) => {
                // Recover the tag when the JSON itself is fine but a field is not.
                let tag = serde_json::from_str::<TagOnly>(text)
                    .ok()
                    .and_then(|t| t.tag);
                // A field error inside broken JSON would mislead: say which it is.
                let message = match serde_json::from_str::<IgnoredAny>(text) {
                    Err(syntax) => format!("invalid JSON: {syntax}"),
                    Ok(_) => strip_position(&e.to_string()),
                };
                return match tag {
                    Some(tag) if tag.get().len() > limits::MAX_TAG_BYTES => tag_too_large(),
                    _ => Parsed {
                        call: Err(Failure::bad_request(message)),
                        tag,
                        form: Form::Json,
                    },
                };
            }
        }
    }
    if req
        .tag
        .is_some_and(|tag| tag.get().len() > limits::MAX_TAG_BYTES)
    {
        return tag_too_large();
    }
    Parsed {
        tag: req.tag,
        call: json_call(&mut req),
        form: Form::Json,
    }
}

/// A tag is echoed only if it is small: the request is refused, and its
/// reply carries no tag.
#[cold]
fn tag_too_large() -> Parsed<'static> {
    failed(Failure::bad_request(format!(
        "a tag is at most {} bytes of JSON",
        limits::MAX_TAG_BYTES
    )))
}

#[derive(Deserialize)]
struct TagOnly<'a> {
    #[serde(borrow)]
    tag: Option<&'a RawValue>,
}

/// serde's messages end in " at line 1 column N", which says nothing on a
/// one-line protocol.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn required<'a>(field: Option<Text<'a>>, cmd: &str, name: &str) -> Result<Cow<'a, str>, Failure> {
    field
        .map(|t| t.0)
        .ok_or_else(|| Failure::bad_request(format!("\"{cmd}\" needs a \"{name}\" field")))
}

/// The commands, named case-insensitively in both forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Register,
    Login,
    Auth,
    Send,
    Sync,
    Ack,
    Logout,
    History,
    Read,
    Conversations,
    Ping,
    Help,
    Quit,
}

const COMMANDS: [(&str, Command); 14] = [
    ("send", Command::Send),
    ("sync", Command::Sync),
    ("ack", Command::Ack),
    ("logout", Command::Logout),
    ("ping", Command::Ping),
    ("login", Command::Login),
    ("auth", Command::Auth),
    ("register", Command::Register),
    ("help", Command::Help),
    ("quit", Command::Quit),
    ("exit", Command::Quit),
    ("history", Command::History),
    ("read", Command::Read),
    ("conversations", Command::Conversations),
];

/// Looks a command name up without allocating (this runs per request).
fn command(name: &str) -> Result<(Command, &'static str), Failure> {
    COMMANDS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(known, command)| (command, known))
        .ok_or_else(|| unknown_command(name))
}

fn json_call<'a>(r: &mut JsonRequest<'a>) -> Result<Call<'a>, Failure> {
    let Some(cmd) = r.cmd.take() else {
        return Err(Failure::bad_request(
            "a JSON request needs a \"cmd\" field, like {\"cmd\":\"ping\"}",
        ));
    };
    let (kind, cmd) = command(&cmd.0)?;
    let mut token = r.token.take().map(|t| t.0);
    let request = match kind {
        Command::Register | Command::Login => {
            let username = required(r.username.take(), cmd, "username")?;
            let password = required(r.password.take(), cmd, "password")?;
            if kind == Command::Register {
                Request::Register { username, password }
            } else {
                Request::Login { username, password }
            }
        }
        Command::Auth => Request::Auth {
            token: token
                .take()
                .ok_or_else(|| Failure::bad_request("\"auth\" needs a \"token\" field"))?,
        },
        Command::Send => {
            let to = match (r.to.take(), r.to_id) {
                (Some(name), _) => Recipient::Name(name.0),
                (None, Some(id)) => Recipient::Id(id),
                (None, None) => {
                    return Err(Failure::bad_request(
                        "\"send\" needs \"to\" (a username) or \"to_id\" (a user id)",
                    ))
                }
            };
            Request::Send {
                to,
                content: required(r.content.take(), cmd, "content")?,
                client_id: r.client_id.take().map(|t| t.0),
            }
        }
        Command::Sync => Request::Sync(SyncArgs {
            after: r.after,
            limit: r.limit.map(|l| l.min(usize::MAX as u64) as usize),
            wait_ms: r.wait_ms.unwrap_or(0),
        }),
        Command::Ack => Request::Ack {
            upto: r.upto.ok_or_else(|| {
                Failure::bad_request("\"ack\" needs an \"upto\" field (a message id)")
            })?,
        },
        Command::Logout => Request::Logout {
            all: r.all.unwrap_or(false),
        },
        Command::History => Request::History(HistoryArgs {
            with: partner(r, cmd)?,
            before: r.before,
            limit: r.limit,
        }),
        Command::Read => Request::Read {
            with: partner(r, cmd)?,
            upto: r.upto.ok_or_else(|| {
                Failure::bad_request("\"read\" needs an \"upto\" field (a message id)")
            })?,
        },
        Command::Conversations => Request::Conversations {
            before: r.before,
            limit: r.limit,
        },
        Command::Ping => Request::Ping,
        Command::Help => Request::Help,
        Command::Quit => Request::Quit,
    };
    Ok(Call {
        request,
        token,
        claimed_id: None,
    })
}

/// HISTORY's and READ's other party: `with` (a username) or `with_id`.
fn partner<'a>(r: &mut JsonRequest<'a>, cmd: &str) -> Result<Recipient<'a>, Failure> {
    match (r.with.take(), r.with_id) {
        (Some(name), _) => Ok(Recipient::Name(name.0)),
        (None, Some(id)) => Ok(Recipient::Id(id)),
        (None, None) => Err(Failure::bad_request(format!(
            "\"{cmd}\" needs \"with\" (a username) or \"with_id\" (a user id)"
        ))),
    }
}

fn unknown_command(name: &str) -> Failure {
    let shown: String = name.chars().take(32).collect();
    Failure::new(
        ErrorCode::UnknownCommand,
        format!("unknown command '{shown}'; send HELP for the list of commands"),
    )
}

// ---------------------------------------------------------------- text form

/// Splits off the first space-separated word: (word, rest after one space).
fn word(text: &str) -> (&str, &str) {
    let text = text.trim_start_matches([' ', '\t']);
    match text.find([' ', '\t']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    }
}

/// A person typing in `nc` cannot see spaces around a password, and
/// `REGISTER car ol pw` could mean user `car` with password `ol pw` or a
/// typo: both are refused in the text form, which has no quoting. The JSON
/// form takes any password. (LOGIN may have spaces inside the password, so
/// an account made through JSON can still log in by text.)
fn check_text_password(kind: Command, password: &str) -> Result<(), Failure> {
    const BLANKS: [char; 2] = [' ', '\t'];
    if password.starts_with(BLANKS) || password.ends_with(BLANKS) {
        return Err(Failure::bad_request(
            "a password cannot start or end with a space in the text form (it would not show); \
             use the JSON form, e.g. {\"cmd\":\"login\",\"username\":\"alice\",\"password\":\"...\"}, \
             for such a password",
        ));
    }
    if kind == Command::Register && password.contains(BLANKS) {
        return Err(Failure::bad_request(
            "REGISTER takes a username and a one-word password in the text form \
             (REGISTER car ol pw would be ambiguous); use the JSON form, \
             {\"cmd\":\"register\",\"username\":\"...\",\"password\":\"...\"}, for a password with spaces",
        ));
    }
    Ok(())
}

fn usage(text: &'static str) -> Failure {
    Failure::bad_request(text)
}

fn parse_text(line: &str) -> Result<Call<'_>, Failure> {
    let (name, rest) = word(line);
    let (kind, _) = command(name)?;
    let request = match kind {
        Command::Register | Command::Login => {
            let (username, password) = word(rest);
            if username.is_empty() || password.is_empty() {
                return Err(usage(if kind == Command::Register {
                    "usage: REGISTER <username> <password>"
                } else {
                    "usage: LOGIN <username> <password>"
                }));
            }
            check_text_password(kind, password)?;
            let (username, password) = (Cow::Borrowed(username), Cow::Borrowed(password));
            if kind == Command::Register {
                Request::Register { username, password }
            } else {
                Request::Login { username, password }
            }
        }
        Command::Auth => {
            let token = rest.trim();
            if token.is_empty() {
                return Err(usage("usage: AUTH <token> (the token LOGIN gave you)"));
            }
            Request::Auth {
                token: Cow::Borrowed(token),
            }
        }
        Command::Send => {
            let (to, content) = word(rest);
            if to.is_empty() || content.is_empty() {
                return Err(usage(
                    "usage: SEND <username> <message text>, e.g. SEND bob hello there",
                ));
            }
            Request::Send {
                to: Recipient::Name(Cow::Borrowed(to)),
                content: Cow::Borrowed(content),
                client_id: None,
            }
        }
        Command::Sync => {
            let numbers = numbers(rest, 3).ok_or_else(|| {
                usage("usage: SYNC [after] [limit] [wait_ms], whole numbers, e.g. SYNC 17")
            })?;
            Request::Sync(SyncArgs {
                after: numbers.first().copied(),
                limit: numbers.get(1).map(|&l| l as usize),
                wait_ms: numbers.get(2).copied().unwrap_or(0),
            })
        }
        Command::Ack => match numbers(rest, 1).as_deref() {
            Some([upto]) => Request::Ack { upto: *upto },
            _ => return Err(usage("usage: ACK <message id>, e.g. ACK 17")),
        },
        Command::Logout => match rest.trim() {
            "" => Request::Logout { all: false },
            word if word.eq_ignore_ascii_case("all") => Request::Logout { all: true },
            _ => {
                return Err(usage(
                    "usage: LOGOUT (this connection's token) or LOGOUT all (every token of the account)",
                ))
            }
        },
        Command::History => {
            const USAGE: &str =
                "usage: HISTORY <username> [before] [limit], e.g. HISTORY bob or HISTORY bob 120 50";
            let (with, rest) = word(rest);
            if with.is_empty() {
                return Err(usage(USAGE));
            }
            let numbers = numbers(rest, 2).ok_or_else(|| usage(USAGE))?;
            Request::History(HistoryArgs {
                with: Recipient::Name(Cow::Borrowed(with)),
                before: numbers.first().copied(),
                limit: numbers.get(1).copied(),
            })
        }
        Command::Read => {
            let (with, rest) = word(rest);
            match numbers(rest, 1).as_deref() {
                Some([upto]) if !with.is_empty() => Request::Read {
                    with: Recipient::Name(Cow::Borrowed(with)),
                    upto: *upto,
                },
                _ => {
                    return Err(usage(
                        "usage: READ <username> <message id>, e.g. READ alice 17",
                    ))
                }
            }
        }
        Command::Conversations => match numbers(rest, 1).as_deref() {
            Some(before) => Request::Conversations {
                before: before.first().copied(),
                limit: None,
            },
            None => {
                return Err(usage(
                    "usage: CONVERSATIONS [before], before the last id of the previous page's last entry",
                ))
            }
        },
        Command::Ping => Request::Ping,
        Command::Help => Request::Help,
        Command::Quit => Request::Quit,
    };
    Ok(Call::new(request))
}

/// Up to `max` whole numbers separated by spaces; `None` if anything else.
fn numbers(text: &str, max: usize) -> Option<Vec<u64>> {
    let parsed: Option<Vec<u64>> = text.split_whitespace().map(|w| w.parse().ok()).collect();
    parsed.filter(|v| v.len() <= max)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
