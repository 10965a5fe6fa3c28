//! The Lua scripts of the Redis broker: each decision that must be the same on every node,
//! run by Redis as one atomic step (allocate a message id, store, trim and publish; check
//! and apply a deletion, an edit or a reaction; claim a display name within the user cap;
//! resume a token; log in an external user; restart name holds; take a token from a user's
//! cluster-wide flood bucket; beat a node's heart and declare the silent ones gone).
//!
//! Users are counted in the sorted set `flack:users`, scored by when each one's hold ends
//! (Unix milliseconds from Redis's own `TIME`, so every node agrees): every script that
//! sets a user's expiry sets their score with it, so a score in the past means the user's
//! keys have expired.
//!
//! Called by the broker's commands (`mod.rs`), which pass the keys ([`super::keys`]) and
//! arguments each script documents. A script must not build a key that `keys.rs` does
//! not name: the few it builds itself from the prefix (a user's record, token and private
//! pairs, a private room's keys) follow that layout.

use redis::Script;

/// A token bucket shared by every node (a hash of `tokens` and `at`, Redis's `TIME` in
/// milliseconds): refilled at `per_ms` tokens a millisecond up to `burst`. Takes a token
/// and returns 0, or returns how many milliseconds until one is there. The key expires
/// once the bucket would be full again, so an idle user costs nothing.
const BUCKET: &str = r#"
local function take_token(key, burst, per_ms)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local b = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  if now > at then tokens = math.min(burst, tokens + (now - at) * per_ms) end
  if tokens < 1 then return math.max(1, math.ceil((1 - tokens) / per_ms)) end
  redis.call('HSET', key, 'tokens', tostring(tokens - 1), 'at', now)
  -- At most a year: a bucket that refills slower than that is as good as empty anyway.
  redis.call('PEXPIRE', key, math.min(math.ceil(burst / per_ms) + 1000, 31536000000))
  return 0
end
"#;

/// Drops the files a stored message (JSON) carries, when it leaves the log: their keys
/// are `PREFIX:file:ID`. Only a message that has files is decoded.
const DROP_FILES: &str = r#"
local function drop_files(item, prefix)
  if not string.find(item, '"attachments":', 1, true) then return end
  local m = cjson.decode(item)
  for _, f in ipairs(m.attachments or {}) do redis.call('DEL', prefix .. ':file:' .. f.id) end
end
"#;

/// Post: check that the files it carries still wait for a post, take a token from the
/// author's cluster-wide `message_rate` bucket, then allocate the id, store, attach the
/// files (they live as long as the message from then on), trim (dropping the files of the
/// messages trimmed), publish. Trimming pops what passes the limit (`LPOP` with a count,
/// Redis 6.2): one command both reads the messages trimmed and removes them. The message arrives as JSON whose first field is `"id":0`;
/// the script puts the real id there. A private room's keys, and its files, get
/// `ARGV[4]` seconds to live (0: a channel's, which never expire).
///
/// KEYS: the room's seq, its log, the author's bucket, then the key of each file the
/// message carries. ARGV: the history limit, the message, the room's pub/sub channel, the
/// expiry, the bucket's burst and its refill per millisecond, the prefix. Returns
/// `{0, stored message}`, `{milliseconds to wait, ''}` when the bucket is empty, or
/// `{-1, ''}` when a file no longer waits (attached meanwhile, or dropped).
const POST_BODY: &str = r#"
for i = 4, #KEYS do
  if redis.call('HEXISTS', KEYS[i], 'owner') == 0 or redis.call('HEXISTS', KEYS[i], 'attached') == 1 then
    return {-1, ''}
  end
end
local wait = take_token(KEYS[3], tonumber(ARGV[5]), tonumber(ARGV[6]))
if wait > 0 then return {wait, ''} end
local id = redis.call('INCR', KEYS[1])
local message = string.gsub(ARGV[2], '^{"id":0,', '{"id":' .. id .. ',', 1)
for i = 4, #KEYS do
  redis.call('HSET', KEYS[i], 'attached', id)
  if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[i], ARGV[4]) else redis.call('PERSIST', KEYS[i]) end
