//! `gotalk-bench`: a load generator for goTalk. It starts the real `gotalk`
//! binary on 127.0.0.1 itself, drives one bounded scenario against it
//! (every scenario stops by itself on a time and a count limit), prints a
//! results table and kills the server.
//!
//! Scenarios, one file each: [`relay`] (pipelined SENDs relayed to logged-in
//! receivers), [`durable`] (request/response SENDs against the durable store
//! and `--memory`, side by side), [`idle`] (server memory per idle
//! connection), [`login`] (concurrent argon2 LOGINs while PINGs measure
//! the event loop's latency), [`hotpath`] (the per-message work
//! in-process), [`compare`] (the same shapes against Redis, NATS and
//! Mosquitto when they are installed) and [`abuse`] (hostile clients, and
//! what they cost the server and everyone else). [`server`] starts and watches server
//! processes; [`wire`] is the client side: blocking setup requests and
//! cheap line scanning; [`ws`] runs `relay` and `idle` over the WebSocket
//! door (`--ws`); [`open_loop`] is the fixed-rate latency step that `relay
//! --ws`, `cluster` and `compare` share; [`peers`] speaks to Redis, NATS
//! and Mosquitto; [`targets`] and [`chart`] are `compare`'s closing table
//! and its SVG; [`idle_tls`] runs `idle` over TLS (`--tls`).
//! door (`--ws`); [`http`] is the original goTalk's form posts over the
//! HTTP shim, beside the original itself (`--peer-url`), with
//! [`http_wire`] its client side of HTTP/1.1.

mod abuse;
mod backlog;
mod chaos;
mod chart;
mod cluster;
mod compare;
mod durable;
mod history;
mod hotpath;
mod http;
mod http_wire;
mod idle;
mod idle_tls;
mod idle_users;
mod login;
mod open_loop;
mod peers;
mod relay;
mod server;
mod targets;
mod tls;
mod wire;
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;

/// Everything the command line can set; each scenario picks its own
/// defaults for what was not given.
#[derive(Clone, Debug)]
pub struct Opts {
    /// The `gotalk` binary to start (default: [`server_beside_bench`]).
    pub server: PathBuf,
    /// Measured seconds (per level in `durable`).
    pub seconds: Option<f64>,
    /// Seconds of load before measuring starts.
    pub warmup: Option<f64>,
    pub senders: Option<usize>,
    /// Messages per second of the open-loop latency step.
    pub rate: Option<u64>,
    pub receivers: Option<usize>,
    /// Requests in flight per pipelining sender (default [`DEFAULT_WINDOW`];
    /// `compare` 64).
    pub window: Option<usize>,
    /// Idle connections to open (`login`: users logging in at once).
    pub conns: Option<usize>,
    /// Concurrent senders per `durable` level.
    pub levels: Vec<usize>,
    /// Stop sending after this many messages in total, whatever the time.
    pub max_messages: u64,
    /// `relay` against the durable store instead of `--memory`.
    pub durable: bool,
    /// A PostgreSQL database for `durable` (a third store beside `--memory`
    /// and SQLite) and `relay --durable` (in place of SQLite); emptied at
    /// each server start.
    pub postgres: Option<String>,
    /// `relay`: the same load plain, then over TLS, side by side.
    pub tls: bool,
    /// `relay` and `idle`: the line door, then WebSocket (`/ws`), side by side.
    pub ws: bool,
    /// `abuse`: the attacks to run (empty: all).
    pub attacks: Vec<String>,
    /// Flags passed on to the server (`abuse`).
    pub server_args: Vec<String>,
    /// `abuse`: the server's open-file limit (0: inherit the bench's).
    pub server_open_files: Option<u64>,
    /// `abuse`: the nice value of the attacker's threads (0..=19).
    pub attacker_nice: i32,
    /// `compare`: write the targets chart (SVG) here.
    pub chart: Option<PathBuf>,
    /// `compare` and `http`: rounds of each step, interleaved; the best
    /// is kept.
    pub rounds: Option<usize>,
    /// `hotpath`: the core as `gotalk --no-history` sets it up.
    pub no_history: bool,
    /// `hotpath`: the core with the per-account send and fan-out rates
    /// off (0), as `--sends-per-second 0 --new-recipients-per-hour 0`.
    pub no_shares: bool,
    /// `hotpath`: `--history-memory-bytes` (default the server's).
    pub history_memory_bytes: Option<usize>,
    /// `idle --users N`: N different users, one idle connection each.
    pub users: Option<usize>,
    /// `http`: another server speaking the original goTalk's forms, run
    /// under the same load side by side.
    pub peer_url: Option<String>,
}

