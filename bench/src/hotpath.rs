//! `hotpath`: the server's per-message work without sockets or a second
//! process. SEND lines go through the real parser, core and renderer
//! in-process — parse, store in the mailbox, answer, push to the
//! receiver, acknowledge every 1000 — with `--memory`'s immediate commit.
//! It isolates goTalk's own CPU cost per relayed message from the kernel
//! and the load generator, and it is deterministic: run it under
//! `valgrind --tool=callgrind` to compare two builds by instruction count,
//! which a busy machine cannot disturb.
//!
//! The core is set up as `relay`'s server (`--memory`): history held in
//! RAM, and the per-account send and fan-out rates on at
//! [`server::UNSHARED`]'s figures, far above the load, so each SEND pays
//! their check without meeting them. `--no-history` and `--no-shares` turn
//! each off as the server's flags do, so the four runs under callgrind give
//! what each costs per message.

use crate::{print_table, server, thousands, Opts};
use gotalk::core::{Core, CoreSettings, Handled, Outbox, Ticket};
use gotalk::line::parse::parse_line;
use gotalk::line::render::{message_event, reply_line};
use gotalk::request::{Call, Reply, Request};
use gotalk::store::{Committed, Snapshot, StoredUser};
use gotalk::token::TokenKey;
use gotalk::{ConnId, MessageId};
use std::borrow::Cow;
use std::time::Instant;

const SENDERS: usize = 4;
const RECEIVERS: usize = 4;
/// SENDs handled between two commits, like a loop turn under load.
const TURN: usize = 512;
const ACK_EVERY: u64 = 1000;
const KEY: [u8; 32] = [7; 32];
const NOW: u64 = 1_764_160_000_000;

pub fn run(opts: &Opts) -> Result<(), String> {
    let total = opts.max_messages.min(100_000_000);
    let total = if total == Opts::default().max_messages {
        2_000_000
    } else {
        total
    };
    let mut hot = HotPath::new(settings(opts));
    let start = Instant::now();
    let relayed = hot.relay(total);
    let secs = start.elapsed().as_secs_f64();
    let on = |off: bool| if off { "off" } else { "on" };
    println!(
        "hotpath: {SENDERS} senders -> {RECEIVERS} receivers in-process, {total} SENDs, a commit every {TURN}; history {}, shares {}",
        on(opts.no_history),
        on(opts.no_shares)
    );
    print_table(
        &["metric", "value"],
        &[
            vec!["messages relayed".into(), thousands(relayed as f64)],
            vec!["seconds".into(), format!("{secs:.3}")],
            vec![
                "relayed messages/s (one core)".into(),
                thousands(relayed as f64 / secs),
            ],
            vec![
                "ns per message".into(),
                format!("{:.0}", secs * 1e9 / relayed as f64),
            ],
            vec!["output bytes rendered".into(), thousands(hot.bytes as f64)],
        ],
    );
    if relayed != total {
        return Err(format!("{relayed} of {total} messages were pushed"));
    }
    Ok(())
}

/// The core's settings: `relay`'s server, less what `opts` turns off.
fn settings(opts: &Opts) -> CoreSettings {
    let mut settings = CoreSettings {
        token_ttl_ms: 1 << 40,
        mailbox_limit: 1 << 30,
        mailbox_bytes: usize::MAX,
        pending_bytes: usize::MAX,
        ..CoreSettings::default()
    };
    let shares = &mut settings.shares;
    if opts.no_shares {
        shares.sends_per_second = 0;
        shares.new_recipients_per_hour = 0;
    } else {
        let unshared = |name: &str| -> u64 {
            let (_, value) = server::UNSHARED
                .iter()
                .find(|(n, _)| *n == name)
                .expect("the bench lifts this rate");
            value.parse().expect("a number")
        };
        shares.sends_per_second = unshared("GOTALK_SENDS_PER_SECOND");
        shares.send_burst = unshared("GOTALK_SEND_BURST");
        shares.new_recipients_per_hour = unshared("GOTALK_NEW_RECIPIENTS_PER_HOUR");
    }
    settings.history.enabled = !opts.no_history;
    if let Some(bytes) = opts.history_memory_bytes {
        settings.history.memory_bytes = bytes;
    }
    settings
}

struct HotPath {
    core: Core,
    outbox: Outbox,
    seq: u64,
    out: Vec<u8>,
    bytes: u64,
    pushed: [u64; RECEIVERS],
    relayed: u64,
    newest: [MessageId; RECEIVERS],
}

