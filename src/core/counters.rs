//! What the core has done since it started, counted for metrics: replies by
//! command and outcome, messages stored, pushed and acknowledged, and
//! limits reached. Each count is one increment where the thing happens.

use crate::error::{ErrorCode, Failure};
use crate::request::{CommandKind, Reply};
use std::collections::BTreeMap;

/// Outcomes of a command: `ok`, or one of the error codes.
const OUTCOMES: usize = 1 + ErrorCode::ALL.len();

#[derive(Default)]
pub struct Counters {
    /// Replies by command (index of [`CommandKind::ALL`]) and outcome
    /// (0 = ok, else 1 + index of [`ErrorCode::ALL`]).
    replies: [[u64; OUTCOMES]; CommandKind::ALL.len()],
    pub messages_stored: u64,
    pub messages_pushed: u64,
    pub messages_acknowledged: u64,
    /// Messages whose custody ended unread (`--message-ttl`).
    pub messages_expired: u64,
    /// Bytes of message JSON rendered for SENDs, refused or not: the work
    /// a request made beyond its own bytes, which the loop charges to the
    /// sending connection's read rate (a 60 KB message of control
    /// characters renders to 360 KB).
    pub message_bytes_rendered: u64,
    /// Refusals by the flag of the limit reached (`--mailbox-bytes`, ...).
    pub limit_hits: BTreeMap<String, u64>,
}

impl Counters {
    /// Counts one reply to a `kind` request; returns the flag of the limit
    /// it refused at, if it did.
    #[inline]
    pub fn reply<'r>(&mut self, kind: CommandKind, reply: &'r Reply) -> Option<&'r str> {
        match reply {
            Reply::Error(failure) => self.error(kind, failure),
            _ => {
                self.replies[kind as usize][0] += 1;
                None
            }
        }
    }

    #[cold]
    fn error<'r>(&mut self, kind: CommandKind, failure: &'r Failure) -> Option<&'r str> {
        self.replies[kind as usize][1 + failure.code as usize] += 1;
        let flag = limit_flag(&failure.message);
        if let Some(flag) = flag {
            *self.limit_hits.entry(flag.to_string()).or_insert(0) += 1;
        }
        flag
    }

    /// (command, outcome, count) for every count above zero.
    pub fn replies(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        CommandKind::ALL.iter().flat_map(move |&kind| {
            (0..OUTCOMES).filter_map(move |outcome| {
                let n = self.replies[kind as usize][outcome];
                let name = match outcome {
                    0 => "ok",
                    i => ErrorCode::ALL[i - 1].as_str(),
                };
                (n > 0).then_some((kind.name(), name, n))
            })
        })
    }

    /// Replies to `kind` with error `code`.
    pub fn errors(&self, kind: CommandKind, code: ErrorCode) -> u64 {
        self.replies[kind as usize][1 + code as usize]
    }
}

/// The flag a refusal names, as every budget's message does:
/// `… (--mailbox-bytes); try again later` or `(--hash-queue 16)`.
fn limit_flag(message: &str) -> Option<&str> {
    let start = message.find("(--")? + 1;
    let rest = &message[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_count_by_command_and_outcome_and_limits_by_flag() {
        let mut c = Counters::default();
        c.reply(CommandKind::Ping, &Reply::Pong);
        let full = Failure::new(
            ErrorCode::RateLimited,
            "bob's mailbox is full: 10 bytes (--mailbox-bytes); try again later",
        );
        c.reply(CommandKind::Send, &Reply::Error(full.clone()));
        c.reply(CommandKind::Send, &Reply::Error(full));
        let rows: Vec<_> = c.replies().collect();
        assert_eq!(
            rows,
            [("send", "rate_limited", 2), ("ping", "ok", 1)],
            "in command order"
        );
        assert_eq!(c.limit_hits["--mailbox-bytes"], 2);
        assert_eq!(c.errors(CommandKind::Send, ErrorCode::RateLimited), 2);
        assert_eq!(
            limit_flag("queued (--hash-queue 16); wait"),
            Some("--hash-queue")
        );
        assert_eq!(limit_flag("no flag here"), None);
    }
}