end
local excess = redis.call('RPUSH', KEYS[2], message) - tonumber(ARGV[1])
if excess > 0 then
  for _, old in ipairs(redis.call('LPOP', KEYS[2], excess)) do drop_files(old, ARGV[7]) end
end
if tonumber(ARGV[4]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', ARGV[3], '{"posted":' .. message .. '}')
return {0, message}
"#;

/// Take a token: KEYS: the bucket. ARGV: its burst, its refill per millisecond. Returns 0,
/// or the milliseconds to wait.
const TAKE_BODY: &str = r#"
return take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
"#;

/// Forget a node: remove it from the live set, delete its shares of every room's
/// presence, and announce it gone on the cluster channel (`{"node_gone":ID}`), in one step.
const FORGET_NODE: &str = r#"
local function forget_node(nodes, node, channel, prefix)
  redis.call('ZREM', nodes, node)
  local rooms = prefix .. ':node:' .. node .. ':rooms'
  for _, room in ipairs(redis.call('SMEMBERS', rooms)) do
    redis.call('DEL', room .. ':here:' .. node)
    redis.call('SREM', room .. ':nodes', node)
  end
  redis.call('DEL', rooms)
  redis.call('PUBLISH', channel, cjson.encode({node_gone = node}))
end
"#;

/// Heartbeat: this node is alive until now + `ARGV[2]` ms; every other node whose time
/// ran out is forgotten (once: whichever node finds it first).
///
/// KEYS: the nodes' sorted set. ARGV: this node's id, its expiry in milliseconds, the
/// cluster channel, the prefix. Returns 1 when the set did not hold this node (its first
/// beat, or it had been declared gone), 0 otherwise, and every node alive now.
const HEARTBEAT_BODY: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  if node ~= ARGV[1] then forget_node(KEYS[1], node, ARGV[3], ARGV[4]) end
end
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {added, redis.call('ZRANGE', KEYS[1], 0, -1)}
"#;

/// Log out: forget a user now, as if their hold had run out (their token, their name if
/// it is still theirs, their record, their place in the users' set), and announce it on
/// the cluster channel (`{"logged_out":ID}`) so every node closes their sessions.
///
/// KEYS: the user's record, the users' sorted set. ARGV: the user id, the prefix, the
/// cluster channel. Returns 1 when the user was known, 0 otherwise.
const LOGOUT_SCRIPT: &str = r#"
local fields = redis.call('HMGET', KEYS[1], 'token', 'name_key')
if fields[1] then redis.call('DEL', ARGV[2] .. ':token:' .. fields[1]) end
if fields[2] and redis.call('GET', fields[2]) == ARGV[1] then redis.call('DEL', fields[2]) end
local known = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], '{"logged_out":' .. ARGV[1] .. '}')
return known
"#;

/// Leave: a node that stops cleanly forgets itself, so its users go offline everywhere
/// at once rather than after its expiry.
///
/// KEYS: the nodes' sorted set. ARGV: the node's id, the cluster channel, the prefix.
/// Returns 1.
const LEAVE_BODY: &str = r#"
forget_node(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1
"#;

/// Presence: store one node's share of a room (its changes, or the whole of it) and
/// publish it, in one step, so that a room that starts on another node reads every
/// node's share and then gets each later change on its feed. A node that is not in the
/// live set (it stopped, or was declared gone) only publishes: nothing would ever delete
/// what it stored. Its heartbeat adds it again, and its rooms announce their whole shares.
///
/// KEYS: the node's share of the room (a hash: user id -> `[user, state]`), the room's set
/// of nodes with a share, the node's set of rooms it has a share in, the nodes' sorted
/// set. ARGV: the node's id, the room's pub/sub channel, `1` for a whole share (replaces
/// the hash), the payload to publish, then pairs of a user id and the member's value
/// (empty: left). Returns 1.
const PRESENCE_SCRIPT: &str = r#"
if redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
  for i = 5, #ARGV, 2 do
    if ARGV[i + 1] == '' then
      redis.call('HDEL', KEYS[1], ARGV[i])
    else
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
  end
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[1])
    redis.call('SADD', KEYS[3], ARGV[2])
  else
    redis.call('SREM', KEYS[2], ARGV[1])
  end