/// Receivers are connections 0..RECEIVERS; senders come after them.
fn receiver_conn(i: usize) -> ConnId {
    i
}

fn sender_conn(i: usize) -> ConnId {
    RECEIVERS + i
}

impl HotPath {
    fn new(settings: CoreSettings) -> HotPath {
        let mut core = Core::new(settings, TokenKey::from_bytes(&KEY), "unused".into());
        let users = (0..RECEIVERS + SENDERS)
            .map(|i| StoredUser {
                id: i as u64 + 1,
                identity: i as u128 + 1,
                username: format!("u{i}"),
                password_hash: "unused".into(),
                tokens_valid_from: 0,
            })
            .collect();
        core.restore(Snapshot {
            users,
            ..Snapshot::default()
        });
        let mut hot = HotPath {
            core,
            outbox: Outbox::default(),
            seq: 0,
            out: Vec::with_capacity(1 << 20),
            bytes: 0,
            pushed: [0; RECEIVERS],
            relayed: 0,
            newest: [0; RECEIVERS],
        };
        let key = TokenKey::from_bytes(&KEY);
        for conn in 0..RECEIVERS + SENDERS {
            hot.core.open_session(conn);
            let token = key.seal(conn as u64 + 1, conn as u128 + 1, NOW, NOW + (1 << 40));
            let auth = Call::new(Request::Auth {
                token: Cow::Owned(token),
            });
            hot.handle(conn, auth);
        }
        hot
    }

    fn handle(&mut self, conn: ConnId, call: Call<'_>) {
        self.seq += 1;
        let ticket = Ticket::new(conn, self.seq);
        if let Handled::Now(reply) = self.core.handle(ticket, call, NOW, &mut self.outbox) {
            self.render(&reply);
        }
    }

    fn render(&mut self, reply: &Reply) {
        reply_line(&mut self.out, reply, None);
        self.drain_output();
    }

    fn drain_output(&mut self) {
        if self.out.len() > 1 << 19 {
            self.bytes += self.out.len() as u64;
            self.out.clear();
        }
    }

    /// Commits what is pending and carries out the effects, as a loop turn.
    fn commit(&mut self) {
        if let Some(batch) = self.core.take_batch() {
            let done = Committed::of(batch.seq, Ok(()));
            self.core.on_committed(done, NOW, &mut self.outbox);
        }
        let replies = std::mem::take(&mut self.outbox.replies);
        for (_, reply) in &replies {
            self.render(reply);
        }
        let pushes = std::mem::take(&mut self.outbox.pushes);
        for (conn, message) in &pushes {
            message_event(&mut self.out, message);
            self.pushed[*conn] += 1;
            self.relayed += 1;
            self.newest[*conn] = message.id;
        }
        self.drain_output();
        self.outbox.replies = replies;
        self.outbox.replies.clear();
        self.outbox.pushes = pushes;
        self.outbox.pushes.clear();
    }

    // Never inlined, so that `valgrind --tool=callgrind
    // --toggle-collect='gotalk_bench::hotpath::HotPath::relay'` counts the
    // relay alone: not the set-up, nor dropping what history holds at exit.
    #[inline(never)]
    fn relay(&mut self, total: u64) -> u64 {
        let lines: Vec<Vec<u8>> = (0..RECEIVERS)
            .map(|r| {
                format!("{{\"cmd\":\"send\",\"to\":\"u{r}\",\"content\":\"0123456789abcdef\"}}")
                    .into_bytes()
            })
            .collect();
        let mut sent = 0u64;
        while sent < total {
            for i in 0..TURN.min((total - sent) as usize) {
                let n = sent as usize + i;
                let line = &lines[n % RECEIVERS];
                let parsed = parse_line(line).expect("a SEND line");
                let call = parsed.call.expect("a valid SEND");
                self.handle(sender_conn(n % SENDERS), call);
            }
            sent += TURN.min((total - sent) as usize) as u64;
            self.commit();
            for r in 0..RECEIVERS {
                if self.pushed[r] >= ACK_EVERY {
                    self.pushed[r] = 0;
                    let ack = Call::new(Request::Ack {
                        upto: self.newest[r],
                    });
                    self.handle(receiver_conn(r), ack);
                }
            }
            self.commit();
        }
        self.bytes += self.out.len() as u64;
        self.relayed
    }
}
