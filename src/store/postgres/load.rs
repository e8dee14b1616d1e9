//! Reading what a start needs from PostgreSQL: the sequences' positions
//! (the core's provisional ids start above them) and the totals in custody
//! (for the global budget), summed over the mailboxes that hold messages,
//! and the revoked tokens that have not expired yet (bounded by the
//! tokens' lifetime). Accounts, messages and `client_id`s are read on
//! demand.

use crate::store::Snapshot;
use crate::Millis;
use postgres::Client;

/// The figures a start needs as of `now` (ms since the epoch; decides
/// which revoked tokens have expired), in one read-only transaction.
pub fn read_snapshot(client: &mut Client, now: Millis) -> Result<Snapshot, postgres::Error> {
    let mut tx = client.build_transaction().read_only(true).start()?;
    let position =
        |tx: &mut postgres::Transaction<'_>, seq: &str| -> Result<u64, postgres::Error> {
            let row = tx.query_one(
                &format!("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}"),
                &[],
            )?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        };
    let last_message_id = position(&mut tx, "message_ids")?;
    let last_user_id = position(&mut tx, "user_ids")?;
    let row = tx.query_one(
        "SELECT coalesce(sum(count), 0)::bigint, coalesce(sum(bytes), 0)::bigint \
         FROM mailboxes WHERE count > 0",
        &[],
    )?;
    let revoked_tokens = tx
        .query(
            "SELECT token_id, expires, user_id FROM revoked_tokens WHERE expires > $1",
            &[&(now as i64)],
        )?
        .iter()
        .map(|r| {
            (
                r.get::<_, i64>(0) as u64,
                r.get::<_, i64>(1) as u64,
                r.get::<_, i64>(2) as u64,
            )
        })
        .collect();
    let sender_bytes = tx
        .query(
            "SELECT sender, bytes FROM sender_bytes WHERE bytes > 0",
            &[],
        )?
        .iter()
        .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as usize))
        .collect();
    // Names without a folded form clash with an older account's (see
    // schema V6): a few rows.
    let name_clashes = tx
        .query(
            &format!(
                "SELECT u.username, coalesce(h.username, '') FROM users u \
                 LEFT JOIN users h ON h.name_key = {} WHERE u.name_key IS NULL ORDER BY u.id",
                crate::username::fold_sql("u.username")
            ),
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    tx.commit()?;
    Ok(Snapshot {
        revoked_tokens,
        sender_bytes,
        name_clashes,
        last_message_id,
        last_user_id,
        pending_messages: row.get::<_, i64>(0).max(0) as usize,
        pending_bytes: row.get::<_, i64>(1).max(0) as usize,
        ..Snapshot::default()
    })
}
