//! `gotalk admin …`: the operator's commands, a client of the running
//! server's admin socket (`--socket`, default `DIR/admin.sock` from
//! `--data`). Each command sends JSON request lines (see `wire.rs`) and
//! prints what the server answered: a line of words for a change, JSON
//! for what was read. Exit status 0 on success, 1 with a one-line reason
//! on stderr otherwise (2 for a usage error, from clap). Passwords are
//! read from stdin, never from the command line, where other users could
//! see them in the process list.

use crate::config::flags::DEFAULT_DATA_DIR;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The server's admin socket (default DIR/admin.sock)
    #[arg(long, env = "GOTALK_ADMIN_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The server's data directory, where its socket is by default
    #[arg(long = "data", env = "GOTALK_DATA", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Accounts: add, import, list, show, disable, enable, reset-password,
    /// logout, delete, export
    #[command(subcommand)]
    User(UserCommand),
    /// Print the server's figures (the same JSON as /stats)
    Stats,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account; the password is read from stdin
    Add {
        name: String,
        /// Generate a password instead, and print it (once)
        #[arg(long)]
        random_password: bool,
    },
    /// Create the accounts of a file: CSV rows `name,password` or JSON
    /// lines {"name":…,"password":…}; each row's result is printed
    Import { file: PathBuf },
    /// List accounts by name, one JSON object a line
    List {
        /// Only names starting with this
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many (at most 10000)
        #[arg(long, default_value_t = crate::admin::wire::DEFAULT_LIST_LIMIT)]
        limit: usize,
    },
    /// Print one account's record as JSON
    Show { name: String },
    /// Refuse the account's LOGIN and AUTH and end its sessions
    Disable { name: String },
    /// Let a disabled account log in again
    Enable { name: String },
    /// Set a new password, read from stdin; ends every session
    ResetPassword {
        name: String,
        /// Generate a password instead, and print it (once)
        #[arg(long)]
        random_password: bool,
    },
    /// End every session of the account
    Logout { name: String },
    /// Delete the account, its mailbox, history and client_ids
    Delete {
        name: String,
        /// Confirm: the deletion cannot be undone
        #[arg(long)]
        yes: bool,
    },
    /// Print everything stored about the account as JSON
    Export { name: String },
}

/// Prints a line; a closed stdout (`| head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Runs one `gotalk admin` command.
pub fn run(args: AdminArgs) -> ExitCode {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| args.data_dir.join("admin.sock"));
    match command(&socket, args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("gotalk admin: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// One connection to the admin socket.
struct Session {
    out: UnixStream,
    input: BufReader<UnixStream>,
}

impl Session {
    fn open(socket: &Path) -> Result<Session, String> {
        let stream = UnixStream::connect(socket).map_err(|e| {
            format!(
                "cannot connect to {}: {e} (is the server running? its socket is --admin-socket; \
                 give it here with --socket)",
                socket.display()
            )
        })?;
        let input = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        Ok(Session { out: stream, input })
    }

    /// Sends one request; the reply, or its refusal as one line.
    fn ask(&mut self, request: &Value) -> Result<Value, String> {
        writeln!(self.out, "{request}")
            .map_err(|e| format!("the server closed the socket: {e}"))?;
        let mut line = String::new();
        self.input
            .read_line(&mut line)
            .map_err(|e| format!("reading the reply: {e}"))?;
        if line.is_empty() {
            return Err("the server closed the socket without answering".into());
        }
        let reply: Value =
            serde_json::from_str(&line).map_err(|e| format!("an unreadable reply: {e}"))?;
        if reply["ok"] == json!(true) {
            Ok(reply)
        } else {
            Err(format!(
                "{} ({})",
                reply["message"].as_str().unwrap_or("refused"),
                reply["error"].as_str().unwrap_or("error")
            ))
        }
    }
}

fn command(socket: &Path, command: AdminCommand) -> Result<(), String> {
    let user = match command {
        AdminCommand::Stats => {
            let reply = Session::open(socket)?.ask(&json!({"op": "stats"}))?;
            return print_json(&reply["stats"]);
        }
        AdminCommand::User(user) => user,
    };
    match user {
        UserCommand::Import { file } => return import(socket, &file),
        UserCommand::Delete { yes: false, name } => {
            return Err(format!(
                "deleting {name} cannot be undone: add --yes to go ahead"
            ))
        }
        _ => {}
    }
    // The password first: a wrong socket is found after it is typed, but
    // nothing waits on the server while it is.
    let (request, shown) = match &user {
        UserCommand::Add {
            name,
            random_password,
        } => {
            let (password, shown) = password(*random_password)?;
            (
                json!({"op": "user.add", "name": name, "password": password}),
                shown,
            )
        }
        UserCommand::ResetPassword {
            name,
            random_password,
        } => {
            let (password, shown) = password(*random_password)?;
            let request = json!({"op": "user.reset-password", "name": name, "password": password});
            (request, shown)
        }
        UserCommand::List { prefix, limit } => (
            json!({"op": "user.list", "prefix": prefix, "limit": limit}),
            None,
        ),
        UserCommand::Show { name } => (json!({"op": "user.show", "name": name}), None),
        UserCommand::Disable { name } => (json!({"op": "user.disable", "name": name}), None),
        UserCommand::Enable { name } => (json!({"op": "user.enable", "name": name}), None),
        UserCommand::Logout { name } => (json!({"op": "user.logout", "name": name}), None),
        UserCommand::Delete { name, .. } => (json!({"op": "user.delete", "name": name}), None),
        UserCommand::Export { name } => (json!({"op": "user.export", "name": name}), None),
        UserCommand::Import { .. } => unreachable!("handled above"),
    };
    let reply = Session::open(socket)?.ask(&request)?;
    match &user {
        UserCommand::Add { .. } => {
            say!(
                "created {} (id {})",
                reply["name"].as_str().unwrap_or("?"),
                reply["id"]
            );
        }
        UserCommand::List { .. } => {
            for row in reply["users"].as_array().into_iter().flatten() {
                say!("{row}");
            }
        }
        UserCommand::Show { .. } => print_json(&reply["user"])?,
        UserCommand::Export { .. } => print_json(&reply["export"])?,
        _ => say!("{}", reply["done"].as_str().unwrap_or("done")),
    }
    if let Some(password) = shown {
        say!("password: {password}");
    }
    Ok(())
}

/// One line of JSON (`| jq` makes it pretty).
fn print_json(value: &Value) -> Result<(), String> {
    say!("{value}");
    Ok(())
}

/// The password to send, and (when generated) to print.
fn password(random: bool) -> Result<(String, Option<String>), String> {
    if random {
        let password = random_password();
        return Ok((password.clone(), Some(password)));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(64 * 1024)
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err("give the password on stdin (one line), or use --random-password".into());
    }
    Ok((password, None))
}

/// 22 letters and digits from the operating system's random source
/// (about 130 bits).
fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut out = String::new();
    let mut bits = crate::token::new_identity();
    let mut left = 128;
    while out.len() < 22 {
        if left < 8 {
            bits = crate::token::new_identity();
            left = 128;
        }
        let pick = (bits & 0xff) as usize;
        bits >>= 8;
        left -= 8;
        // Unbiased: values past the last whole round of the alphabet are skipped.
        if pick < 256 - 256 % ALPHABET.len() {
            out.push(ALPHABET[pick % ALPHABET.len()] as char);
        }
    }
    out
}

/// A row's name and password, or why it has none.
type Parsed = Result<(String, String), String>;

/// One row of an import file: its line number and what it holds.
struct Row {
    line: usize,
    parsed: Parsed,
}

/// Reads `name,password` rows (CSV) or JSON lines; blank lines and lines
/// starting with `#` are skipped, and so is a first line `name,password`.
fn rows(text: &str) -> Vec<Row> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if i == 0 && trimmed.eq_ignore_ascii_case("name,password") {
            continue;
        }
        let parsed = if trimmed.starts_with('{') {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(v) => match (v["name"].as_str(), v["password"].as_str()) {
                    (Some(n), Some(p)) => Ok((n.to_string(), p.to_string())),
                    _ => Err("a JSON row needs \"name\" and \"password\" strings".to_string()),
                },
                Err(e) => Err(format!("not JSON: {e}")),
            }
        } else {
            // The name holds no comma; the password may.
            match line.split_once(',') {
                Some((n, p)) if !n.trim().is_empty() => Ok((n.trim().to_string(), p.to_string())),
                _ => Err("a CSV row is name,password".to_string()),
            }
        };
        out.push(Row {
            line: i + 1,
            parsed,
        });
    }
    out
}

