//! The flag table, part two: the budgets (memory, mailboxes, connections'
//! output) and the throttles (password checks, failed logins, lookups),
//! each declared once with its `GOTALK_*` variable, default, minimum and
//! help. What a client sees when it reaches one is in protocol.md; what
//! each costs the server is in docs/operating.md.

use super::values;
use clap::Args;

/// Default of `--pending-bytes-per-sender` (it is lowered with a small
/// `--pending-bytes` when not given: `mod.rs`).
pub const DEFAULT_PENDING_BYTES_PER_SENDER: usize = 8 << 20;

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Budgets")]
pub struct Limits {
    /// Longest request line
    #[arg(long, env = "GOTALK_MAX_LINE", value_name = "BYTES",
          default_value = "65536", value_parser = values::count::<64>)]
    pub max_line: usize,
    /// Output queued for one client before it is disconnected as a slow
    /// reader
    #[arg(long, env = "GOTALK_MAX_OUTPUT", value_name = "BYTES",
          default_value = "8388608", value_parser = values::count::<65536>)]
    pub max_output: usize,
    /// Output queued for all clients together; past it the clients holding
    /// the most unread output are disconnected
    #[arg(long, env = "GOTALK_MAX_OUTPUT_TOTAL", value_name = "BYTES",
          default_value = "268435456", value_parser = values::count::<65536>)]
    pub max_output_total: usize,
    /// Unacknowledged messages per user
    #[arg(long, env = "GOTALK_MAILBOX_LIMIT", value_name = "N",
          default_value = "100000", value_parser = values::count::<1>)]
    pub mailbox_limit: usize,
    /// Unacknowledged messages per user, in bytes as stored (JSON), SENDs in
    /// flight included
    #[arg(long, env = "GOTALK_MAILBOX_BYTES", value_name = "BYTES",
          default_value = "16777216", value_parser = values::count::<1024>)]
    pub mailbox_bytes: usize,
    /// Unacknowledged messages held in memory for all users, in bytes as
    /// stored
    #[arg(long, env = "GOTALK_PENDING_BYTES", value_name = "BYTES",
          default_value = "536870912", value_parser = values::count::<1024>)]
    pub pending_bytes: usize,
    /// Unacknowledged messages one sender may have in custody across all
    /// receivers, in bytes as stored, SENDs in flight included: room for a
    /// 64 KiB message to each of 100 offline friends, while 64 senders are
    /// needed to fill --pending-bytes (when not given: --pending-bytes / 64
    /// if smaller, but at least twice the largest message)
    #[arg(long, env = "GOTALK_PENDING_BYTES_PER_SENDER", value_name = "BYTES",
          default_value_t = DEFAULT_PENDING_BYTES_PER_SENDER, value_parser = values::count::<1024>)]
    pub pending_bytes_per_sender: usize,
    /// client_ids remembered per sender for deduplication: 24 h or the last
    /// N, whichever is shorter
    #[arg(long, env = "GOTALK_CLIENT_IDS_PER_SENDER", value_name = "N",
          default_value = "10000", value_parser = values::count::<1>)]
    pub client_ids_per_sender: usize,
    /// Accounts held in RAM besides logged-in users' (and idle mailboxes
    /// whose figures are kept); others are read from the store when needed
    #[arg(long, env = "GOTALK_ACCOUNT_CACHE", value_name = "N",
          default_value = "20000", value_parser = values::count::<1>)]
    pub account_cache: usize,
    /// Messages of a logged-in user's mailbox held in RAM; the rest is read
    /// from the store as it drains
    #[arg(long, env = "GOTALK_MAILBOX_WINDOW", value_name = "N",
          default_value = "256", value_parser = values::count::<1>)]
    pub mailbox_window: usize,
    /// The same window in bytes as stored
    #[arg(long, env = "GOTALK_MAILBOX_WINDOW_BYTES", value_name = "BYTES",
          default_value = "262144", value_parser = values::count::<1024>)]
    pub mailbox_window_bytes: usize,
    /// Long-polls (SYNC with wait_ms) waiting at once for one user
    #[arg(long, env = "GOTALK_WAITERS_PER_USER", value_name = "N",
          default_value = "16", value_parser = values::count::<1>)]
    pub waiters_per_user: usize,
    /// Line connections logged in as one user at once
    #[arg(long, env = "GOTALK_CONNS_PER_USER", value_name = "N",
          default_value = "16", value_parser = values::count::<1>)]
    pub conns_per_user: usize,
    /// Tokens of one account LOGOUT revokes one by one (each kept until it
    /// would expire); a LOGOUT past it ends all the account's sessions, like
    /// LOGOUT all
    #[arg(long, env = "GOTALK_REVOCATIONS_PER_ACCOUNT", value_name = "N",
          default_value = "100", value_parser = values::count::<1>)]
    pub revocations_per_account: usize,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Passwords and throttles")]
