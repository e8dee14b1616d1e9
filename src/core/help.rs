//! The words the core uses to teach the line protocol: the HELP text (every
//! command, one line each, with an example), and the failure messages that
//! name a line command, which a door with other commands (HTTP) words its
//! own way.

pub const HELP: &str = "\
REGISTER <username> <password>   create an account        e.g. REGISTER alice s3cret-alice-pw
LOGIN <username> <password>      log in; binds this connection and returns a token   e.g. LOGIN alice s3cret-alice-pw
AUTH <token>                     bind this connection with a token from LOGIN   e.g. AUTH 9f2c...
SEND <username> <text...>        send the rest of the line to a user   e.g. SEND bob hello there
SYNC [after] [limit] [wait_ms]   list unacknowledged messages above 'after' (and acknowledge up to it)   e.g. SYNC 17
ACK <id>                         acknowledge every message up to id; they are never returned again   e.g. ACK 17
HISTORY <username> [before] [limit]   one page of your conversation with a user (default the newest 50, at most 200)   e.g. HISTORY bob
READ <username> <id>             mark a user's messages read up to id (their devices are told)   e.g. READ bob 17
CONVERSATIONS [before]           your conversations, newest first, with unread counts   e.g. CONVERSATIONS
LOGOUT [all]                     revoke this connection's token (all: every token of the account)   e.g. LOGOUT
PING                             check the connection   e.g. PING
HELP                             this list
QUIT                             close the connection
New messages arrive as {\"event\":\"message\",...} lines while you are logged in; {\"event\":\"revoked\"} or {\"event\":\"expired\"} means the token no longer holds: AUTH or LOGIN again. What you send from another device arrives as {\"event\":\"sent\",...}, and {\"event\":\"read\",...} says a conversation was read. JSON works too: {\"cmd\":\"send\",\"to\":\"bob\",\"content\":\"hi\"}";

/// An unknown, tampered, expired or revoked token (AUTH, or a request's own token).
/// The HTTP door says `/login` in place of `LOGIN`.
pub const TOKEN_REJECTED: &str = "the token is invalid, expired or revoked; LOGIN again";