end
redis.call('PUBLISH', ARGV[2], ARGV[4])
return 1
"#;

/// Read every node's share of a room's presence.
///
/// KEYS: the room's set of nodes with a share. ARGV: the room's pub/sub channel. Returns
/// one `node value` string per member of each share.
const SHARES_SCRIPT: &str = r#"
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  for _, value in ipairs(redis.call('HVALS', ARGV[1] .. ':here:' .. node)) do
    table.insert(out, node .. ' ' .. value)
  end
end
return out
"#;

/// Delete: only the author, only a stored message; its files go with it.
///
/// KEYS: the room's log. ARGV: the message id, the id of the user who asks, the room's
/// pub/sub channel, the prefix. Returns `ok`, `not_author` or `no_such_message`.
const DELETE_SCRIPT: &str = r#"
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, item in ipairs(items) do
  local m = cjson.decode(item)
  if m.id == tonumber(ARGV[1]) then
    if m.author.id ~= tonumber(ARGV[2]) then return 'not_author' end
    drop_files(item, ARGV[4])
    redis.call('LREM', KEYS[1], 1, item)
    redis.call('PUBLISH', ARGV[3], '{"deleted":' .. ARGV[1] .. '}')
    return 'ok'
  end
end
return 'no_such_message'
"#;

/// Edit: only the author, only a stored message. Rewrites the message in place with its
/// new text and `edited_at`, and publishes its new state.
///
/// KEYS: the room's log. ARGV: the message id, the id of the user who asks, the room's
/// pub/sub channel, the new text, the time (Unix ms). Returns the new message (JSON),
/// `not_author` or `no_such_message`.
const EDIT_SCRIPT: &str = r#"
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, item in ipairs(items) do
  local m = cjson.decode(item)
  if m.id == tonumber(ARGV[1]) then
    if m.author.id ~= tonumber(ARGV[2]) then return 'not_author' end
    m.text = ARGV[4]
    m.edited_at = tonumber(ARGV[5])
    local message = cjson.encode(m)
    redis.call('LSET', KEYS[1], i - 1, message)
    redis.call('PUBLISH', ARGV[3], '{"updated":' .. message .. '}')
    return message
  end
end
return 'no_such_message'
"#;

/// React: add the user to the emoji's list of a stored message, or take them off it (an
/// emoji nobody uses any more goes, and so does an empty `reactions`). Rewrites the
/// message in place and publishes its new state.
///
/// KEYS: the room's log. ARGV: the message id, the id of the user who reacts, the room's
/// pub/sub channel, the emoji. Returns the new message (JSON) or `no_such_message`.
const REACT_SCRIPT: &str = r#"
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local user = tonumber(ARGV[2])
for i, item in ipairs(items) do
  local m = cjson.decode(item)
  if m.id == tonumber(ARGV[1]) then
    local reactions = m.reactions or {}
    local users = reactions[ARGV[4]] or {}
    local found = nil
    for j, u in ipairs(users) do
      if u == user then found = j end
    end
    if found then table.remove(users, found) else table.insert(users, user) end
    if #users == 0 then reactions[ARGV[4]] = nil else reactions[ARGV[4]] = users end
    if next(reactions) == nil then m.reactions = nil else m.reactions = reactions end
    local message = cjson.encode(m)
    redis.call('LSET', KEYS[1], i - 1, message)
    redis.call('PUBLISH', ARGV[3], '{"updated":' .. message .. '}')
    return message
  end
end
return 'no_such_message'
"#;

