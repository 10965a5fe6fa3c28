//! `Directory`: who the users are. Issues resume tokens, binds them to user ids, and
//! keeps display names unique (case-insensitively) while their holder is connected or was
//! seen within `Limits::name_hold`. Keeps at most `Limits::max_users` users: a new name
//! past it first forgets the user whose hold expired longest ago, and is refused
//! (`server_full`) when no hold has expired.
//!
//! Owned by the in-memory broker behind a lock, so every call is serialized; this module is plain
//! data and takes the current time as an argument, which keeps it testable without
//! sleeping. It never shows a token to anyone: only `login_*` return one, to its holder.
//! It keeps no token either, only its SHA-256 hash ([`TokenHash`]): a store written from
//! it (the SQLite file) or a memory dump gives nobody a way to log in as someone else.
//!
//! Users an embedder authenticated itself (`Login::External`) are found by their external
//! id. That id keeps its user id for good (`by_external` is never swept: it grows with the
//! embedder's own accounts, one small entry each), so the same person is the same user
//! after their hold ran out too; their record (name, token, sessions) is kept and
//! forgotten like anyone's.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::ChatError;
use crate::ids::{UserId, UserRef};
use crate::validate;

/// A secret that lets its holder come back as the same user: 128 bits from the operating
/// system's random generator, as 32 hex digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResumeToken(String);

impl ResumeToken {
    /// Draws a fresh token from the OS random number generator.
    pub(crate) fn generate() -> Result<Self, ChatError> {
        Ok(ResumeToken(random_hex()?))
    }

    /// Wraps a token a client sent back.
    pub fn from_client(raw: &str) -> Self {
        ResumeToken(raw.trim().to_owned())
    }

    /// The token's text, to give to its holder and to no one else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 hash of the token's text: what is kept and looked up instead of it.
    /// The token has 128 random bits, so a plain (unsalted, fast) hash cannot be reversed
    /// by guessing.
    pub(crate) fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for ResumeToken {
    /// Never prints the secret, so a token cannot leak through logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeToken(..)")
    }
}

/// 128 bits from the operating system's random generator, as 32 hex digits: resume tokens
/// and stores' epochs.
pub(crate) fn random_hex() -> Result<String, ChatError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ChatError::Unavailable(format!("random number generator: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The SHA-256 hash of a resume token: the only form in which tokens are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenHash(pub(crate) [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A user as a store gives it back: what [`Directory::restore`] needs to let them resume.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) struct StoredUser {
    pub(crate) user: UserRef,
    pub(crate) token: TokenHash,
    /// How long ago (by the wall clock) the user was last connected.
    pub(crate) away: Duration,
}

/// Who a client is, once it logged in.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user: UserRef,
    /// Their resume token (for them only).
    pub token: ResumeToken,
    /// True when this login created the user.
    pub new_user: bool,
}

#[derive(Debug)]
struct UserRecord {
    user: UserRef,
    token: TokenHash,
    sessions: usize,
    last_seen: Instant,
}

impl UserRecord {
    fn expired(&self, now: Instant, hold: Duration) -> bool {
        self.sessions == 0 && now.saturating_duration_since(self.last_seen) > hold
    }
}

/// Users, their tokens and their names.
#[derive(Debug)]
pub(crate) struct Directory {
    users: HashMap<UserId, UserRecord>,
    by_token: HashMap<TokenHash, UserId>,
    by_name: HashMap<String, UserId>,
    /// Every external id ever logged in, and its user: kept for good.
    by_external: HashMap<Arc<str>, UserId>,
    /// The users with no session, by when they were last seen: the first one's hold is
    /// the first to expire, so the cap and the sweep find the expired ones without
    /// looking at anyone else.
    offline: BTreeSet<(Instant, UserId)>,
    /// Users forgotten since the last `sweep` (by the sweep, on a login or for the cap).
    forgotten: Vec<UserId>,
    next_id: u64,
    hold: Duration,
    max_users: usize,
}

impl Directory {
    /// A directory that holds names for `hold` and keeps at most `max_users` users.
    pub(crate) fn new(hold: Duration, max_users: usize) -> Self {
        Directory {
            users: HashMap::new(),
            by_token: HashMap::new(),
            by_name: HashMap::new(),
            by_external: HashMap::new(),
            offline: BTreeSet::new(),
            forgotten: Vec::new(),
            next_id: 1,
            hold,
            max_users: max_users.max(1),
        }
    }

