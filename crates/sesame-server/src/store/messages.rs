//! The relay's mailboxes (`messages`): end-to-end encrypted messages stored until the
//! recipient acknowledges them.
//!
//! The database is the source of truth of the relay: a message is only reported accepted
//! after [`MessageStore::insert_message`] committed it, and live delivery is only a faster
//! path to the same rows. This layer gives the relay three guarantees:
//!
//! * **Deduplication**: (recipient, message id) is unique; a resend is reported as
//!   [`MessageInsert::Duplicate`] and stores nothing.
//! * **Mailbox limit**: the count check and the insert are one statement (SQLite serialises
//!   writers; PostgreSQL takes a per-recipient advisory lock for the transaction), so parallel
//!   senders cannot push a mailbox past its limit.
//! * **Order**: `seq` increases and is never reused, and reads return it ascending.
//!
//! [`MessageStore::write_messages`] applies many acknowledgements and inserts in one
//! transaction: the group-commit writer ([`GroupWriter`](super::GroupWriter),
//! `store/group.rs`) batches the relay writes of every connection that way, so a busy relay
//! pays one commit per batch instead of one per message.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::{count_to_u64, PostgresStore, SqliteStore, StoreError};

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Whose mailbox.
    pub recipient_id: Uuid,
    /// The authenticated sender.
    pub sender_id: Uuid,
    /// The sender's sealed username (a copy of its `username_sealed`).
    pub sender_sealed: Vec<u8>,
    /// The sender-chosen message id.
    pub msg_id: String,
    /// The sender's timestamp (unix milliseconds, unverified).
    pub sent_at: i64,
    /// When the server stored it (unix seconds).
    pub stored_at: i64,
    /// Opaque ciphertext.
    pub ciphertext: Vec<u8>,
    /// Opaque signature.
    pub signature: Vec<u8>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// Delivery order (increasing, never reused).
    pub seq: i64,
    /// Whose mailbox.
    pub recipient_id: Uuid,
    /// The sender.
    pub sender_id: Uuid,
    /// The sender's sealed username.
    pub sender_sealed: Vec<u8>,
    /// The sender-chosen message id.
    pub msg_id: String,
    /// The sender's timestamp.
    pub sent_at: i64,
    /// When the server stored it.
    pub stored_at: i64,
    /// Opaque ciphertext.
    pub ciphertext: Vec<u8>,
    /// Opaque signature.
    pub signature: Vec<u8>,
}

/// An acknowledgement to apply: delete `msg_id` from `recipient`'s mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAck {
    /// Whose mailbox.
    pub recipient: Uuid,
    /// The acknowledged message id.
    pub msg_id: String,
}

/// What [`MessageStore::insert_message`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageInsert {
    /// Stored (committed) with this `seq`.
    Stored(i64),
    /// The recipient already has a message with this id: nothing stored.
    Duplicate,
    /// The mailbox holds the maximum number of messages: nothing stored.
    MailboxFull,
}

/// The message part of the storage contract.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a message unless the recipient already has one with that id or already has
    /// `mailbox_max` messages. Returns once committed.
    async fn insert_message(
        &self,
        m: &NewMessage,
        mailbox_max: u64,
    ) -> Result<MessageInsert, StoreError>;
    /// Applies several relay writes in **one transaction** (one commit, one `fsync`): first
    /// deletes the acknowledged messages, then stores `inserts` in order, each with the same
    /// rules as [`MessageStore::insert_message`] (a later message of the batch sees the
    /// earlier ones when the mailbox limit is checked). Returns the outcome of each insert,
    /// in order. On an error nothing of the batch is stored.
    async fn write_messages(
        &self,
        acks: &[MessageAck],
        inserts: &[NewMessage],
        mailbox_max: u64,
    ) -> Result<Vec<MessageInsert>, StoreError>;
    /// Up to `limit` messages of `recipient` with `seq > after`, by `seq`.
    async fn messages_after(
        &self,
        recipient: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError>;
    /// Deletes the recipient's message with this id; `false` if there is none.
    async fn delete_message(&self, recipient: Uuid, msg_id: &str) -> Result<bool, StoreError>;
    /// How many messages wait in the recipient's mailbox.
    async fn count_messages(&self, recipient: Uuid) -> Result<u64, StoreError>;
    /// Deletes every message stored before `cutoff` (`stored_at < cutoff`).
    async fn delete_messages_before(&self, cutoff: i64) -> Result<u64, StoreError>;
}

