//! The server's figures, gathered once and written two ways: the
//! Prometheus text format for `GET /metrics` and JSON for `GET /stats` on
//! the `--metrics` listener. The counts live where their resources do (the
//! core, the connection table, the helper threads' histograms); this file
//! only names them, so each metric's name and meaning is in one place.

use crate::core::Core;
use crate::error::ErrorCode;
use crate::histogram::Snapshot;
use crate::metrics::exposition::Exposition;
use crate::request::CommandKind;
use crate::store::StoreMetrics;
use std::collections::{BTreeMap, HashMap};

/// What the event loop knows about its connections right now.
pub struct ServerFigures<'a> {
    /// Open connections by (door, state).
    pub connections: BTreeMap<(&'static str, &'static str), usize>,
    pub max_connections: usize,
    pub queued_output_bytes: usize,
    pub max_output_total: usize,
    pub accept_paused: bool,
    /// Addresses whose connects the kernel drops now (a connect storm).
    pub storm_addresses: usize,
    /// Connections closed by the server or the client, by reason.
    pub closed: &'a HashMap<&'static str, u64>,
    /// Connections refused at the door, by reason.
    pub refused: &'a HashMap<&'static str, u64>,
    /// Limits the loop counts otherwise (read shaping), by flag.
    pub limit_hits: Vec<(&'static str, u64)>,
}

/// Everything `/metrics` and `/stats` show.
pub struct Figures<'a> {
    pub core: &'a Core,
    pub server: ServerFigures<'a>,
    pub password_seconds: Snapshot,
    pub store: Option<&'a StoreMetrics>,
}

/// The flag of the limit behind each server-side close or refusal reason.
fn limit_of_reason(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "server_full" => "--max-connections",
        "address_full" => "--max-connections-per-address",
        "slow_consumer" => "--max-output",
        "output_budget" => "--max-output-total",
        "login_timeout" => "--login-timeout",
        "request_timeout" => "--request-timeout",
        "idle_timeout" => "--http-idle-timeout",
        "tls_handshake_rate" => "--tls-handshakes-per-address-second",
        "connection_rate" => "--connections-per-address-per-second",
        _ => return None,
    })
}