/// Register: claim the display name (unless held), within the user cap, and create the
/// user and its token. At the cap, the user whose hold ended longest ago is forgotten
/// first (what is left of their keys, normally nothing: they expired with the hold); when
/// no hold has ended, nobody is.
///
/// KEYS: the name's key, the user id sequence, the users' sorted set. ARGV: the hold in
/// seconds, the display name, the token, the name's key, the prefix, the most users
/// kept. Returns the new id, 0 if the name is held, or -1 if the cap is reached and every
/// hold is live.
const REGISTER_SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1)[1]
  if not oldest then return -1 end
  redis.call('ZREM', KEYS[3], oldest)
  local old = ARGV[5] .. ':user:' .. oldest
  local fields = redis.call('HMGET', old, 'name_key', 'token')
  if fields[1] and redis.call('GET', fields[1]) == oldest then redis.call('DEL', fields[1]) end
  if fields[2] then redis.call('DEL', ARGV[5] .. ':token:' .. fields[2]) end
  redis.call('DEL', old)
end
local id = redis.call('INCR', KEYS[2])
local user = ARGV[5] .. ':user:' .. id
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
redis.call('SET', ARGV[5] .. ':token:' .. ARGV[3], id, 'EX', ARGV[1])
redis.call('HSET', user, 'name', ARGV[2], 'token', ARGV[3], 'name_key', KEYS[1])
redis.call('EXPIRE', user, ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]) * 1000, id)
return id
"#;

/// Resume: the token's user, if its name is still theirs; refreshes the hold.
///
/// KEYS: the token's key, the users' sorted set. ARGV: the hold in seconds, the prefix.
/// Returns the user's id and display name, or nil.
const RESUME_SCRIPT: &str = r#"
local id = redis.call('GET', KEYS[1])
if not id then return false end
local user = ARGV[2] .. ':user:' .. id
local fields = redis.call('HMGET', user, 'name', 'name_key')
if not fields[1] or redis.call('GET', fields[2]) ~= id then return false end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', user, ARGV[1])
redis.call('EXPIRE', fields[2], ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]) * 1000, id)
return {tonumber(id), fields[1]}
"#;

/// External login (`Login::External`): the external id's user, kept for good under its
/// key (no expiry). A user whose record and name are still theirs comes back as they are,
/// with a fresh token replacing the old one and their hold restarted; otherwise the user
/// is made (again, with the id the external id had, or a new one) with the display name,
/// as `REGISTER_SCRIPT` makes one: unless the name is held, within the user cap.
///
/// KEYS: the external id's key, the user id sequence, the users' sorted set, the name's
/// key. ARGV: the hold in seconds, the display name, the token, (unused), the prefix, the
/// most users kept. Returns `{id, name, made}` (`made` 1 when the user was made), or
/// `{0, '', 0}` if the name is held, `{-1, '', 0}` if the cap is reached and every hold is
/// live.
const EXTERNAL_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('GET', KEYS[1])
if id then
  local user = ARGV[5] .. ':user:' .. id
  local fields = redis.call('HMGET', user, 'name', 'name_key', 'token')
  if fields[1] and redis.call('GET', fields[2]) == id then
    if fields[3] then redis.call('DEL', ARGV[5] .. ':token:' .. fields[3]) end
    redis.call('SET', ARGV[5] .. ':token:' .. ARGV[3], id, 'EX', ARGV[1])
    redis.call('HSET', user, 'token', ARGV[3])
    redis.call('EXPIRE', user, ARGV[1])
    redis.call('EXPIRE', fields[2], ARGV[1])
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]) * 1000, id)
    return {tonumber(id), fields[1], 0}
  end
end
if redis.call('EXISTS', KEYS[4]) == 1 then return {0, '', 0} end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1)[1]
  if not oldest then return {-1, '', 0} end
  redis.call('ZREM', KEYS[3], oldest)
  local old = ARGV[5] .. ':user:' .. oldest
  local fields = redis.call('HMGET', old, 'name_key', 'token')
  if fields[1] and redis.call('GET', fields[1]) == oldest then redis.call('DEL', fields[1]) end
  if fields[2] then redis.call('DEL', ARGV[5] .. ':token:' .. fields[2]) end
  redis.call('DEL', old)
