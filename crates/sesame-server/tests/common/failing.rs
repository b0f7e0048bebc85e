//! [`FailingStore`]: a test double that delegates every call to a real store but makes one
//! chosen write fail, to show that an operation leaves nothing partial behind.
//!
//! Writes are numbered from 0 while [`FailingStore::with_write_failing`] runs an operation: every single-write
//! method counts one, and [`Store::write_atomically`] counts one per write of its list. When
//! the chosen write is a single-write call, the call fails without reaching the database. When
//! it is inside a [`Store::write_atomically`] list, the write is replaced with one the
//! database refuses (a factor for a user that does not exist: a foreign-key violation), so
//! the real transaction fails *between* the writes before it and those after it.
//!
//! It also logs which store methods are called ([`FailingStore::take_calls`]), to compare
//! the store work of two operations.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sesame_server::store::{
    AccountStatus, AuditQuery, AuditRecord, Backend, FactorKind, FactorRecord, FactorStore,
    LoginWrite, MessageAck, MessageInsert, MessageRecord, MessageStore, NewAuditEvent, NewMessage,
    NewSession, NewUser, PasskeyRecord, PasskeyStore, PasskeyUse, SessionRecord, Slot, Store,
    StoreError, UserRecord, Write,
};
use uuid::Uuid;

/// A store whose n-th write (once armed) fails.
pub struct FailingStore {
    inner: Arc<dyn Store>,
    /// The write to fail, counted from arming; `None`: disarmed.
    target: Mutex<Option<usize>>,
    /// Writes seen since arming.
    seen: AtomicUsize,
    /// Whether the chosen write was reached (and failed).
    fired: AtomicBool,
    /// The store methods called since the last [`FailingStore::take_calls`], in order.
    calls: Mutex<Vec<&'static str>>,
}