/// Connections an import uses at once, so passwords hash in parallel.
const IMPORT_CONNECTIONS: usize = 4;

/// `user import FILE`: each row's result, in file order, then a summary.
fn import(socket: &Path, file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let rows = rows(&text);
    // Fail early, before any row, when the server is not there.
    drop(Session::open(socket)?);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<String, String>>>> =
        rows.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..IMPORT_CONNECTIONS.min(rows.len()) {
            scope.spawn(|| {
                let mut session = Session::open(socket);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(row) = rows.get(i) else { return };
                    let result = match (&row.parsed, &mut session) {
                        (Err(e), _) => Err(e.clone()),
                        (Ok(_), Err(e)) => Err(e.clone()),
                        (Ok((name, password)), Ok(session)) => session
                            .ask(&json!({"op": "user.add", "name": name, "password": password}))
                            .map(|r| format!("created {name} (id {})", r["id"])),
                    };
                    *results[i].lock().expect("not poisoned") = Some(result);
                }
            });
        }
    });
    let (mut created, mut failed) = (0, 0);
    for (row, result) in rows.iter().zip(results) {
        let result = result
            .into_inner()
            .expect("not poisoned")
            .expect("every row ran");
        match result {
            Ok(said) => {
                created += 1;
                say!("line {}: {said}", row.line);
            }
            Err(why) => {
                failed += 1;
                let name = row.parsed.as_ref().map_or("", |(n, _)| n.as_str());
                say!("line {}: {name}: {why}", row.line);
            }
        }
    }
    say!("import: {created} created, {failed} failed");
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} of {} rows failed (see above)", rows.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_rows_are_csv_or_json_lines_each_with_its_line_number() {
        let text = "name,password\nalice,pass,word1\n\n# a comment\n{\"name\":\"bob\",\"password\":\"p\"}\nnocomma\n{\"name\":1}\n";
        let got: Vec<(usize, Parsed)> =
            rows(text).into_iter().map(|r| (r.line, r.parsed)).collect();
        assert_eq!(got[0], (2, Ok(("alice".into(), "pass,word1".into()))));
        assert_eq!(got[1], (5, Ok(("bob".into(), "p".into()))));
        assert_eq!(got[2].0, 6);
        assert!(got[2].1.is_err());
        assert_eq!(got[3].0, 7);
        assert!(got[3].1.is_err());
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_random_password_is_22_letters_and_digits_and_differs_each_time() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 22);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
