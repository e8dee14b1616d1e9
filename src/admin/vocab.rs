//! What `gotalk admin` asks the core, and what the core answers besides
//! the ordinary replies: plain types, no I/O, so the core can take an
//! operator's request as it takes a client's ([`crate::request::Request::Admin`]).

use crate::store::admin::AdminAnswer;

/// One operator's request, as the core runs it. `stats` never reaches
/// the core: the loop answers it with the `/stats` figures.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminRequest {
    /// A new account, without the REGISTER-per-address limit.
    Add {
        name: String,
        password: String,
    },
    /// A page of accounts by name.
    List {
        prefix: String,
        limit: usize,
    },
    Show {
        name: String,
    },
    Export {
        name: String,
    },
    /// LOGIN and AUTH refused; every session ends.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// A new password; every session ends.
    ResetPassword {
        name: String,
        password: String,
    },
    /// Every session ends.
    Logout {
        name: String,
    },
    /// The account and what is stored for it go; a new registration of
    /// the name is a new identity.
    Delete {
        name: String,
    },
}

/// Passwords never reach a log through `{:?}`.
impl std::fmt::Debug for AdminRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminRequest::Add { name, .. } => write!(f, "Add({name})"),
            AdminRequest::ResetPassword { name, .. } => write!(f, "ResetPassword({name})"),
            AdminRequest::List { prefix, limit } => write!(f, "List({prefix:?}, {limit})"),
            AdminRequest::Show { name } => write!(f, "Show({name})"),
            AdminRequest::Export { name } => write!(f, "Export({name})"),
            AdminRequest::Disable { name } => write!(f, "Disable({name})"),
            AdminRequest::Enable { name } => write!(f, "Enable({name})"),
            AdminRequest::Logout { name } => write!(f, "Logout({name})"),
            AdminRequest::Delete { name } => write!(f, "Delete({name})"),
        }
    }
}

/// What the core answers an operator beyond the ordinary replies
/// (`Reply::User` for `add`, `Reply::Error` for a refusal).
#[derive(Clone, Debug)]
pub enum AdminReply {
    /// Done; `what` says what, in words (`"disabled alice (id 3)"`).
    Done { what: String },
    /// What the store found, plus this node's bound connections of the
    /// account (for `show` and `export`).
    Found {
        answer: AdminAnswer,
        sessions_online: usize,
    },
}