const COLUMNS: &str =
    "seq, recipient_id, sender_id, sender_sealed, msg_id, sent_at, stored_at, ciphertext, signature";

/// Generates the implementation for one backend: `$id` turns a `Uuid` into its bind value,
/// `$decode` reads a UUID column back, `$lock` serialises writers to one mailbox.
macro_rules! message_store {
    ($store:ty, $db:ty, $id:ident, $decode:ident, $lock:ident) => {
        impl $store {
            fn message_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<MessageRecord, StoreError> {
                Ok(MessageRecord {
                    seq: row.try_get("seq")?,
                    recipient_id: $decode(row, "recipient_id")?,
                    sender_id: $decode(row, "sender_id")?,
                    sender_sealed: row.try_get("sender_sealed")?,
                    msg_id: row.try_get("msg_id")?,
                    sent_at: row.try_get("sent_at")?,
                    stored_at: row.try_get("stored_at")?,
                    ciphertext: row.try_get("ciphertext")?,
                    signature: row.try_get("signature")?,
                })
            }

            /// Stores `inserts` inside `tx` (whose mailbox locks are held), in order, with the
            /// rules of [`MessageStore::insert_message`], in few statements: one count per
            /// batch, then multi-row inserts of every message that fits even if none of the
            /// batch were a duplicate. The rest (a mailbox at its limit) go one by one, each
            /// with its exact check.
            async fn insert_batch(
                tx: &mut sqlx::Transaction<'_, $db>,
                inserts: &[NewMessage],
                mailbox_max: u64,
            ) -> Result<Vec<MessageInsert>, StoreError> {
                if inserts.is_empty() {
                    return Ok(Vec::new());
                }
                let max = i64::try_from(mailbox_max).unwrap_or(i64::MAX);
                let mut recipients: Vec<Uuid> = inserts.iter().map(|m| m.recipient_id).collect();
                recipients.sort_unstable();
                recipients.dedup();
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT recipient_id, COUNT(*) AS n FROM messages WHERE recipient_id IN (",
                );
                let mut list = q.separated(", ");
                for r in &recipients {
                    list.push_bind($id(*r));
                }
                q.push(") GROUP BY recipient_id");
                let mut counts: HashMap<Uuid, i64> = HashMap::new();
                for row in q.build().fetch_all(&mut **tx).await? {
                    counts.insert($decode(&row, "recipient_id")?, row.try_get("n")?);
                }
                let (mut bulk, mut careful) = (Vec::new(), Vec::new());
                for (i, m) in inserts.iter().enumerate() {
                    let n = counts.entry(m.recipient_id).or_insert(0);
                    if *n < max {
                        *n += 1;
                        bulk.push(i);
                    } else {
                        careful.push(i);
                    }
                }
                let mut outcomes = vec![MessageInsert::Duplicate; inserts.len()];
                for chunk in bulk.chunks(INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO messages (recipient_id, sender_id, sender_sealed, msg_id, \
                         sent_at, stored_at, ciphertext, signature) ",
                    );
                    q.push_values(chunk, |mut row, &i| {
                        let m = &inserts[i];
                        row.push_bind($id(m.recipient_id))
                            .push_bind($id(m.sender_id))
                            .push_bind(m.sender_sealed.as_slice())
                            .push_bind(m.msg_id.as_str())
                            .push_bind(m.sent_at)
                            .push_bind(m.stored_at)
                            .push_bind(m.ciphertext.as_slice())
                            .push_bind(m.signature.as_slice());
                    });
                    q.push(
                        " ON CONFLICT (recipient_id, msg_id) DO NOTHING \
                         RETURNING seq, recipient_id, msg_id",
                    );
                    // Rows come back in no particular order: match them by key. A row not
                    // returned was a duplicate (stored before, or earlier in this batch).
                    let mut stored: HashMap<(Uuid, String), i64> = HashMap::new();
                    for row in q.build().fetch_all(&mut **tx).await? {
                        let key = ($decode(&row, "recipient_id")?, row.try_get("msg_id")?);
                        stored.insert(key, row.try_get("seq")?);
                    }
                    for &i in chunk {
                        let m = &inserts[i];
                        if let Some(seq) = stored.remove(&(m.recipient_id, m.msg_id.clone())) {
                            outcomes[i] = MessageInsert::Stored(seq);
                        }
                    }
                }
                for i in careful {
                    outcomes[i] = Self::insert_in(tx, &inserts[i], mailbox_max).await?;
                }
                Ok(outcomes)
            }

            /// Stores one message inside `tx` (whose mailbox lock is held) unless it is a
            /// duplicate or the mailbox is full.
            async fn insert_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                m: &NewMessage,
                mailbox_max: u64,
            ) -> Result<MessageInsert, StoreError> {
                let max = i64::try_from(mailbox_max).unwrap_or(i64::MAX);
                // One statement: the count and the insert cannot be separated by another
                // writer. The `WHERE` also keeps SQLite's parser from reading `ON CONFLICT`
                // as a join constraint.
                let row = sqlx::query(
                    "INSERT INTO messages (recipient_id, sender_id, sender_sealed, msg_id, \
                     sent_at, stored_at, ciphertext, signature) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                     WHERE (SELECT COUNT(*) FROM messages WHERE recipient_id = $1) < $9 \
                     ON CONFLICT (recipient_id, msg_id) DO NOTHING RETURNING seq",
                )
                .bind($id(m.recipient_id))
                .bind($id(m.sender_id))
                .bind(&m.sender_sealed)
                .bind(&m.msg_id)
                .bind(m.sent_at)
                .bind(m.stored_at)
                .bind(&m.ciphertext)
                .bind(&m.signature)
                .bind(max)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(row) = row {
                    return Ok(MessageInsert::Stored(row.try_get("seq")?));
                }
                let dup =
                    sqlx::query("SELECT seq FROM messages WHERE recipient_id = $1 AND msg_id = $2")
                        .bind($id(m.recipient_id))
                        .bind(&m.msg_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                Ok(if dup.is_some() {
                    MessageInsert::Duplicate
                } else {
                    MessageInsert::MailboxFull
                })
            }
        }

        #[async_trait]
        impl MessageStore for $store {
            async fn insert_message(
                &self,
                m: &NewMessage,
                mailbox_max: u64,
            ) -> Result<MessageInsert, StoreError> {
                let mut tx = self.begin_write().await?;
                $lock(&mut tx, m.recipient_id).await?;
                let outcome = Self::insert_in(&mut tx, m, mailbox_max).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn write_messages(
                &self,
                acks: &[MessageAck],
                inserts: &[NewMessage],
                mailbox_max: u64,
            ) -> Result<Vec<MessageInsert>, StoreError> {
                let mut tx = self.begin_write().await?;
                // Deletes first: they free room, and on SQLite the first statement of the
                // transaction takes the write lock.
                for (recipient, ids) in acks_by_recipient(acks) {
                    for chunk in ids.chunks(ACK_CHUNK) {
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "DELETE FROM messages WHERE recipient_id = ",
                        );
                        q.push_bind($id(recipient)).push(" AND msg_id IN (");
                        let mut list = q.separated(", ");
                        for id in chunk {
                            list.push_bind(*id);
                        }
                        q.push(")");
                        q.build().execute(&mut *tx).await?;
                    }
                }
                // Mailbox locks in one global order, so two batches cannot deadlock.
                let mut recipients: Vec<Uuid> = inserts.iter().map(|m| m.recipient_id).collect();
                recipients.sort_unstable();
                recipients.dedup();
                for r in recipients {
                    $lock(&mut tx, r).await?;
                }
                let outcomes = Self::insert_batch(&mut tx, inserts, mailbox_max).await?;
                tx.commit().await?;
                Ok(outcomes)
            }

            async fn messages_after(
                &self,
                recipient: Uuid,
                after: i64,
                limit: u32,
            ) -> Result<Vec<MessageRecord>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE recipient_id = $1 AND seq > $2 \
                     ORDER BY seq LIMIT $3"
                ))
                .bind($id(recipient))
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::message_from_row).collect()
            }

            async fn delete_message(
                &self,
                recipient: Uuid,
                msg_id: &str,
            ) -> Result<bool, StoreError> {
                let done =
                    sqlx::query("DELETE FROM messages WHERE recipient_id = $1 AND msg_id = $2")
                        .bind($id(recipient))
                        .bind(msg_id)
                        .execute(self.writer())
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn count_messages(&self, recipient: Uuid) -> Result<u64, StoreError> {
                let n: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE recipient_id = $1")
                        .bind($id(recipient))
                        .fetch_one(self.pool())
                        .await?;
                count_to_u64(n)
            }

            async fn delete_messages_before(&self, cutoff: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM messages WHERE stored_at < $1")
                    .bind(cutoff)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

/// Most rows in one multi-row `INSERT` (8 binds each: well under every backend's bind limit).
const INSERT_CHUNK: usize = 256;

/// Most ids in one `DELETE … IN (…)` (well under every backend's bind limit): a whole
/// `ack` frame of the relay (`MAX_ACK_IDS`) is one statement.
const ACK_CHUNK: usize = sesame_proto::e2e::MAX_ACK_IDS;

/// The acknowledged ids grouped by mailbox.
fn acks_by_recipient(acks: &[MessageAck]) -> BTreeMap<Uuid, Vec<&str>> {
    let mut groups: BTreeMap<Uuid, Vec<&str>> = BTreeMap::new();
    for a in acks {
        groups.entry(a.recipient).or_default().push(&a.msg_id);
    }
    groups
}

fn sqlite_id(id: Uuid) -> String {
    id.hyphenated().to_string()
}

fn sqlite_uuid(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("messages.{column}: {e}")))
}

/// SQLite runs one writer at a time: the insert statement itself is the lock.
async fn sqlite_lock(
    _tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    _recipient: Uuid,
) -> Result<(), StoreError> {
    Ok(())
}

fn pg_id(id: Uuid) -> Uuid {
    id
}

fn pg_uuid(row: &sqlx::postgres::PgRow, column: &str) -> Result<Uuid, StoreError> {
    Ok(row.try_get(column)?)
}

/// Serialises inserts into one mailbox until the transaction ends (READ COMMITTED would let
/// two parallel inserts both see room for one more).
async fn pg_lock(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    recipient: Uuid,
) -> Result<(), StoreError> {
    let b = recipient.as_bytes();
    let key = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) ^ MAILBOX_LOCK;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Mixed into mailbox advisory-lock keys so they do not collide with other users of
/// advisory locks on the same database.
const MAILBOX_LOCK: i64 = 0x5345_5341_4d45_4d42; // "SESAMEMB"

message_store!(
    SqliteStore,
    sqlx::Sqlite,
    sqlite_id,
    sqlite_uuid,
    sqlite_lock
);
message_store!(PostgresStore, sqlx::Postgres, pg_id, pg_uuid, pg_lock);