    /// A directory that knows `users` again (each offline since `away`, its name held for
    /// what is left of `hold`), and gives ids from `next_id` on (ids are never reused:
    /// messages and private rooms name their users by id). A user whose hold has run out
    /// is left out, and so is one whose name a user with a higher id holds now (the name
    /// was taken over after the older one's hold ran out).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn restore(
        hold: Duration,
        max_users: usize,
        mut users: Vec<StoredUser>,
        externals: Vec<(String, UserId)>,
        next_id: u64,
        now: Instant,
    ) -> Self {
        let mut directory = Directory::new(hold, max_users);
        directory.next_id = next_id.max(1);
        for (external, id) in externals {
            directory.next_id = directory.next_id.max(id.0 + 1);
            directory.by_external.insert(Arc::from(external), id);
        }
        users.sort_by_key(|u| std::cmp::Reverse(u.user.id));
        for stored in users {
            let id = stored.user.id;
            directory.next_id = directory.next_id.max(id.0 + 1);
            let key = validate::name_key(&stored.user.name);
            if stored.away > hold || directory.by_name.contains_key(&key) {
                continue;
            }
            // A clock that cannot go back that far (the machine booted since) holds the name
            // from now: a little longer, never shorter.
            let last_seen = now.checked_sub(stored.away).unwrap_or(now);
            directory.offline.insert((last_seen, id));
            directory.by_token.insert(stored.token, id);
            directory.by_name.insert(key, id);
            directory.users.insert(
                id,
                UserRecord {
                    user: stored.user,
                    token: stored.token,
                    sessions: 0,
                    last_seen,
                },
            );
        }
        directory
    }

    /// The id the next new user gets.
    #[cfg(test)]
    fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Creates a user with a validated, trimmed `name`, unless someone holds it
    /// (`name_taken`) or the directory is full of users whose holds have not expired
    /// (`server_full`).
    pub(crate) fn login_with_name(
        &mut self,
        name: String,
        now: Instant,
    ) -> Result<Identity, ChatError> {
        let identity = self.create(UserId(self.next_id), name, now)?;
        self.next_id += 1;
        Ok(identity)
    }

    /// Logs in the user an embedder authenticated as `external` (checked by
    /// `validate::external_id`), with a validated display `name`:
    /// - a user the directory keeps (online, or within the hold) comes back as they are,
    ///   with the name they have: a different `name` is not taken up while they are kept
    ///   (their name is what other users know them by, in rooms and private
    ///   conversations);
    /// - otherwise the user is made (again, with the same user id if `external` logged in
    ///   before) with `name`, under the rules of a new name: `name_taken` if someone else
    ///   holds it, `server_full` at the cap.
    ///
    /// Each login gives a fresh resume token, which replaces the user's previous one.
    pub(crate) fn login_external(
        &mut self,
        external: &str,
        name: String,
        now: Instant,
    ) -> Result<Identity, ChatError> {
        let known = self.by_external.get(external).copied();
        if let Some(id) = known {
            self.forget_if_expired(id, now);
            if let Some(record) = self.users.get_mut(&id) {
                let token = ResumeToken::generate()?;
                self.by_token.remove(&record.token);
                record.token = token.hash();
                self.by_token.insert(record.token, id);
                if record.sessions == 0 {
                    self.offline.remove(&(record.last_seen, id));
                }
                record.sessions += 1;
                record.last_seen = now;
                return Ok(Identity {
                    user: record.user.clone(),
                    token,
                    new_user: false,
                });
            }
        }
        let id = known.unwrap_or(UserId(self.next_id));
        let identity = self.create(id, name, now)?;
        if known.is_none() {
            self.next_id += 1;
            self.by_external.insert(Arc::from(external), id);
        }
        Ok(identity)
    }

    /// The user `id`, external or not, made with `name` and one session.
    fn create(&mut self, id: UserId, name: String, now: Instant) -> Result<Identity, ChatError> {
        let key = validate::name_key(&name);
        if let Some(&holder) = self.by_name.get(&key) {
            self.forget_if_expired(holder, now);
            if self.by_name.contains_key(&key) {
                return Err(ChatError::NameTaken(name));
            }
        }
        if self.users.len() >= self.max_users {
            // The oldest expired hold goes first; when none has expired, nobody goes.
            match self.oldest_expired(now) {
                Some(oldest) => self.forget_if_expired(oldest, now),
                None => return Err(ChatError::TooManyUsers(self.max_users)),
            }
        }
        let token = ResumeToken::generate()?;
        let user = UserRef {
            id,
            name: Arc::from(name),
        };
        self.by_token.insert(token.hash(), id);
        self.by_name.insert(key, id);
        self.users.insert(
            id,
            UserRecord {
                user: user.clone(),
                token: token.hash(),
                sessions: 1,
                last_seen: now,
            },
        );
        Ok(Identity {
            user,
            token,
            new_user: true,
        })
    }

    /// Brings back the user a token was issued to, with the same name.
    pub(crate) fn login_with_token(
        &mut self,
        token: &ResumeToken,
        now: Instant,
    ) -> Result<Identity, ChatError> {
        let id = *self
            .by_token
            .get(&token.hash())
            .ok_or(ChatError::InvalidToken)?;
        self.forget_if_expired(id, now);
        let record = self.users.get_mut(&id).ok_or(ChatError::InvalidToken)?;
        if record.sessions == 0 {
            self.offline.remove(&(record.last_seen, id));
        }
        record.sessions += 1;
        record.last_seen = now;
        Ok(Identity {
            user: record.user.clone(),
            token: token.clone(),
            new_user: false,
        })
    }

    /// The user `token` was issued to, if it is known and has not expired; counts no
    /// session.
    pub(crate) fn user_of_token(&mut self, token: &ResumeToken, now: Instant) -> Option<UserRef> {
        let id = *self.by_token.get(&token.hash())?;
        self.forget_if_expired(id, now);
        self.users.get(&id).map(|record| record.user.clone())
    }

    /// Forgets `id` now, whatever its sessions (they logged out): the token no longer
    /// resumes and the name is free. An external id keeps its user id. Returns whether
    /// the user was known.
    pub(crate) fn log_out(&mut self, id: UserId) -> bool {
        let Some(record) = self.users.remove(&id) else {
            return false;
        };
        self.offline.remove(&(record.last_seen, id));
        self.by_token.remove(&record.token);
        self.by_name.remove(&validate::name_key(&record.user.name));
        true
    }

    /// One session of `id` ended; its name stays held for `hold` after the last one.
    pub(crate) fn session_ended(&mut self, id: UserId, now: Instant) {
        if let Some(record) = self.users.get_mut(&id) {
            if record.sessions == 0 {
                self.offline.remove(&(record.last_seen, id));
            }
            record.sessions = record.sessions.saturating_sub(1);
            record.last_seen = now;
            if record.sessions == 0 {
                self.offline.insert((now, id));
            }
        }
    }

    /// The user currently holding `name` (case-insensitively), if any.
    pub(crate) fn find_by_name(&self, name: &str, now: Instant) -> Option<&UserRef> {
        let id = self.by_name.get(&validate::name_key(name.trim()))?;
        let record = self.users.get(id)?;
        (!record.expired(now, self.hold)).then_some(&record.user)
    }

    /// Whether `id` is a user this directory still keeps (online, or within the hold).
    pub(crate) fn knows(&self, id: UserId) -> bool {
        self.users.contains_key(&id)
    }

    /// How many users are kept (online, or within their hold).
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    /// Drops every user whose hold has run out, so memory follows the active users.
    /// Returns the users forgotten since the last sweep, this one's included (a login
    /// forgets an expired holder of its name, a new name past the cap the oldest expired
    /// user), so the caller can drop what it keeps for them.
    pub(crate) fn sweep(&mut self, now: Instant) -> Vec<UserId> {
        while let Some(oldest) = self.oldest_expired(now) {
            self.forget_if_expired(oldest, now);
        }
        std::mem::take(&mut self.forgotten)
    }

    /// The user whose hold expired longest ago, if any has.
    fn oldest_expired(&self, now: Instant) -> Option<UserId> {
        let &(last_seen, id) = self.offline.first()?;
        (now.saturating_duration_since(last_seen) > self.hold).then_some(id)
    }

    fn forget_if_expired(&mut self, id: UserId, now: Instant) {
        let Some(record) = self.users.get(&id) else {
            return;
        };
        if !record.expired(now, self.hold) {
            return;
        }
        if let Some(record) = self.users.remove(&id) {
            self.offline.remove(&(record.last_seen, id));
            self.by_token.remove(&record.token);
            self.by_name.remove(&validate::name_key(&record.user.name));
            self.forgotten.push(id);
        }
    }
}

#[cfg(test)]
mod tests;
