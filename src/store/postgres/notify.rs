//! What other nodes hear of a group, as NOTIFYs sent within its
//! transaction (see [`super::wakeup`]): stored messages to the nodes that
//! hold their receivers, ACKs and LOGOUTs to every live node. PostgreSQL
//! delivers them only when the transaction commits.

use super::statements::{Statements, NODE_TIMEOUT_SECONDS};
use super::wakeup::{self, Packer};
use crate::store::{Remote, WriteOp};
use std::collections::HashMap;

/// What another node must hear of a LOGOUT written by `op`.
pub(super) fn revocation(op: &WriteOp) -> Option<Remote> {
    match *op {
        WriteOp::RevokeToken {
            user,
            token,
            expires,
        } => Some(Remote::Revoked {
            user,
            token,
            expires,
        }),
        WriteOp::VoidTokens { user, from } => Some(Remote::Voided { user, from }),
        _ => None,
    }
}

/// The user an event is about.
pub(super) fn user_of(event: &Remote) -> u64 {
    match *event {
        Remote::Stored { user, .. }
        | Remote::Acked { user, .. }
        | Remote::Revoked { user, .. }
        | Remote::Voided { user, .. }
        | Remote::Sent { user, .. } => user,
        Remote::Read { by, .. } => by,
        Remote::Resync => 0,
    }
}

/// NOTIFYs each other node of what concerns it: message events for the
/// users it holds, and `broadcast` (ACKs, LOGOUTs) to every live node. Sent by
/// PostgreSQL when the transaction commits, never if it rolls back.
pub(super) fn wake_others(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements,
    node: &str,
    events: &[Remote],
    broadcast: &[Remote],
) -> Result<(), postgres::Error> {
    let mut packers: HashMap<String, Packer> = HashMap::new();
    if !events.is_empty() {
        let mut users: Vec<i64> = events.iter().map(|e| user_of(e) as i64).collect();
        users.sort_unstable();
        users.dedup();
        let rows = tx.query(
            &s.present_elsewhere,
            &[&users, &node, &NODE_TIMEOUT_SECONDS],
        )?;
        let mut nodes_of: HashMap<u64, Vec<String>> = HashMap::new();
        for row in &rows {
            let user: i64 = row.get(1);
            nodes_of.entry(user as u64).or_default().push(row.get(0));
        }
        for event in events {
            for other in nodes_of.get(&user_of(event)).into_iter().flatten() {
                packers.entry(other.clone()).or_default().add(event);
            }
        }
    }
    if !broadcast.is_empty() {
        for row in tx.query(&s.live_nodes, &[&node, &NODE_TIMEOUT_SECONDS])? {
            let packer = packers.entry(row.get(0)).or_default();
            for event in broadcast {
                packer.add(event);
            }
        }
    }
    if packers.is_empty() {
        return Ok(());
    }
    let (mut channels, mut payloads) = (Vec::new(), Vec::new());
    for (other, packer) in packers {
        let channel = wakeup::channel(&other);
        for payload in packer.finish() {
            channels.push(channel.clone());
            payloads.push(payload);
        }
    }
    tx.query_one(&s.notify, &[&channels, &payloads])?;
    Ok(())
}
