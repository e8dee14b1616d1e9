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
//! door (`--ws`); [`http`] is the original goTalk's form posts over the
//! HTTP shim, beside the original itself (`--peer-url`), with
//! [`http_wire`] its client side of HTTP/1.1.

mod abuse;
mod backlog;
mod chaos;
mod cluster;
mod compare;
mod durable;
mod history;
mod hotpath;
mod http;
mod http_wire;
mod idle;
mod login;
mod relay;
mod server;
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
    /// `cluster`: SENDs per second of the latency step.
    pub rate: Option<u64>,
    pub receivers: Option<usize>,
    /// Requests in flight per pipelining sender.
    pub window: usize,
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
    /// `http`: another server speaking the original goTalk's forms, run
    /// under the same load side by side.
    pub peer_url: Option<String>,
    /// `http`: interleaved rounds (goTalk, then the peer), best of each.
    pub rounds: usize,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            server: server_beside_bench(),
            seconds: None,
            warmup: None,
            senders: None,
            rate: None,
            receivers: None,
            window: 512,
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
            peer_url: None,
            rounds: 1,
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
  durable   SENDs with 1, 16 and 64 senders that each wait for the reply
            before the next; the durable store (--data in a temp dir) and
            --memory side by side, with commits/s from the server's
            `store stats:` log lines (group commit).
  idle      opens N idle connections (half of them AUTHed users, half after
            one PING) and reports the server's RSS per connection.
  login     registers N users (default 32, --conns N), times one LOGIN
            alone, then N LOGINs at once (a thread and connection each)
            while another connection PINGs every 2 ms; reports LOGIN
            times, PING latency (p50/p99/max) and server RSS after:
            argon2 runs on worker threads and must not stall the loop.
  hotpath   no sockets, no server process: SEND lines through the real
            parser, core and renderer in-process (4 senders, 4 receivers,
            a commit every 512, ACK every 1000); --max-messages sets the
            count (default 2000000). Deterministic under
            `valgrind --tool=callgrind`, to compare builds by instructions.
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
            then one sender on A at --rate (default 5000) messages/s and
            one receiver on B: SEND-to-push p50, p99 and max.
  history   a durable server (SQLite, or --postgres URL) filled with
            --max-messages (default 1000000) messages in --conns (default
            10000) conversations among 1001 users, one of them with 1000
            partners; nothing acknowledged. Reports the fill rate, HISTORY
            page (50) p50/p99 (newest, and from a random point back),
            CONVERSATIONS p50/p99 for the user with 1000 partners, and
            store bytes per message, then the same fill with --no-history
            for its bytes per message. --server-arg passes flags on.
  http      the original goTalk's HTTP load: --senders P (default 16)
            pairs, each sender posting /send (token, id, username,
            sendToId, content) on its own keep-alive connection and
            waiting for the reply before the next, each receiver posting
            /sync (token, id; for goTalk also wait=5000, its long-poll) and
            counting messages; --memory (--durable: SQLite). Reports
            messages delivered/s, sends answered/s, /sync requests/s and
            server CPU, then GET /healthz round trips/s on as many
            connections (the floor: a message costs two requests). --peer-url runs the same load against a server
            speaking the original's forms (the original Go goTalk),
            side by side with the ratio.
  compare   the relay shape against redis-server (PUBLISH/SUBSCRIBE) and
            nats-server (PUB/SUB), and idle connection memory of
            mosquitto (MQTT CONNECT), redis and nats, next to goTalk; each
            missing program is reported as not installed.
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

Flags:
  --server PATH        gotalk binary (default: the gotalk beside this
                       binary, e.g. target/release/gotalk)
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
                       side with the ratio
  --ws                 relay and idle: the line door, then WebSocket (/ws,
                       connections AUTH with the users' tokens), each on a
                       fresh server, side by side
  --levels A,B,C       durable concurrency levels (default 1,16,64)
  --conns N            login: users logging in at once (default 32, at
                       most 1000); idle: connections (default 10000); needs about N+100
                       open files: the bench raises its soft RLIMIT_NOFILE
                       to the hard limit itself (the server inherits it) and
                       fails clearly when even that is too low; run it under
                       `bash -c 'ulimit -n 65536; ...'` then
  --max-messages N     stop sending after N messages whatever the time
                       (default 100000000)
  --attack NAME        abuse: run only this attack (repeat, or A,B,C)
  --server-arg ARG     abuse, backlog, history: pass ARG to the server (repeat for more,
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
  --peer-url URL       http: also load the server at http://HOST:PORT
                       (the original Go goTalk: tokens are not checked
                       there; its CPU is read from the process listening
                       on the port, when this user may see it)
  --rounds N           http: N interleaved rounds (goTalk on a fresh
                       server, then the peer), the best of each (default 1)
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
            "--ws" => opts.ws = true,
            "--server" => opts.server = PathBuf::from(value("PATH")?),
            "--seconds" => opts.seconds = Some(positive(&name, &value("N")?)?),
            "--warmup" => opts.warmup = Some(non_negative(&name, &value("N")?)?),
            "--senders" => opts.senders = Some(count(&name, &value("S")?)?),
            "--rate" => opts.rate = Some(count(&name, &value("N")?)? as u64),
            "--receivers" => opts.receivers = Some(count(&name, &value("R")?)?),
            "--window" => opts.window = count(&name, &value("W")?)?,
            "--conns" => opts.conns = Some(count(&name, &value("N")?)?),
            "--max-messages" => opts.max_messages = count(&name, &value("N")?)? as u64,
            "--attack" => {
                let v = value("NAME")?;
                opts.attacks
                    .extend(v.split(',').map(|s| s.trim().to_string()));
            }
            "--server-arg" => opts.server_args.push(value("ARG")?),
            "--peer-url" => opts.peer_url = Some(value("URL")?),
            "--rounds" => opts.rounds = count(&name, &value("N")?)?,
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