end
if id then
  local stale = redis.call('HGET', ARGV[5] .. ':user:' .. id, 'token')
  if stale then redis.call('DEL', ARGV[5] .. ':token:' .. stale) end
else
  id = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], id)
end
local user = ARGV[5] .. ':user:' .. id
redis.call('DEL', user)
redis.call('SET', KEYS[4], id, 'EX', ARGV[1])
redis.call('SET', ARGV[5] .. ':token:' .. ARGV[3], id, 'EX', ARGV[1])
redis.call('HSET', user, 'name', ARGV[2], 'token', ARGV[3], 'name_key', KEYS[4])
redis.call('EXPIRE', user, ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]) * 1000, id)
return {tonumber(id), ARGV[2], 1}
"#;

/// Touch: restart the hold of a user's name, token and record, and of their private
/// conversations (so one lives while either of its users does); forget the users whose
/// hold ended from the count.
///
/// KEYS: the prefix (every key it touches is built from it). ARGV: the hold in seconds,
/// then the ids of the users to touch. Returns 1.
const TOUCH_SCRIPT: &str = r#"
local users = KEYS[1] .. ':users'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', users, '-inf', now)
for i, id in ipairs(ARGV) do
  if i > 1 then
    local user = KEYS[1] .. ':user:' .. id
    local fields = redis.call('HMGET', user, 'name_key', 'token')
    if fields[1] then
      redis.call('ZADD', users, now + tonumber(ARGV[1]) * 1000, id)
      redis.call('EXPIRE', user, ARGV[1])
      redis.call('EXPIRE', fields[1], ARGV[1])
      redis.call('EXPIRE', KEYS[1] .. ':token:' .. fields[2], ARGV[1])
      local dms = KEYS[1] .. ':dms:' .. id
      for _, pair in ipairs(redis.call('SMEMBERS', dms)) do
        local p = cjson.decode(pair)
        local room = string.format('%s:room:d:%d:%d', KEYS[1], p[1].id, p[2].id)
        redis.call('EXPIRE', room .. ':seq', ARGV[1])
        redis.call('EXPIRE', room .. ':log', ARGV[1])
      end
      redis.call('EXPIRE', dms, ARGV[1])
    end
  end
end
return 1
"#;

/// The scripts, shared by every clone of the broker. Each runs by its hash (`EVALSHA`)
/// and is sent again whenever Redis does not know it (after a restart, say).
pub(super) struct Scripts {
    pub(super) post: Script,
    pub(super) delete: Script,
    pub(super) edit: Script,
    pub(super) react: Script,
    pub(super) register: Script,
    pub(super) resume: Script,
    pub(super) external: Script,
    pub(super) touch: Script,
    pub(super) take: Script,
    pub(super) heartbeat: Script,
    pub(super) leave: Script,
    pub(super) logout: Script,
    pub(super) presence: Script,
    pub(super) shares: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            post: Script::new(&format!("{BUCKET}{DROP_FILES}{POST_BODY}")),
            delete: Script::new(&format!("{DROP_FILES}{DELETE_SCRIPT}")),
            edit: Script::new(EDIT_SCRIPT),
            react: Script::new(REACT_SCRIPT),
            register: Script::new(REGISTER_SCRIPT),
            resume: Script::new(RESUME_SCRIPT),
            external: Script::new(EXTERNAL_SCRIPT),
            touch: Script::new(TOUCH_SCRIPT),
            take: Script::new(&format!("{BUCKET}{TAKE_BODY}")),
            heartbeat: Script::new(&format!("{FORGET_NODE}{HEARTBEAT_BODY}")),
            leave: Script::new(&format!("{FORGET_NODE}{LEAVE_BODY}")),
            logout: Script::new(LOGOUT_SCRIPT),
            presence: Script::new(PRESENCE_SCRIPT),
            shares: Script::new(SHARES_SCRIPT),
        }
    }
}
