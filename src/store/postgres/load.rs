//! Reading what a start needs from PostgreSQL: the sequences' positions
//! (the core's provisional ids start above them) and the totals in custody
//! (for the global budget), summed over the mailboxes that hold messages.
//! Accounts, messages and `client_id`s are read on demand.

use crate::store::Snapshot;
use postgres::Client;

pub fn read_snapshot(client: &mut Client) -> Result<Snapshot, postgres::Error> {
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
    tx.commit()?;
    Ok(Snapshot {
        last_message_id,
        last_user_id,
        pending_messages: row.get::<_, i64>(0).max(0) as usize,
        pending_bytes: row.get::<_, i64>(1).max(0) as usize,
        ..Snapshot::default()
    })
}
