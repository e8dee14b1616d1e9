//! Limits that are not flags: fixed by the contract or by sense. Every
//! module that enforces one imports it from here by name
//! (`config::limits::SYNC_MAX_LIMIT`), so a limit has one value.

/// Default and most messages one SYNC returns.
pub const SYNC_DEFAULT_LIMIT: usize = 100;
pub const SYNC_MAX_LIMIT: usize = 1000;
/// A SYNC reply stops adding messages past this many bytes (at least one
/// message is always returned), so one reply can never blow the output
/// limit.
pub const SYNC_MAX_BYTES: usize = 1 << 20;
/// Longest long-poll a client may ask for.
pub const MAX_WAIT_MS: u64 = 5 * 60 * 1000;
/// Longest message content, whichever door it comes through (a line
/// caps it anyway; this keeps HTTP to the same rule).
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// Longest `client_id`.
pub const MAX_CLIENT_ID_BYTES: usize = 128;
/// Longest `tag` (its JSON text) a request may carry to be echoed.
pub const MAX_TAG_BYTES: usize = 256;
/// How long a `client_id` is remembered.
pub const CLIENT_ID_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
/// Longest password accepted (argon2 has no need for more).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Fewest characters a new password (REGISTER) has, after NIST SP
/// 800-63B. LOGIN does not check it, so every failed LOGIN looks alike.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Output queued for a connection past which the server stops reading its
/// requests until the client reads its replies (flow control, no close).
pub const OUTPUT_PAUSE_BYTES: usize = 256 * 1024;
/// Bytes read from a socket per read call (one shared scratch buffer).
pub const READ_CHUNK: usize = 64 * 1024;
/// Most bytes read from one connection in one loop turn; the rest is
/// read next turn, so one busy client cannot starve the others.
pub const READ_BUDGET_PER_TURN: usize = READ_CHUNK;
/// Most bytes written to one connection in one loop turn.
pub const WRITE_BUDGET_PER_TURN: usize = 256 * 1024;
/// Most bytes written to all connections together in one loop turn:
/// a burst of large pushes is spread over several turns, so the other
/// clients' requests are read in between.
pub const TOTAL_WRITE_BUDGET_PER_TURN: usize = 2 << 20;
/// Most connections accepted in one loop turn; the rest wait in the
/// backlog for the next turn, so a connection flood cannot make one
/// turn (and everyone's replies) arbitrarily long.
pub const ACCEPTS_PER_TURN: usize = 64;
/// After `accept` fails for want of file descriptors, how long to wait
/// before trying again.
pub const ACCEPT_RETRY_MS: u64 = 100;
/// After the total output budget is exceeded, connections are closed
/// until this fraction (in percent) of it is used.
pub const OUTPUT_TOTAL_RELIEF_PERCENT: usize = 90;
/// HTTP: largest header block, most headers, largest body.
pub const HTTP_MAX_HEADER_BYTES: usize = 16 * 1024;
pub const HTTP_MAX_HEADERS: usize = 64;
pub const HTTP_MAX_BODY: usize = 256 * 1024;
/// Partners (users written to or heard from this hour) one account's
/// fan-out record holds (`core/shares.rs`); a partner past it is not
/// remembered, so a reply to it counts as a new recipient.
pub const PARTNERS_PER_ACCOUNT: usize = 1024;
/// Most requests (lines, WebSocket messages, HTTP requests) one
/// connection's door runs in one loop turn; the rest wait in its input for
/// the next turn, and the socket is not read meanwhile. A client pipelining
/// hundreds of cheap requests (SENDs refused at its rate) then holds the
/// loop for a bounded stretch, and everyone else's requests run between.
pub const LINES_PER_TURN: usize = 512;
/// Most new connections closed at accept for their address's rate
/// (`--connections-per-address-per-second`) in one loop turn; the rest of
/// the backlog is taken next turn, so a connect storm's closes come in
/// short stretches between everyone else's requests.
pub const RATE_REFUSALS_PER_TURN: usize = 16;
/// HISTORY: messages per page by default, and most (a larger `limit` is
/// clamped to it; 0 is refused). A page also stops adding older messages
/// past [`HISTORY_MAX_BYTES`] (at least one is returned), with `more`.
pub const HISTORY_DEFAULT_LIMIT: usize = 50;
pub const HISTORY_MAX_LIMIT: usize = 200;
pub const HISTORY_MAX_BYTES: usize = 1 << 20;
/// CONVERSATIONS: entries per page by default, and most (clamped; 0 is
/// refused).
pub const CONVERSATIONS_DEFAULT_LIMIT: usize = 50;
pub const CONVERSATIONS_MAX_LIMIT: usize = 200;