/// Requests in flight per pipelining sender unless `--window` says.
pub const DEFAULT_WINDOW: usize = 512;

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            server: server_beside_bench(),
            seconds: None,
            warmup: None,
            senders: None,
            rate: None,
            receivers: None,
            window: None,
            conns: None,
            levels: vec![1, 16, 64],
            max_messages: 100_000_000,
            durable: false,
            postgres: None,
            tls: false,
            ws: false,
            attacks: Vec::new(),
            server_args: Vec::new(),
            server_open_files: None,
            attacker_nice: abuse::priority::DEFAULT_NICE,
            chart: None,
            rounds: None,
            no_history: false,
            no_shares: false,
            history_memory_bytes: None,
            users: None,
            peer_url: None,
        }
    }
}

/// The `gotalk` binary in the directory this bench runs from: the
/// workspace builds both into one (`target/release/gotalk-bench` starts
/// `target/release/gotalk`), whatever the working directory or
/// `CARGO_TARGET_DIR`. `target/release/gotalk` if the bench's own path is
/// unknown.
fn server_beside_bench() -> PathBuf {
    let name = format!("gotalk{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .unwrap_or_else(|| PathBuf::from("target/release").join(name))
}

const HELP: &str = "gotalk-bench: load generator for the goTalk server

Usage: gotalk-bench <SCENARIO> [FLAGS]

Scenarios (each starts its own server on 127.0.0.1, stops by itself and
kills the server at the end):
  relay     S senders pipeline JSON SENDs (a window in flight each) to R
            logged-in receivers that count pushes and ACK every 1000;
            --memory. Reports relayed messages/s, sends/s and CPU.
            With --ws, also the open-loop latency (below) on each door.
  durable   SENDs with 1, 16 and 64 senders that each wait for the reply
            before the next; the durable store (--data in a temp dir) and
            --memory side by side, with commits/s from the server's
            `store stats:` log lines (group commit).
  idle      opens N idle connections (half of them AUTHed users, half after
            one PING) and reports the server's RSS per connection. With
            --tls: N connections (default 2000) that each finish a TLS
            handshake and one PING, not logged in, side by side with plain
            ones of the same shape. With --users N: N users online, one
            idle connection each, and the server's RSS per online user.
  login     registers N users (default 32, --conns N), times one LOGIN
            alone, then N LOGINs at once (a thread and connection each)
            while another connection PINGs every 2 ms; reports LOGIN
            times, PING latency (p50/p99/max) and server RSS after:
            argon2 runs on worker threads and must not stall the loop.
  hotpath   no sockets, no server process: SEND lines through the real
            parser, core and renderer in-process (4 senders, 4 receivers,
            a commit every 512, ACK every 1000); --max-messages sets the
            count (default 2000000). The core is set up as `relay`'s
            server: --memory with history in RAM, and the send and
            fan-out rates on but far above the load (so their checks
            run); --no-history and --no-shares turn each off.
            Deterministic under `valgrind --tool=callgrind`, to compare
            builds (or the four settings) by instructions.
  chaos     4 senders (one SEND at a time, each with a client_id, retried
            after a broken connection) and 3 receivers (SYNC, ACK) against
            a durable server killed at random moments (SIGKILL, one time
            in four SIGTERM) and restarted on the same data; --seconds
            (default 120). Checks that every acknowledged SEND is
            delivered, none again after its ACK, each sender's order
            kept and retried SENDs stored once; exits 1 if not.
  backlog   RSS of an empty server and with 100,000 accounts at rest;
            then --max-messages (default 1000000) messages of 100 bytes
            queued for --conns (default 10000) offline users: rate and
            RSS; a kill -9 and restart: time to the first PING and SYNC,
            RSS; the drain with SYNC/ACK on 8 connections: messages/s,
            RSS. Fails if the drain does not return every message once.
  cluster   two nodes on one PostgreSQL (--postgres URL, emptied):
            the relay load with senders on node A and receivers on node
            B (relayed messages/s; A's commits/s and writes per commit),
            then the open-loop latency (below) with the sender on A at
            --rate (default 5000) messages/s and the receiver on B.
  history   a durable server (SQLite, or --postgres URL) filled with
            --max-messages (default 1000000) messages in --conns (default
            10000) conversations among 1001 users, one of them with 1000
            partners; nothing acknowledged. Reports the fill rate, HISTORY
            page (50) p50/p99 (newest, and from a random point back),
            CONVERSATIONS p50/p99 for the user with 1000 partners, and
            store bytes per message, then the same fill with --no-history
            for its bytes per message. --server-arg passes flags on.
  compare   goTalk against the servers a user might pick instead, in one
            run, in issue 22's shape: 32 sender -> receiver pairs (--senders,
            --receivers), 100-byte messages, window 64 (--window):
            1. relay: gotalk --memory, redis-server (PUBLISH to SUBSCRIBEd
               receivers) and nats-server (PUB to SUBscribed receivers, a
               PING per quarter window whose PONG answers it);
            2. durable relay: gotalk with SQLite (--data in a temp dir)
               against redis-server --appendonly yes --appendfsync always.
               Redis is driven durably: XADD to one stream per receiver
               (its reply, sent after the fsync, is the window, as goTalk's
               SEND reply is sent after the commit), each receiver a
               consumer group reading XREADGROUP COUNT 1000 BLOCK 0 NOACK.
               Why that peer: like goTalk it keeps each message on disk
               until read and keeps each receiver's place on the server
               (the group's last id, logged like goTalk's ACK), so a
               receiver that reconnects resumes; PUBLISH would keep
               nothing, and plain XREAD would keep the place in the client;
            3. latency: the open-loop step on goTalk (line door), Redis
               (PUBLISH -> SUBSCRIBE) and NATS (PUB -> SUB);
            4. idle memory per connection of gotalk, mosquitto (MQTT
               CONNECT), redis and nats (--conns, default 10000);
            5. memory per online user (idle --users 2000) against
               Mosquitto's per connection, and per idle TLS connection
               (idle --tls, 2000) against the 2 KB target.
            Ends with the table of figure, goTalk, peer, ratio, target and
            met; --chart PATH draws it as an SVG. A missing program is
            reported as not installed; CI needs none of them.

  http      the original goTalk's HTTP load: --senders P (default 16)
            pairs, each sender posting /send (token, id, username,
            sendToId, content) on its own keep-alive connection and
            waiting for the reply before the next, each receiver posting
            /sync (token, id; for goTalk also wait=5000, its long-poll) and
            counting messages; --memory (--durable: SQLite). Reports
            messages delivered/s, sends answered/s, /sync requests/s and
            server CPU, then GET /healthz round trips/s on as many
            connections (the floor: a message costs two requests).
            --peer-url runs the same load against a server
            speaking the original's forms (the original Go goTalk),
            side by side with the ratio.
  abuse     the attacks of RELIABILITY.md, each for --seconds (default 4)
            and a count limit against a fresh server: longpoll, silent,
            waiters, unread, mailbox (--memory and durable), client-id,
            login-flood, send-rate, fan-out, connect-storm. Reports server
            RSS before / peak / after, its open files, a bystander's PING
            p50/p99 during the attack against idle, whether a new client is
            served, and for the login flood and the connect storm the
            genuine LOGIN's latency. The server keeps its fair shares
            (send, fan-out, read and connection rates) at their defaults;
            every other scenario lifts them. The attacker connects from
            127.0.0.1, everyone else from 127.0.0.2; its threads run at
            nice 19 (--attacker-nice), as a remote attacker's CPU would
            not be the server's.

The open-loop latency step (relay --ws, cluster, compare): one sender at
a fixed --rate (default 10000) messages/s of 100 bytes to one receiver,
--seconds timed (default 5) after --warmup (default 1). Message i is due
at i/rate s; a late sender sends what is overdue at once and each latency
counts from the message's due time, so a stall is measured rather than
hidden. Reports p50, p99 and max from due time to receipt (µs), the
sender's own p99 lateness (if that is large, the bench fell behind) and
any message missing 5 s after the last was due.

Flags:
  --server PATH        gotalk binary (default: the gotalk beside this
                       binary, e.g. target/release/gotalk)
  --seconds N          measured seconds (relay 10, durable 5 per level,
                       http 5, compare 5 per server and step, open-loop
                       latency 5)
  --warmup N           seconds of load before measuring (relay 2, durable 1,
                       compare and open-loop latency 1)
  --senders S          relay senders (default 4, compare 32)
  --rate N             messages/s of the open-loop latency step (default
                       10000; cluster 5000)
  --receivers R        relay receivers (default 4, compare 32)
  --window W           SENDs in flight per relay sender (default 512,
                       compare 64)
  --chart PATH         compare: also write the targets table as a
                       self-contained SVG chart (e.g. docs/compare.svg)
  --rounds N           compare and http: run each step N times, interleaved
                       (every server's round 1, then every server's round
                       2, ...), and keep each server's best (default 1;
                       issue 22's figures are best of 3)
  --seconds N          measured seconds (relay 10, durable 5 per level, http 5,
                       compare 5 per server)
  --warmup N           seconds of load before measuring (relay 2, durable 1,
                       http 1)
  --senders S          relay senders (default 4); http: pairs (default 16)
  --rate N             cluster: messages/s of the latency step (default
                       5000)
  --receivers R        relay receivers (default 4)
  --window W           SENDs in flight per relay sender (default 512)
  --durable            relay against the durable store (--data in a temp
                       dir) instead of --memory
  --postgres URL       durable: also measure a server on this PostgreSQL
                       database; relay --durable: use it instead of SQLite.
                       Every table in it is dropped at each server start
  --tls                relay plain, then over TLS against a server with a
                       certificate from its own gen-cert (setup LOGINs
                       plain, relay connections AUTH over TLS), side by
                       side with the ratio; idle: plain PINGed connections,
                       then TLS ones, each on a fresh server
  --ws                 relay and idle: the line door, then WebSocket (/ws,
                       connections AUTH with the users' tokens), each on a
                       fresh server, side by side
  --users [N]          idle: N different users (default 2000), each AUTHed
                       with its own token on one idle connection; reports
                       RSS at rest and all online, and bytes per online user
  --levels A,B,C       durable concurrency levels (default 1,16,64)
  --conns N            login: users logging in at once (default 32, at
                       most 1000); idle: connections (default 10000, 2000 with --tls); needs about N+100
                       open files: the bench raises its soft RLIMIT_NOFILE
                       to the hard limit itself (the server inherits it) and
                       fails clearly when even that is too low; run it under
                       `bash -c 'ulimit -n 65536; ...'` then
  --max-messages N     stop sending after N messages whatever the time
                       (default 100000000)
  --attack NAME        abuse: run only this attack (repeat, or A,B,C)
  --server-arg ARG     abuse, backlog, durable, history: pass ARG to the server (repeat for more,
                       e.g. --server-arg=--max-output=1048576)
  --attacker-nice N    abuse: nice value of the attacker's threads, 0..=19
                       (default 19: the attacker's own CPU, which a remote
                       attacker spends on its own machine, gives way to the
                       server and the bystander; 0: a co-located attacker
                       at the server's priority)
  --server-open-files N
                       abuse: the server's open-file limit, soft and hard
                       (default 1024 for longpoll and silent, else the
                       bench's own; 0 inherits the bench's for all)
  --no-history         hotpath: the core of `gotalk --no-history`
  --no-shares          hotpath: no send or fan-out rate (0), so SEND skips
                       the shares' check
  --history-memory-bytes N
                       hotpath: the history's RAM budget (default the
                       server's, 64 MiB); a small one reaches the steady
                       state (the oldest message leaves as one arrives)
                       within a short run
  --peer-url URL       http: also load the server at http://HOST:PORT
                       (the original Go goTalk: tokens are not checked
                       there; its CPU is read from the process listening
                       on the port, when this user may see it)
  --help               print this help

Example: cargo build --release --workspace && target/release/gotalk-bench relay
";

fn parse(args: &[String]) -> Result<(String, Opts), String> {
    let mut opts = Opts::default();
    let mut scenario = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value ({what})"))
        };
        match name.as_str() {
            "--help" | "-h" => return Ok(("help".into(), opts)),
            "--durable" => opts.durable = true,
            "--postgres" => opts.postgres = Some(value("URL")?),
            "--tls" => opts.tls = true,
            "--no-history" => opts.no_history = true,
            "--no-shares" => opts.no_shares = true,
            "--history-memory-bytes" => {
                opts.history_memory_bytes = Some(count(&name, &value("BYTES")?)?)
            }
            "--ws" => opts.ws = true,
            "--server" => opts.server = PathBuf::from(value("PATH")?),
            "--seconds" => opts.seconds = Some(positive(&name, &value("N")?)?),
            "--warmup" => opts.warmup = Some(non_negative(&name, &value("N")?)?),
            "--senders" => opts.senders = Some(count(&name, &value("S")?)?),
            "--rate" => opts.rate = Some(count(&name, &value("N")?)? as u64),
            "--receivers" => opts.receivers = Some(count(&name, &value("R")?)?),
            "--window" => opts.window = Some(count(&name, &value("W")?)?),
            "--chart" => opts.chart = Some(PathBuf::from(value("PATH")?)),
            "--rounds" => opts.rounds = Some(count(&name, &value("N")?)?),
            "--conns" => opts.conns = Some(count(&name, &value("N")?)?),
            "--max-messages" => opts.max_messages = count(&name, &value("N")?)? as u64,
            "--attack" => {
                let v = value("NAME")?;
                opts.attacks
                    .extend(v.split(',').map(|s| s.trim().to_string()));
            }
            "--server-arg" => opts.server_args.push(value("ARG")?),
            "--peer-url" => opts.peer_url = Some(value("URL")?),
            "--server-open-files" => {
                let v = value("N")?;
                let n = v
                    .parse::<u64>()
                    .map_err(|_| format!("{name}: '{v}' is not a whole number (0 inherits)"))?;
                opts.server_open_files = Some(n);
            }
            "--attacker-nice" => {
                let v = value("N")?;
                opts.attacker_nice = match v.parse::<i32>() {
                    Ok(n) if (0..=19).contains(&n) => n,
                    _ => return Err(format!("{name}: '{v}' is not a nice value in 0..=19")),
                };
            }
            "--users" => {
                // The count is optional: `idle --users` alone means 2,000.
                let given = inline.clone().or_else(|| {
                    let next = args.get(i + 1)?;
                    next.parse::<usize>().is_ok().then(|| {
                        i += 1;
                        next.clone()
                    })
                });
                opts.users = Some(match given {
                    Some(v) => count(&name, &v)?,
                    None => idle_users::DEFAULT_USERS,
                });
            }
            "--levels" => {
                let v = value("A,B,C")?;
                opts.levels = v
                    .split(',')
                    .map(|s| count("--levels", s.trim()))
                    .collect::<Result<_, _>>()?;
            }
            _ if !arg.starts_with('-') && scenario.is_none() => scenario = Some(arg.clone()),
            _ => return Err(format!("unknown argument '{arg}' (see --help)")),
        }
        i += 1;
    }
    let scenario = scenario.ok_or(
        "name a scenario: relay, durable, idle, login, hotpath, http, compare, abuse, chaos or backlog",
    )?;
    Ok((scenario, opts))
}

fn positive(flag: &str, text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!(
            "{flag}: '{text}' is not a number of seconds in (0, 3600]"
        )),
    }
}

