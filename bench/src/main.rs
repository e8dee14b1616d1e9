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
mod help;
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
            print!("{}", help::HELP);
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
