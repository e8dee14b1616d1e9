//! The vocabulary both doors share: a parsed request, and the reply the core
//! gives it. The line protocol and the HTTP shim translate their wire forms
//! into [`Call`] and render [`Reply`] back; neither holds a rule of its own.

use crate::error::Failure;
use crate::message::Message;
use crate::{MessageId, Millis, UserId};
use std::borrow::Cow;
use std::sync::Arc;

/// Who a SEND goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient<'a> {
    Name(Cow<'a, str>),
    Id(UserId),
}

/// What SYNC asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncArgs {
    /// Return only ids above this, and acknowledge everything up to it.
    pub after: Option<MessageId>,
    /// Most messages to return (clamped to the server's maximum).
    pub limit: Option<usize>,
    /// Long-poll: wait this long for a message when there is none.
    pub wait_ms: u64,
}

/// What HISTORY asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryArgs<'a> {
    pub with: Recipient<'a>,
    /// Only ids below this (`None`: the newest).
    pub before: Option<MessageId>,
    /// How many (`None`: the default; 0 is refused, more than the maximum
    /// clamped, see `config::limits`).
    pub limit: Option<u64>,
}

/// One command, borrowed from the bytes it was parsed from where it can be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Register {
        username: Cow<'a, str>,
        password: Cow<'a, str>,
    },
    Login {
        username: Cow<'a, str>,
        password: Cow<'a, str>,
    },
    Auth {
        token: Cow<'a, str>,
    },
    Send {
        to: Recipient<'a>,
        content: Cow<'a, str>,
        client_id: Option<Cow<'a, str>>,
    },
    Sync(SyncArgs),
    Ack {
        upto: MessageId,
    },
    /// Revoke the token presented (the call's own, else the one that bound
    /// the connection), or with `all` every token of the account.
    Logout {
        all: bool,
    },
    /// Look a user up by name (the HTTP shim's `/getuseridbyname`).
    Lookup {
        username: Cow<'a, str>,
    },
    /// One page of the conversation with `with` (see `core/history/`).
    History(HistoryArgs<'a>),
    /// The caller has read the conversation with `with` up to `upto`.
    Read {
        with: Recipient<'a>,
        upto: MessageId,
    },
    /// One page of the caller's conversations, newest first.
    Conversations {
        before: Option<MessageId>,
        limit: Option<u64>,
    },
    Ping,
    Help,
    Quit,
}

/// Which command a request is, for counting (metrics) without keeping the
/// request. `Unparsed` is a line or form the doors could not read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Register,
    Login,
    Auth,
    Send,
    Sync,
    Ack,
    Logout,
    Lookup,
    History,
    Read,
    Conversations,
    Ping,
    Help,
    Quit,
    #[default]
    Unparsed,
}

impl CommandKind {
    pub const ALL: [CommandKind; 15] = [
        CommandKind::Register,
        CommandKind::Login,
        CommandKind::Auth,
        CommandKind::Send,
        CommandKind::Sync,
        CommandKind::Ack,
        CommandKind::Logout,
        CommandKind::Lookup,
        CommandKind::History,
        CommandKind::Read,
        CommandKind::Conversations,
        CommandKind::Ping,
        CommandKind::Help,
        CommandKind::Quit,
        CommandKind::Unparsed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Register => "register",
            CommandKind::Login => "login",
            CommandKind::Auth => "auth",
            CommandKind::Send => "send",
            CommandKind::Sync => "sync",
            CommandKind::Ack => "ack",
            CommandKind::Logout => "logout",
            CommandKind::Lookup => "lookup",
            CommandKind::History => "history",
            CommandKind::Read => "read",
            CommandKind::Conversations => "conversations",
            CommandKind::Ping => "ping",
            CommandKind::Help => "help",
            CommandKind::Quit => "quit",
            CommandKind::Unparsed => "unparsed",
        }
    }
}

impl Request<'_> {
    pub fn kind(&self) -> CommandKind {
        match self {
            Request::Register { .. } => CommandKind::Register,
            Request::Login { .. } => CommandKind::Login,
            Request::Auth { .. } => CommandKind::Auth,
            Request::Send { .. } => CommandKind::Send,
            Request::Sync(_) => CommandKind::Sync,
            Request::Ack { .. } => CommandKind::Ack,
            Request::Logout { .. } => CommandKind::Logout,
            Request::Lookup { .. } => CommandKind::Lookup,
            Request::History(_) => CommandKind::History,
            Request::Read { .. } => CommandKind::Read,
            Request::Conversations { .. } => CommandKind::Conversations,
            Request::Ping => CommandKind::Ping,
            Request::Help => CommandKind::Help,
            Request::Quit => CommandKind::Quit,
        }
    }
}