fn non_negative(flag: &str, text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{flag}: '{text}' is not a number of seconds in [0, 600]"
        )),
    }
}

fn count(flag: &str, text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{flag}: '{text}' is not a whole number >= 1")),
    }
}

/// Prints rows as an aligned plain-text table (also valid Markdown).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        line(row.clone());
    }
}

/// A rate with thousands separators, e.g. `1,234,567`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (scenario, opts) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("gotalk-bench: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(url) = &opts.postgres {
        let _ = server::POSTGRES_URL.set(url.clone());
    }
    let result = match scenario.as_str() {
        "help" => {
            print!("{HELP}");
            Ok(())
        }
        "relay" => relay::run(&opts),
        "durable" => durable::run(&opts),
        "idle" => idle::run(&opts),
        "login" => login::run(&opts),
        "hotpath" => hotpath::run(&opts),
        "compare" => compare::run(&opts),
        "cluster" => cluster::run(&opts),
        "abuse" => abuse::run(&opts),
        "chaos" => chaos::run(&opts),
        "backlog" => backlog::run(&opts),
        "history" => history::run(&opts),
        "http" => http::run(&opts),
        other => Err(format!(
            "unknown scenario '{other}': relay, durable, idle, login, hotpath, compare, abuse, chaos, backlog, history or http (see --help)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gotalk-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_parse_both_ways() {
        let (s, o) = parse(&args(&["relay", "--senders", "2", "--seconds=3"])).unwrap();
        assert_eq!(s, "relay");
        assert_eq!(o.senders, Some(2));
        assert_eq!(o.seconds, Some(3.0));
        let (_, o) = parse(&args(&["durable", "--levels", "1,8"])).unwrap();
        assert_eq!(o.levels, [1, 8]);
        let (_, o) = parse(&args(&[
            "abuse",
            "--attack",
            "silent,mailbox",
            "--attack=longpoll",
            "--server-arg=--max-output=1048576",
            "--server-arg",
            "--log-level=warn",
            "--server-open-files",
            "0",
            "--attacker-nice=0",
        ]))
        .unwrap();
        assert_eq!(o.attacker_nice, 0);
        assert_eq!(o.attacks, ["silent", "mailbox", "longpoll"]);
        assert_eq!(o.server_args, ["--max-output=1048576", "--log-level=warn"]);
        assert_eq!(o.server_open_files, Some(0));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&args(&["relay", "--bogus"])).is_err());
        assert!(parse(&args(&["relay", "--senders", "0"])).is_err());
        assert!(parse(&args(&["abuse", "--attacker-nice", "20"])).is_err());
        assert!(parse(&args(&["--seconds", "2"])).is_err());
        assert!(parse(&args(&["relay", "--seconds"])).is_err());
    }

    #[test]
    fn the_default_server_sits_beside_the_bench() {
        let (_, o) = parse(&args(&["relay"])).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(o.server.parent(), exe.parent());
        assert_eq!(
            o.server.file_name().unwrap(),
            format!("gotalk{}", std::env::consts::EXE_SUFFIX).as_str()
        );
        let (_, o) = parse(&args(&["relay", "--server", "/opt/gotalk"])).unwrap();
        assert_eq!(o.server, PathBuf::from("/opt/gotalk"));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
