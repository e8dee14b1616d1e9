//! A sender's remembered `client_id`s on PostgreSQL are its newest N
//! (`--client-ids-per-sender`) of the last day, as with SQLite. Each row
//! carries `seq`, its sender's count of ids when it came; the counter lives
//! in `client_id_senders`, one row per sender, taken with `ON CONFLICT DO
//! UPDATE … RETURNING` so nodes sharing the database number one sender's
//! ids in turn (the row stays locked until the transaction ends; rows are
//! taken in sender id order, after the mailbox and `sender_bytes` rows, so
//! two nodes cannot deadlock on them). A row at or below `seq - N` of its
//! sender's newest no longer deduplicates, and each fresh id deletes a few
//! such rows through the (sender, seq) index: one in the steady state,
//! never a scan.
//!
//! A number is taken before the database says whether the id is a repeat,
//! so a repeat that reaches the database (after a restart, or through
//! another node) counts as one of the N too.

use crate::UserId;
use postgres::{Client, Statement, Transaction};
use std::collections::BTreeMap;

/// Rows beyond the window one fresh id deletes at most: one in the steady
/// state; more drain a surplus left by a smaller N (those rows never
/// deduplicate meanwhile, and the daily prune takes what is left).
pub const TRIM_STEP: i64 = 8;

pub struct WindowStatements {
    number: Statement,
    trim: Statement,
}

impl WindowStatements {
    pub fn prepare(client: &mut Client) -> Result<WindowStatements, postgres::Error> {
        Ok(WindowStatements {
            number: client.prepare(
                "INSERT INTO client_id_senders AS s (sender, seq) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[]) \
                 ON CONFLICT (sender) DO UPDATE SET seq = s.seq + excluded.seq \
                 RETURNING sender, seq",
            )?,
            trim: client.prepare(
                "DELETE FROM client_ids WHERE ctid = ANY(ARRAY(\
                 SELECT c.ctid FROM client_ids c \
                 JOIN unnest($1::bigint[], $2::bigint[]) AS k(sender, upto) \
                 ON c.sender = k.sender AND c.seq <= k.upto LIMIT $3))",
            )?,
        })
    }
}

/// The `seq` of each of `senders`' new ids, in order: each sender's next
/// numbers, one per id.
pub fn number(
    tx: &mut Transaction<'_>,
    s: &WindowStatements,
    senders: &[i64],
) -> Result<Vec<i64>, postgres::Error> {
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for &sender in senders {
        *counts.entry(sender).or_default() += 1;
    }
    let (ids, adds): (Vec<i64>, Vec<i64>) = counts.iter().map(|(&u, &n)| (u, n)).unzip();
    // Each sender's first number: its new counter less what it took.
    let mut next: BTreeMap<i64, i64> = BTreeMap::new();
    for row in tx.query(&s.number, &[&ids, &adds])? {
        let (sender, last): (i64, i64) = (row.get(0), row.get(1));
        next.insert(sender, last - counts[&sender] + 1);
    }
    Ok(senders
        .iter()
        .map(|sender| {
            let n = next.get_mut(sender).expect("numbered above");
            *n += 1;
            *n - 1
        })
        .collect())
}

/// `--client-ids-per-sender` as the statements take it: rows with
/// `seq < new seq - window` are beyond it (0, no limit: none).
pub fn window(per_sender: usize) -> i64 {
    match per_sender {
        0 => i64::MAX,
        n => n.min(i64::MAX as usize) as i64,
    }
}

/// Deletes up to [`TRIM_STEP`] rows per fresh id that are beyond their
/// sender's newest `per_sender`, given the fresh ids' senders and seqs.
pub fn trim(
    tx: &mut Transaction<'_>,
    s: &WindowStatements,
    fresh: &[(UserId, i64)],
    per_sender: usize,
) -> Result<u64, postgres::Error> {
    if per_sender == 0 || fresh.is_empty() {
        return Ok(0);
    }
    let mut upto: BTreeMap<i64, i64> = BTreeMap::new();
    for &(sender, seq) in fresh {
        let at = upto.entry(sender as i64).or_insert(i64::MIN);
        *at = (*at).max(seq - window(per_sender));
    }
    upto.retain(|_, at| *at > 0);
    if upto.is_empty() {
        return Ok(0);
    }
    let (senders, uptos): (Vec<i64>, Vec<i64>) = upto.into_iter().unzip();
    let limit = TRIM_STEP * fresh.len() as i64;
    tx.execute(&s.trim, &[&senders, &uptos, &limit])
}