impl Figures<'_> {
    /// Every limit reached, by its flag: the core's refusals and the
    /// server's closes and refusals.
    fn limit_hits(&self) -> BTreeMap<String, u64> {
        let mut hits = self.core.counters.limit_hits.clone();
        for (reason, n) in self.server.closed.iter().chain(self.server.refused) {
            if let Some(flag) = limit_of_reason(reason) {
                *hits.entry(flag.to_string()).or_insert(0) += n;
            }
        }
        for &(flag, n) in self.server.limit_hits.iter().filter(|(_, n)| *n > 0) {
            *hits.entry(flag.to_string()).or_insert(0) += n;
        }
        hits
    }

    fn logins_failed(&self) -> u64 {
        self.core
            .counters
            .errors(CommandKind::Login, ErrorCode::Unauthorized)
    }

    fn logins_throttled(&self) -> u64 {
        self.core
            .counters
            .errors(CommandKind::Login, ErrorCode::RateLimited)
    }

    pub fn prometheus(&self) -> String {
        let stats = self.core.stats();
        let counters = &self.core.counters;
        let (waiting, running) = self.core.password_jobs();
        let mut e = Exposition::default();

        let connections: Vec<(Vec<(&str, &str)>, f64)> = self
            .server
            .connections
            .iter()
            .map(|(&(door, state), &n)| (vec![("door", door), ("state", state)], n as f64))
            .collect();
        labelled(
            &mut e,
            "gotalk_connections",
            "Open client connections by door and state.",
            "gauge",
            &connections,
        );
        e.gauge(
            "gotalk_connections_max",
            "The connection limit (--max-connections).",
            self.server.max_connections as f64,
        );
        let closed: Vec<_> = sorted(self.server.closed)
            .into_iter()
            .map(|(r, n)| (vec![("reason", r)], n as f64))
            .collect();
        labelled(
            &mut e,
            "gotalk_connections_closed_total",
            "Connections closed, by reason.",
            "counter",
            &closed,
        );
        let refused: Vec<_> = sorted(self.server.refused)
            .into_iter()
            .map(|(r, n)| (vec![("reason", r)], n as f64))
            .collect();
        labelled(
            &mut e,
            "gotalk_connections_refused_total",
            "Connections refused when accepted, by reason.",
            "counter",
            &refused,
        );
        e.gauge(
            "gotalk_accept_paused",
            "1 while accepting is paused for want of file descriptors.",
            f64::from(u8::from(self.server.accept_paused)),
        );
        e.gauge(
            "gotalk_connect_storm_addresses",
            "Addresses whose new connections the kernel drops unanswered now \
             (--connection-storm-cuts).",
            self.server.storm_addresses as f64,
        );

        let commands: Vec<_> = counters
            .replies()
            .map(|(command, outcome, n)| {
                (vec![("command", command), ("outcome", outcome)], n as f64)
            })
            .collect();
        labelled(
            &mut e,
            "gotalk_commands_total",
            "Replies by command and outcome (ok or the error code).",
            "counter",
            &commands,
        );
        e.counter(
            "gotalk_logins_failed_total",
            "LOGINs answered unauthorized (wrong username or password).",
            self.logins_failed() as f64,
        );
        e.counter(
            "gotalk_logins_throttled_total",
            "LOGINs answered rate_limited.",
            self.logins_throttled() as f64,
        );

        e.counter(
            "gotalk_messages_stored_total",
            "Messages stored (SENDs answered ok).",
            counters.messages_stored as f64,
        );
        e.counter(
            "gotalk_messages_pushed_total",
            "Message events written to connections.",
            counters.messages_pushed as f64,
        );
        e.counter(
            "gotalk_messages_acknowledged_total",
            "Messages whose custody ended by ACK.",
            counters.messages_acknowledged as f64,
        );
        e.counter(
            "gotalk_messages_expired_total",
            "Messages whose custody ended unread (--message-ttl).",
            counters.messages_expired as f64,
        );
        e.gauge(
            "gotalk_senders_holding",
            "Senders with unacknowledged messages in custody.",
            self.core.senders_holding() as f64,
        );
        let top = self.core.top_senders();
        let top: Vec<(String, String, f64)> = top
            .iter()
            .enumerate()
            .map(|(i, (user, bytes))| ((i + 1).to_string(), user.to_string(), *bytes as f64))
            .collect();
        let samples: Vec<_> = top
            .iter()
            .map(|(rank, user, bytes)| {
                (
                    vec![("rank", rank.as_str()), ("user_id", user.as_str())],
                    *bytes,
                )
            })
            .collect();
        labelled(
            &mut e,
            "gotalk_sender_pending_bytes",
            "Bytes of unacknowledged messages held by the senders holding the most \
             (what --pending-bytes-per-sender caps), by rank.",
            "gauge",
            &samples,
        );
        e.gauge(
            "gotalk_pending_messages",
            "Unacknowledged messages in all mailboxes.",
            stats.pending_messages as f64,
        );
        e.gauge(
            "gotalk_pending_bytes",
            "Bytes of unacknowledged messages in all mailboxes, as stored.",
            stats.pending_bytes as f64,
        );
        e.gauge(
            "gotalk_accounts",
            "Registered accounts.",
            stats.accounts as f64,
        );
        e.gauge(
            "gotalk_users_online",
            "Users with at least one bound connection.",
            stats.users_online as f64,
        );
        e.gauge(
            "gotalk_client_ids",
            "client_ids remembered for deduplication.",
            stats.client_ids as f64,
        );
        e.gauge(
            "gotalk_client_id_queue",
            "Entries of the per-sender client_id queues, stale ones included.",
            stats.client_id_queue as f64,
        );
        e.gauge(
            "gotalk_revoked_tokens",
            "Tokens revoked one by one by LOGOUT and not expired yet.",
            stats.revoked_tokens as f64,
        );
        e.gauge(
            "gotalk_long_poll_waiters",
            "SYNCs waiting for a message.",
            stats.waiters as f64,
        );
        e.gauge(
            "gotalk_queued_output_bytes",
            "Output rendered for clients and not yet written.",
            self.server.queued_output_bytes as f64,
        );
        e.gauge(
            "gotalk_queued_output_bytes_max",
            "The total output budget (--max-output-total).",
            self.server.max_output_total as f64,
        );

        labelled(
            &mut e,
            "gotalk_password_jobs",
            "LOGIN and REGISTER password checks, waiting for a worker or running.",
            "gauge",
            &[
                (vec![("state", "waiting")], waiting as f64),
                (vec![("state", "running")], running as f64),
            ],
        );
        e.histogram(
            "gotalk_password_check_seconds",
            "Time an argon2 hash or check took on its worker.",
            &self.password_seconds,
        );
        if let Some(store) = self.store {
            e.histogram(
                "gotalk_store_commit_seconds",
                "Time a store transaction took, BEGIN to COMMIT.",
                &store.commit_seconds.snapshot(),
            );
            e.histogram(
                "gotalk_store_writes_per_commit",
                "Writes (messages, ACKs, accounts) per store transaction.",
                &store.writes_per_commit.snapshot(),
            );
        }
        let slow = self
            .server
            .closed
            .get("slow_consumer")
            .copied()
            .unwrap_or(0);
        e.counter(
            "gotalk_slow_consumer_disconnects_total",
            "Connections closed for leaving more than --max-output unread.",
            slow as f64,
        );
        let hits: Vec<_> = self.limit_hits().into_iter().collect();
        let hits: Vec<_> = hits
            .iter()
            .map(|(flag, n)| (vec![("limit", flag.as_str())], *n as f64))
            .collect();
        labelled(
            &mut e,
            "gotalk_limit_hits_total",
            "Requests refused or connections closed at a limit, by its flag.",
            "counter",
            &hits,
        );
        e.finish()
    }

    pub fn json(&self) -> String {
        let counters = &self.core.counters;
        let (waiting, running) = self.core.password_jobs();
        let connections: BTreeMap<String, usize> = self
            .server
            .connections
            .iter()
            .map(|(&(door, state), &n)| (format!("{door}/{state}"), n))
            .collect();
        let commands: Vec<_> = counters
            .replies()
            .map(|(command, outcome, count)| {
                serde_json::json!({"command": command, "outcome": outcome, "count": count})
            })
            .collect();
        let histogram = |s: &Snapshot| serde_json::json!({"count": s.count, "sum_seconds": s.sum});
        let store = self.store.map(|s| {
            let writes = s.writes_per_commit.snapshot();
            serde_json::json!({
                "commits": histogram(&s.commit_seconds.snapshot()),
                "writes": writes.sum,
            })
        });
        serde_json::json!({
            "core": self.core.stats(),
            "server": {
                "connections": self.server.connections.values().sum::<usize>(),
                "connections_by_door_and_state": connections,
                "max_connections": self.server.max_connections,
                "queued_output_bytes": self.server.queued_output_bytes,
                "max_output_total": self.server.max_output_total,
                "accept_paused": self.server.accept_paused,
                "storm_addresses": self.server.storm_addresses,
                "closed_by_reason": self.server.closed,
                "refused_by_reason": self.server.refused,
            },
            "commands": commands,
            "messages": {
                "stored": counters.messages_stored,
                "pushed": counters.messages_pushed,
                "acknowledged": counters.messages_acknowledged,
                "expired": counters.messages_expired,
            },
            "senders": {
                "holding": self.core.senders_holding(),
                "top": self.core.top_senders().iter().map(|(user, bytes)| {
                    serde_json::json!({"user_id": user, "bytes": bytes})
                }).collect::<Vec<_>>(),
            },
            "logins": {"failed": self.logins_failed(), "throttled": self.logins_throttled()},
            "password_jobs": {"waiting": waiting, "running": running},
            "password_checks": histogram(&self.password_seconds),
            "store": store,
            "limit_hits": self.limit_hits(),
        })
        .to_string()
    }
}

fn labelled(
    e: &mut Exposition,
    name: &str,
    help: &str,
    kind: &str,
    samples: &[(Vec<(&str, &str)>, f64)],
) {
    let samples: Vec<_> = samples.iter().map(|(l, v)| (l.as_slice(), *v)).collect();
    e.family(name, help, kind, &samples);
}

fn sorted(map: &HashMap<&'static str, u64>) -> Vec<(&'static str, u64)> {
    let mut v: Vec<_> = map.iter().map(|(k, n)| (*k, *n)).collect();
    v.sort();
    v
}