/// A request plus how it proves who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call<'a> {
    pub request: Request<'a>,
    /// A token carried by this request alone; it overrides the connection's
    /// user (the seed's stateless style, and every HTTP request).
    pub token: Option<Cow<'a, str>>,
    /// A user id the client claims to be (HTTP `id`); when it names someone
    /// other than the token's user the request is `unauthorized`.
    pub claimed_id: Option<UserId>,
}

impl<'a> Call<'a> {
    pub fn new(request: Request<'a>) -> Call<'a> {
        Call {
            request,
            token: None,
            claimed_id: None,
        }
    }

    /// The same call owning its text, to be kept while it waits for a read.
    pub fn into_owned(self) -> Call<'static> {
        fn own(s: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(s.into_owned())
        }
        fn own_to(to: Recipient<'_>) -> Recipient<'static> {
            match to {
                Recipient::Name(name) => Recipient::Name(own(name)),
                Recipient::Id(id) => Recipient::Id(id),
            }
        }
        let request = match self.request {
            Request::Register { username, password } => Request::Register {
                username: own(username),
                password: own(password),
            },
            Request::Login { username, password } => Request::Login {
                username: own(username),
                password: own(password),
            },
            Request::Auth { token } => Request::Auth { token: own(token) },
            Request::Send {
                to,
                content,
                client_id,
            } => Request::Send {
                to: own_to(to),
                content: own(content),
                client_id: client_id.map(own),
            },
            Request::Sync(args) => Request::Sync(args),
            Request::Ack { upto } => Request::Ack { upto },
            Request::Logout { all } => Request::Logout { all },
            Request::Lookup { username } => Request::Lookup {
                username: own(username),
            },
            Request::History(args) => Request::History(HistoryArgs {
                with: own_to(args.with),
                before: args.before,
                limit: args.limit,
            }),
            Request::Read { with, upto } => Request::Read {
                with: own_to(with),
                upto,
            },
            Request::Conversations { before, limit } => Request::Conversations { before, limit },
            Request::Ping => Request::Ping,
            Request::Help => Request::Help,
            Request::Quit => Request::Quit,
        };
        Call {
            request,
            token: self.token.map(own),
            claimed_id: self.claimed_id,
        }
    }
}

/// A user as replies show one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRef {
    pub id: UserId,
    pub username: Arc<str>,
}

/// One entry of a CONVERSATIONS reply.
#[derive(Clone, Debug)]
pub struct Conversation {
    pub with: Arc<str>,
    pub with_id: UserId,
    /// The newest message either way (`None` once retention removed it).
    pub last: Option<Arc<Message>>,
    /// The partner's messages above the caller's read marker.
    pub unread: u64,
    /// The partner's marker on the caller's messages (0: none).
    pub read_upto: MessageId,
}

/// The outcome of one request, for a door to render.
#[derive(Clone, Debug)]
pub enum Reply {
    /// REGISTER, AUTH and lookups.
    User(UserRef),
    LoggedIn {
        token: String,
        user: UserRef,
    },
    Sent {
        id: MessageId,
        ts: Millis,
    },
    /// SYNC: oldest first.
    Messages(Vec<Arc<Message>>),
    /// ACK.
    Acked,
    /// HISTORY: one page, oldest first, and whether older messages exist.
    History {
        messages: Vec<Arc<Message>>,
        more: bool,
    },
    /// CONVERSATIONS: newest last message first.
    Conversations {
        list: Vec<Conversation>,
        more: bool,
    },
    /// READ: the marker as stored.
    ReadUpto(MessageId),
    /// LOGOUT: the token (or, with `all`, every token of the account) no
    /// longer opens.
    LoggedOut {
        all: bool,
        /// `all` although one token was asked for: the account had
        /// `--revocations-per-account` revoked already.
        capped: bool,
    },
    Pong,
    Help,
    /// QUIT: the door closes the connection after writing this.
    Bye,
    Error(Failure),
}

impl From<Failure> for Reply {
    fn from(f: Failure) -> Reply {
        Reply::Error(f)
    }
}

/// An event about a conversation for one of a user's connections (beside
/// the message push): a copy of what the user sent from another device,
/// or a read marker that moved.
#[derive(Clone, Debug)]
pub enum Note {
    /// `{"event":"sent","message":{..}}`: the stored message, shared (its
    /// JSON was written once).
    Sent(Arc<Message>),
    /// `{"event":"read",..}`, shared by every connection told.
    Read(Arc<ReadNote>),
}

/// `by` has read `with`'s messages up to `upto`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadNote {
    pub by: Arc<str>,
    pub by_id: UserId,
    pub with: Arc<str>,
    pub with_id: UserId,
    pub upto: MessageId,
}
