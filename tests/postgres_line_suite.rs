//! The line-protocol scenarios against a node that keeps its data in
//! PostgreSQL (`--postgres`): the very test files `line_messaging`,
//! `line_accounts`, `line_errors`, `line_commands` and `line_sync`,
//! compiled again into this binary, where every server a test starts
//! without naming its storage gets a fresh database of one throw-away
//! cluster (see `common::default_storage`). The hidden parts of the
//! contract — error codes, ordering, ids — must not depend on the store.
//!
//! Each scenario file brings its own copy of `common` (it declares
//! `mod common;` for its own binary), hence the allowance below and one
//! cluster per scenario file.
#![allow(clippy::duplicate_mod)]

#[path = "line_accounts.rs"]
mod line_accounts;
#[path = "line_commands.rs"]
mod line_commands;
#[path = "line_errors.rs"]
mod line_errors;
#[path = "line_messaging.rs"]
mod line_messaging;
#[path = "line_sync.rs"]
mod line_sync;