impl FailingStore {
    /// Wraps `inner`, disarmed.
    pub fn new(inner: Arc<dyn Store>) -> Arc<FailingStore> {
        Arc::new(FailingStore {
            inner,
            target: Mutex::new(None),
            seen: AtomicUsize::new(0),
            fired: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The store methods called since the last call of this, in order (and forgets them).
    pub fn take_calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn log(&self, method: &'static str) {
        self.calls.lock().unwrap().push(method);
    }

    /// Arms: write number `n` from now on fails (`None` disarms).
    fn fail_write(&self, n: Option<usize>) {
        *self.target.lock().unwrap() = n;
        self.seen.store(0, Ordering::SeqCst);
        self.fired.store(false, Ordering::SeqCst);
    }

    /// Runs `op` with its write number `n` failing, then disarms. Gives `op`'s outcome and
    /// whether write `n` was reached: once it is not, every write of the operation went
    /// through, so a loop over `n` from 0 has tried a failure between each pair of writes.
    pub async fn with_write_failing<T>(
        &self,
        n: usize,
        op: impl std::future::Future<Output = T>,
    ) -> (T, bool) {
        self.fail_write(Some(n));
        let outcome = op.await;
        let fired = self.fired.load(Ordering::SeqCst);
        self.fail_write(None);
        (outcome, fired)
    }

    /// The real store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Counts `n` writes; returns the offset among them of the one to fail, if any.
    fn count(&self, n: usize) -> Option<usize> {
        let target = (*self.target.lock().unwrap())?;
        let first = self.seen.fetch_add(n, Ordering::SeqCst);
        (first..first + n).contains(&target).then(|| {
            self.fired.store(true, Ordering::SeqCst);
            target - first
        })
    }

    /// One single write: fails if it is the chosen one.
    fn write(&self) -> Result<(), StoreError> {
        match self.count(1) {
            Some(_) => Err(injected()),
            None => Ok(()),
        }
    }
}

fn injected() -> StoreError {
    StoreError::Database(sqlx::Error::Protocol("injected failure".into()))
}

#[async_trait]
impl FactorStore for FailingStore {
    async fn put_factor(&self, f: &FactorRecord) -> Result<(), StoreError> {
        self.log("put_factor");
        self.write()?;
        self.inner.put_factor(f).await
    }
    async fn factor(
        &self,
        user: Uuid,
        kind: FactorKind,
        slot: &Slot,
    ) -> Result<Option<FactorRecord>, StoreError> {
        self.log("factor");
        self.inner.factor(user, kind, slot).await
    }
    async fn factors(&self, user: Uuid, kind: FactorKind) -> Result<Vec<FactorRecord>, StoreError> {
        self.log("factors");
        self.inner.factors(user, kind).await
    }
    async fn delete_factors(
        &self,
        user: Uuid,
        kind: FactorKind,
        slot: Option<&Slot>,
    ) -> Result<u64, StoreError> {
        self.log("delete_factors");
        self.write()?;
        self.inner.delete_factors(user, kind, slot).await
    }
    async fn replace_factors(
        &self,
        user: Uuid,
        kind: FactorKind,
        new: &[FactorRecord],
    ) -> Result<(), StoreError> {
        self.log("replace_factors");
        self.write()?;
        self.inner.replace_factors(user, kind, new).await
    }
    async fn use_factor(
        &self,
        user: Uuid,
        kind: FactorKind,
        slot: &Slot,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.log("use_factor");
        self.write()?;
        self.inner.use_factor(user, kind, slot, now).await
    }
    async fn advance_counter(
        &self,
        user: Uuid,
        kind: FactorKind,
        slot: &Slot,
        to: i64,
    ) -> Result<bool, StoreError> {
        self.log("advance_counter");
        self.write()?;
        self.inner.advance_counter(user, kind, slot, to).await
    }
}

#[async_trait]
impl MessageStore for FailingStore {
    async fn insert_message(
        &self,
        m: &NewMessage,
        mailbox_max: u64,
    ) -> Result<MessageInsert, StoreError> {
        self.log("insert_message");
        self.write()?;
        self.inner.insert_message(m, mailbox_max).await
    }
    async fn write_messages(
        &self,
        acks: &[MessageAck],
        inserts: &[NewMessage],
        mailbox_max: u64,
    ) -> Result<Vec<MessageInsert>, StoreError> {
        self.log("write_messages");
        self.write()?;
        self.inner.write_messages(acks, inserts, mailbox_max).await
    }
    async fn messages_after(
        &self,
        recipient: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.log("messages_after");
        self.inner.messages_after(recipient, after, limit).await
    }
    async fn delete_message(&self, recipient: Uuid, msg_id: &str) -> Result<bool, StoreError> {
        self.log("delete_message");
        self.write()?;
        self.inner.delete_message(recipient, msg_id).await
    }
    async fn count_messages(&self, recipient: Uuid) -> Result<u64, StoreError> {
        self.log("count_messages");
        self.inner.count_messages(recipient).await
    }
    async fn delete_messages_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.log("delete_messages_before");
        self.write()?;
        self.inner.delete_messages_before(cutoff).await
    }
}

#[async_trait]
impl PasskeyStore for FailingStore {
    async fn insert_passkey(&self, p: &PasskeyRecord) -> Result<bool, StoreError> {
        self.log("insert_passkey");
        self.write()?;
        self.inner.insert_passkey(p).await
    }
    async fn passkeys_of(&self, user: Uuid) -> Result<Vec<PasskeyRecord>, StoreError> {
        self.log("passkeys_of");
        self.inner.passkeys_of(user).await
    }
    async fn passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        self.log("passkey_by_credential");
        self.inner.passkey_by_credential(credential_id).await
    }
    async fn rename_passkey(&self, user: Uuid, id: Uuid, label: &[u8]) -> Result<bool, StoreError> {
        self.log("rename_passkey");
        self.write()?;
        self.inner.rename_passkey(user, id, label).await
    }
    async fn delete_passkey(&self, user: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.log("delete_passkey");
        self.write()?;
        self.inner.delete_passkey(user, id).await
    }
    async fn record_passkey_use(&self, id: Uuid, u: &PasskeyUse) -> Result<bool, StoreError> {
        self.log("record_passkey_use");
        self.write()?;
        self.inner.record_passkey_use(id, u).await
    }
}

#[async_trait]
impl Store for FailingStore {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.log("ping");
        self.inner.ping().await
    }
    async fn close(&self) {
        self.log("close");
        self.inner.close().await
    }
    async fn secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.log("secret");
        self.inner.secret(name).await
    }
    async fn insert_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, StoreError> {
        self.log("insert_secret_if_absent");
        self.write()?;
        self.inner.insert_secret_if_absent(name, value, now).await
    }
    async fn create_user(&self, user: &NewUser) -> Result<(), StoreError> {
        self.log("create_user");
        self.write()?;
        self.inner.create_user(user).await
    }
    async fn user_by_index(&self, index: &[u8]) -> Result<Option<UserRecord>, StoreError> {
        self.log("user_by_index");
        self.inner.user_by_index(index).await
    }
    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        self.log("user_by_id");
        self.inner.user_by_id(id).await
    }
    async fn list_users(&self, limit: u32, offset: u32) -> Result<Vec<UserRecord>, StoreError> {
        self.log("list_users");
        self.inner.list_users(limit, offset).await
    }
    async fn count_users(&self) -> Result<u64, StoreError> {
        self.log("count_users");
        self.inner.count_users().await
    }
    async fn set_user_status(
        &self,
        id: Uuid,
        status: AccountStatus,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.log("set_user_status");
        self.write()?;
        self.inner.set_user_status(id, status, now).await
    }
    async fn set_user_email(
        &self,
        id: Uuid,
        email: Option<(&[u8], &[u8])>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.set_user_email(id, email, now).await
    }
    async fn set_credential(
        &self,
        id: Uuid,
        credential: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        self.log("set_credential");
        self.write()?;
        self.inner.set_credential(id, credential, now).await
    }
    async fn record_login(&self, id: Uuid, now: i64) -> Result<(), StoreError> {
        self.log("record_login");
        self.write()?;
        self.inner.record_login(id, now).await
    }
    async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError> {
        self.log("delete_user");
        self.write()?;
        self.inner.delete_user(id).await
    }
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        self.log("create_session");
        self.write()?;
        self.inner.create_session(s).await
    }
    async fn create_account(
        &self,
        user: &NewUser,
        factors: &[FactorRecord],
        audit: &NewAuditEvent,
    ) -> Result<(), StoreError> {
        self.log("create_account");
        self.write()?;
        self.inner.create_account(user, factors, audit).await
    }
    async fn create_login_sessions(&self, logins: &[LoginWrite]) -> Result<(), StoreError> {
        self.log("create_login_sessions");
        self.write()?;
        self.inner.create_login_sessions(logins).await
    }
    async fn session_by_token_hash(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.log("session_by_token_hash");
        self.inner.session_by_token_hash(token_hash).await
    }
    async fn session_and_owner_by_token_hash(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(SessionRecord, Option<AccountStatus>)>, StoreError> {
        self.log("session_and_owner_by_token_hash");
        self.inner.session_and_owner_by_token_hash(token_hash).await
    }
    async fn session_by_id(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
        self.log("session_by_id");
        self.inner.session_by_id(id).await
    }
    async fn touch_session(
        &self,
        id: Uuid,
        last_seen_at: i64,
        idle_expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.log("touch_session");
        self.write()?;
        self.inner
            .touch_session(id, last_seen_at, idle_expires_at)
            .await
    }
    async fn sessions_for_user(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StoreError> {
        self.log("sessions_for_user");
        self.inner.sessions_for_user(user_id).await
    }
    async fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> Result<bool, StoreError> {
        self.log("delete_session");
        self.write()?;
        self.inner.delete_session(user_id, session_id).await
    }
    async fn delete_sessions_for_user(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        self.log("delete_sessions_for_user");
        self.write()?;
        self.inner.delete_sessions_for_user(user_id, except).await
    }
    async fn delete_expired_sessions(&self, now: i64) -> Result<u64, StoreError> {
        self.log("delete_expired_sessions");
        self.write()?;
        self.inner.delete_expired_sessions(now).await
    }
    async fn write_atomically(&self, writes: &[Write]) -> Result<Vec<u64>, StoreError> {
        self.log("write_atomically");
        let Some(at) = self.count(writes.len()) else {
            return self.inner.write_atomically(writes).await;
        };
        let mut poisoned = writes.to_vec();
        poisoned[at] = Write::PutFactor(FactorRecord {
            user_id: Uuid::new_v4(),
            kind: FactorKind::Profile,
            slot: Slot::Only,
            value: Vec::new(),
            counter: 0,
            created_at: 0,
            used_at: None,
        });
        self.inner.write_atomically(&poisoned).await
    }
    async fn append_audit(&self, e: &NewAuditEvent) -> Result<(), StoreError> {
        self.log("append_audit");
        self.write()?;
        self.inner.append_audit(e).await
    }
    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.log("list_audit");
        self.inner.list_audit(q).await
    }
    async fn delete_audit_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.log("delete_audit_before");
        self.write()?;
        self.inner.delete_audit_before(cutoff).await
    }
}