pub struct Throttles {
    /// Password hashing threads
    #[arg(long, env = "GOTALK_HASH_THREADS", value_name = "N",
          default_value = "2", value_parser = values::count::<1>)]
    pub hash_threads: usize,
    /// Password checks (LOGIN, REGISTER) waiting for a thread; more are
    /// rate_limited
    #[arg(long, env = "GOTALK_HASH_QUEUE", value_name = "N",
          default_value = "1024", value_parser = values::count::<1>)]
    pub hash_queue: usize,
    /// Password checks waiting from one address (IPv6: one /64); more are
    /// rate_limited
    #[arg(long, env = "GOTALK_HASH_QUEUE_PER_ADDRESS", value_name = "N",
          default_value = "16", value_parser = values::count::<1>)]
    pub hash_queue_per_address: usize,
    /// Failed LOGINs of one username a minute, from all addresses that have
    /// not logged in to it lately (each that has gets as many of its own);
    /// more wait, answered rate_limited
    #[arg(long, env = "GOTALK_LOGIN_FAILURES_PER_MINUTE", value_name = "N",
          default_value = "10", value_parser = values::at_least::<1>)]
    pub login_failures_per_minute: u64,
    /// Failed LOGINs of one username at once before that rate applies;
    /// twice as many for an address
    #[arg(long, env = "GOTALK_LOGIN_FAILURE_BURST", value_name = "N",
          default_value = "5", value_parser = values::at_least::<1>)]
    pub login_failure_burst: u64,
    /// Failed LOGINs from one address (IPv6: one /64) a minute, whatever
    /// the usernames
    #[arg(long, env = "GOTALK_LOGIN_FAILURES_PER_ADDRESS_MINUTE", value_name = "N",
          default_value = "30", value_parser = values::at_least::<1>)]
    pub login_failures_per_address_minute: u64,
    /// REGISTERs from one address an hour; more are rate_limited
    #[arg(long, env = "GOTALK_REGISTERS_PER_ADDRESS_HOUR", value_name = "N",
          default_value = "20", value_parser = values::at_least::<1>)]
    pub registers_per_address_hour: u64,
    /// Usernames and addresses each login or register throttle table
    /// remembers
    #[arg(long, env = "GOTALK_THROTTLE_ENTRIES", value_name = "N",
          default_value = "100000", value_parser = values::count::<16>)]
    pub throttle_entries: usize,
    /// Name lookups (LOOKUP, /getuseridbyname, SEND to an unknown name) from
    /// one address (IPv6: one /64) a minute; more are rate_limited
    #[arg(long, env = "GOTALK_LOOKUPS_PER_ADDRESS_MINUTE", value_name = "N",
          default_value = "60", value_parser = values::at_least::<1>)]
    pub lookups_per_address_minute: u64,
    /// LOGINs of one username an hour from an address of its own once the
    /// username's shared budget is used up, so guesses from elsewhere
    /// cannot lock the owner out; 0: none
    #[arg(long, env = "GOTALK_LOGIN_TRIES_PER_NEW_ADDRESS_HOUR", value_name = "N",
          default_value = "3", value_parser = values::at_least::<0>)]
    pub login_tries_per_new_address_hour: u64,
    /// Successful LOGINs of one account a minute (that many at once); more
    /// are rate_limited
    #[arg(long, env = "GOTALK_LOGINS_PER_ACCOUNT_MINUTE", value_name = "N",
          default_value = "30", value_parser = values::at_least::<1>)]
    pub logins_per_account_minute: u64,
    // Fair shares: rates per account, per connection and per address.
    /// SENDs one account may make a second, all its connections and doors
    /// together (on PostgreSQL: on each node); more are rate_limited with
    /// retry_after_ms and not stored; 0 for no limit
    #[arg(long, env = "GOTALK_SENDS_PER_SECOND", value_name = "N",
          default_value = "20", value_parser = values::at_least::<0>)]
    pub sends_per_second: u64,
    /// SENDs an account may make at once before that rate applies
    #[arg(long, env = "GOTALK_SEND_BURST", value_name = "N",
          default_value = "200", value_parser = values::at_least::<1>)]
    pub send_burst: u64,
    /// Users one account may message for the first time in an hour (a user
    /// it wrote to or heard from this hour is not new); more are
    /// rate_limited with retry_after_ms; 0 for no limit
    #[arg(long, env = "GOTALK_NEW_RECIPIENTS_PER_HOUR", value_name = "N",
          default_value = "100", value_parser = values::at_least::<0>)]
    pub new_recipients_per_hour: u64,
    /// Bytes a second read from one connection; past it the socket is not
    /// read until the rate allows (the client waits, nothing is refused).
    /// A SEND counts its message as rendered when that is larger than its
    /// line (control characters render to six bytes each); 0 for no limit
    #[arg(long, env = "GOTALK_READ_BYTES_PER_SECOND", value_name = "BYTES",
          default_value = "1048576", value_parser = values::at_least::<0>)]
    pub read_bytes_per_second: u64,
    /// Bytes a connection may send at once before that rate applies
    #[arg(long, env = "GOTALK_READ_BURST", value_name = "BYTES",
          default_value = "4194304", value_parser = values::at_least::<4096>)]
    pub read_burst: u64,
    /// New connections one address (IPv6: its /64) may open a second; more
    /// are closed at once, unanswered; 0 for no limit
    #[arg(long, env = "GOTALK_CONNECTIONS_PER_ADDRESS_PER_SECOND", value_name = "N",
          default_value = "20", value_parser = values::at_least::<0>)]
    pub connections_per_address_per_second: u64,
    /// New connections an address may open at once before that rate applies
    #[arg(long, env = "GOTALK_CONNECTIONS_PER_ADDRESS_BURST", value_name = "N",
          default_value = "100", value_parser = values::at_least::<1>)]
    pub connections_per_address_burst: u64,
    /// Connections from one address closed at accept for that rate within a
    /// second that have the kernel drop the address's new connections
    /// unanswered for --connection-storm-block-seconds (a storm then costs
    /// no handshakes); 0: never
    #[arg(long, env = "GOTALK_CONNECTION_STORM_CUTS", value_name = "N",
          default_value = "1000", value_parser = values::at_least::<0>)]
    pub connection_storm_cuts: u64,
    /// How long a storming address's new connections are dropped
    #[arg(long, env = "GOTALK_CONNECTION_STORM_BLOCK_SECONDS", value_name = "SECONDS",
          default_value = "5", value_parser = values::at_least::<1>)]
    pub connection_storm_block_seconds: u64,
}
