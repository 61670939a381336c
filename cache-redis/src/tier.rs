//! [`RedisTier`]: a shared cache's values in Redis, loaded once for the whole fleet.
//!
//! Each key has, beside its value, a lease (`SET NX PX` with a token: who loads it now), a
//! version (moved by every invalidation, in the same `MULTI` that deletes the value) and a
//! waiter flag (some process waits for it). Three scripts keep each step atomic:
//!
//! - `read_or_lease`: the value if there is one of the cache's current epoch and of this
//!   schema; else the lease with the version it was taken at; else the lease's time left,
//!   with the waiter flag set;
//! - `store`: the value, only if the version and the epoch are still the lease's (so a load
//!   that began before an invalidation anywhere never stores), then the lease released, and
//!   the waiters woken by a `PUBLISH` on `<ns>:filled` if the flag was set;
//! - `release`: the lease released (the load failed) and the waiters woken, so that one of
//!   them, not all, takes the lease next.
//!
//! A value is stored as `<epoch>|<schema>|<bytes>`: a clear moves the epoch, so every value
//! of an older one is a miss, and a schema version of another deploy is a miss too (counted
//! as undecodable, and overwritten).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cache_core::fleet::{Found, Lease, Read, ReadOrLease, SharedTier, TierError, Version, Waiting};
use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};

use crate::shared::{Channel, Shared};

const READ_OR_LEASE: &str = r"
local epoch = redis.call('GET', KEYS[4]) or '0'
local discarded = 0
local record = redis.call('GET', KEYS[1])
if record then
  local head = epoch .. '|' .. ARGV[4] .. '|'
  if ARGV[3] == '0' and string.sub(record, 1, #head) == head then
    return {1, string.sub(record, #head + 1), redis.call('PTTL', KEYS[1])}
  end
  if ARGV[3] == '0' and string.sub(record, 1, #epoch + 1) == epoch .. '|' then
    discarded = 1
  end
  redis.call('DEL', KEYS[1])
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, redis.call('GET', KEYS[3]) or '0', epoch, discarded}
end
redis.call('SET', KEYS[5], '1', 'PX', ARGV[2])
return {3, redis.call('PTTL', KEYS[2])}
";

const STORE: &str = r"
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
local stored = 0
if (redis.call('GET', KEYS[3]) or '0') == ARGV[2] and (redis.call('GET', KEYS[4]) or '0') == ARGV[3] then
  local record = ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[5]
  if ARGV[6] == '0' then
    redis.call('SET', KEYS[1], record)
  else
    redis.call('SET', KEYS[1], record, 'PX', ARGV[6])
  end
  stored = 1
end
if redis.call('DEL', KEYS[5]) == 1 then
  redis.call('PUBLISH', ARGV[7], KEYS[1])
end
return stored
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return 1
";

/// The scripts, loaded into Redis when the link connects (pipelined scripts are not loaded
/// on demand).
pub(crate) struct Scripts {
    read_or_lease: Script,
    store: Script,
    release: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            read_or_lease: Script::new(READ_OR_LEASE),
            store: Script::new(STORE),
            release: Script::new(RELEASE),
        }
    }

    /// Every script, for `SCRIPT LOAD`.
    pub(crate) fn all(&self) -> [&Script; 3] {
        [&self.read_or_lease, &self.store, &self.release]
    }
}

/// A shared cache's settings, from its [`SharedFleetCache`](crate::SharedFleetCache).
#[derive(Clone, Debug)]
pub(crate) struct TierConfig {
    pub(crate) schema: u32,
    pub(crate) lease: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_wait: Duration,
    pub(crate) max_value_bytes: usize,
}

/// The shared tier of one cache, on the fleet's connection.
pub(crate) struct RedisTier {
    pub(crate) shared: Arc<Shared>,
    pub(crate) channel: Arc<Channel>,
    pub(crate) config: TierConfig,
    /// Identifies this process's leases.
    token: String,
}

impl RedisTier {
    pub(crate) fn new(shared: Arc<Shared>, channel: Arc<Channel>, config: TierConfig) -> Self {
        let token = shared.keys.writer().to_owned();
        RedisTier {
            shared,
            channel,
            config,
            token,
        }
    }

    fn millis(duration: Duration) -> u64 {
        u64::try_from(duration.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn ttl_arg(ttl: Option<Duration>) -> u64 {
        ttl.map_or(0, Self::millis)
    }

    /// Runs `job` with a connection of this thread, in a task of the caller's runtime, not
    /// waited for (a write with no caller to answer: a store, a release).
    fn detach<F>(&self, job: impl FnOnce(MultiplexedConnection) -> F + Send + 'static)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let task = async move {
            match shared.caller_connection().await {
                Ok(connection) => job(connection).await,
                Err(_) => {
                    shared.stats.tier_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(task));
        }
    }
}

fn unexpected(reply: &Value) -> TierError {
    TierError(format!(
        "unexpected reply from the shared tier's script: {reply:?}"
    ))
}

fn bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(text) => Some(text.clone().into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// A `PTTL` reply as a time left: `None` for no expiry (-1).
fn ttl(pttl: i64) -> Option<Duration> {
    u64::try_from(pttl).ok().map(Duration::from_millis)
}

impl SharedTier for RedisTier {
    fn is_available(&self) -> bool {
        self.shared.is_connected()
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    fn max_wait(&self) -> Duration {
        self.config.max_wait
    }

    fn max_value_bytes(&self) -> usize {
        self.config.max_value_bytes
    }

    fn read_or_lease(
        &self,
        key: &[u8],
        discard: bool,
    ) -> BoxFuture<'static, Result<ReadOrLease, TierError>> {
        let keys = self.shared.keys.shared(&self.channel.name, key);
        let shared = Arc::clone(&self.shared);
        let token = self.token.clone();
        let (lease_ms, schema) = (Self::millis(self.config.lease), self.config.schema);
        Box::pin(async move {
            let mut connection = shared.caller_connection().await?;
            // The common case, a value there, in one round trip of plain reads (no script).
            if !discard {
                let ((epoch, record), pttl): (EpochAndRecord, i64) = redis::pipe()
                    .cmd("MGET")
                    .arg(&keys.epoch)
                    .arg(&keys.value)
                    .cmd("PTTL")
                    .arg(&keys.value)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| shared.failed(e))?;
                let epoch = epoch.unwrap_or_else(|| b"0".to_vec());
                if let Some(value) = record.and_then(|record| payload(record, &epoch, schema)) {
                    return Ok(ReadOrLease::Value(Read {
                        value,
                        ttl: ttl(pttl),
                    }));
                }
            }
            // Look at the wake count before asking, so a value stored between the answer
            // and the wait still wakes this caller.
            let entry = shared.waiters.entry(&keys.value);
            let seen = entry.wakes.load(Ordering::SeqCst);
            let reply: Value = shared
                .scripts
                .read_or_lease
                .key(&keys.value)
                .key(&keys.lease)
                .key(&keys.version)
                .key(&keys.epoch)
                .key(&keys.waiter)
                .arg(&token)
                .arg(lease_ms)
                .arg(if discard { "1" } else { "0" })
                .arg(schema)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| shared.failed(e))?;
            let Value::Array(fields) = &reply else {
                return Err(unexpected(&reply));
            };
            match fields.first().and_then(int) {
                Some(1) => {
                    let value = fields
                        .get(1)
                        .and_then(bytes)
                        .ok_or_else(|| unexpected(&reply))?;
                    let pttl = fields.get(2).and_then(int).unwrap_or(-1);
                    shared.waiters.forget(&keys.value, &entry);
                    Ok(ReadOrLease::Value(Read {
                        value,
                        ttl: ttl(pttl),
                    }))
                }
                Some(2) => {
                    let version = fields.get(1).and_then(bytes).unwrap_or_default();
                    let epoch = fields.get(2).and_then(bytes).unwrap_or_default();
                    let discarded = fields.get(3).and_then(int) == Some(1);
                    shared.waiters.forget(&keys.value, &entry);
                    Ok(ReadOrLease::Leased(Lease {
                        token: token.into_bytes(),
                        version: Version([version, b"|".to_vec(), epoch].concat()),
                        discarded,
                    }))
                }
                Some(3) => {
                    let left = fields
                        .get(1)
                        .and_then(int)
                        .and_then(ttl)
                        .unwrap_or(Duration::from_millis(lease_ms));
                    let waiters = Arc::clone(&shared);
                    Ok(ReadOrLease::Held(Waiting::new(async move {
                        let notified = entry.notify.notified();
                        tokio::pin!(notified);
                        notified.as_mut().enable();
                        if entry.wakes.load(Ordering::SeqCst) == seen {
                            // The lease's time left, and a little: its holder may have died.
                            let _ = tokio::time::timeout(left + Duration::from_millis(5), notified)
                                .await;
                        }
                        waiters.waiters.forget(&keys.value, &entry);
                    })))
                }
                _ => Err(unexpected(&reply)),
            }
        })
    }

    fn store(&self, key: &[u8], lease: Lease, value: Vec<u8>, ttl: Option<Duration>) {
        let keys = self.shared.keys.shared(&self.channel.name, key);
        let shared = Arc::clone(&self.shared);
        let schema = self.config.schema;
        self.detach(async move |mut connection| {
            let (version, epoch) = split_version(&lease.version);
            let stored = shared
                .scripts
                .store
                .key(&keys.value)
                .key(&keys.lease)
                .key(&keys.version)
                .key(&keys.epoch)
                .key(&keys.waiter)
                .arg(&lease.token)
                .arg(version)
                .arg(epoch)
                .arg(schema)
                .arg(&value)
                .arg(Self::ttl_arg(ttl))
                .arg(shared.keys.filled())
                .invoke_async::<i64>(&mut connection)
                .await;
            if let Err(error) = stored {
                shared.failed(error);
                shared.stats.tier_errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    fn release(&self, key: &[u8], lease: Lease) {
        let keys = self.shared.keys.shared(&self.channel.name, key);
        let shared = Arc::clone(&self.shared);
        self.detach(async move |mut connection| {
            let released = shared
                .scripts
                .release
                .key(&keys.lease)
                .key(&keys.waiter)
                .arg(&lease.token)
                .arg(shared.keys.filled())
                .arg(&keys.value)
                .invoke_async::<i64>(&mut connection)
                .await;
            if let Err(error) = released {
                shared.failed(error);
                shared.stats.tier_errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    fn read_many(&self, keys: Vec<Vec<u8>>) -> BoxFuture<'static, Result<Vec<Found>, TierError>> {
        let shared = Arc::clone(&self.shared);
        let channel = Arc::clone(&self.channel);
        let schema = self.config.schema;
        Box::pin(async move {
            let mut connection = shared.caller_connection().await?;
            // One round trip of plain reads: the epoch, every value and version, every TTL.
            let all: Vec<_> = keys
                .iter()
                .map(|key| shared.keys.shared(&channel.name, key))
                .collect();
            let mut pipeline = redis::pipe();
            let mget = pipeline.cmd("MGET").arg(shared.keys.epoch(&channel.name));
            for keys in &all {
                mget.arg(&keys.value).arg(&keys.version);
            }
            for keys in &all {
                pipeline.cmd("PTTL").arg(&keys.value);
            }
            let replies: Vec<Value> = pipeline
                .query_async(&mut connection)
                .await
                .map_err(|e| shared.failed(e))?;
            let Some(Value::Array(read)) = replies.first() else {
                return Err(TierError("unexpected reply to a batch read".into()));
            };
            let epoch = read
                .first()
                .and_then(bytes)
                .unwrap_or_else(|| b"0".to_vec());
            let found = (0..all.len())
                .map(|i| {
                    let record = read.get(1 + 2 * i).and_then(bytes);
                    let version = read
                        .get(2 + 2 * i)
                        .and_then(bytes)
                        .unwrap_or_else(|| b"0".to_vec());
                    let pttl = replies.get(1 + i).and_then(int).unwrap_or(-1);
                    Found {
                        read: record
                            .and_then(|record| payload(record, &epoch, schema))
                            .map(|value| Read {
                                value,
                                ttl: ttl(pttl),
                            }),
                        version: Version([version, b"|".to_vec(), epoch.clone()].concat()),
                    }
                })
                .collect();
            Ok(found)
        })
    }

    fn store_many(&self, entries: Vec<(Vec<u8>, Version, Vec<u8>)>, ttl: Option<Duration>) {
        let shared = Arc::clone(&self.shared);
        let channel = Arc::clone(&self.channel);
        let schema = self.config.schema;
        self.detach(async move |mut connection| {
            let mut pipeline = redis::pipe();
            for (key, version, value) in &entries {
                let keys = shared.keys.shared(&channel.name, key);
                let (version, epoch) = split_version(version);
                pipeline
                    .invoke_script(
                        shared
                            .scripts
                            .store
                            .key(&keys.value)
                            .key(&keys.lease)
                            .key(&keys.version)
                            .key(&keys.epoch)
                            .key(&keys.waiter)
                            .arg("")
                            .arg(version)
                            .arg(epoch)
                            .arg(schema)
                            .arg(value)
                            .arg(Self::ttl_arg(ttl))
                            .arg(shared.keys.filled()),
                    )
                    .ignore();
            }
            if let Err(error) = pipeline.query_async::<()>(&mut connection).await {
                shared.failed(error);
                shared.stats.tier_errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// A cache's epoch and one record, as `MGET` reads them.
type EpochAndRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The value in `record` (`<epoch>|<schema>|<bytes>`) if it is of this epoch and schema.
fn payload(mut record: Vec<u8>, epoch: &[u8], schema: u32) -> Option<Vec<u8>> {
    let head = [epoch, b"|", schema.to_string().as_bytes(), b"|"].concat();
    record
        .starts_with(&head)
        .then(|| record.split_off(head.len()))
}

/// A lease's version as `read_or_lease` gave it: `<version>|<epoch>`.
fn split_version(version: &Version) -> (&[u8], &[u8]) {
    match version.0.iter().rposition(|byte| *byte == b'|') {
        Some(split) => (&version.0[..split], &version.0[split + 1..]),
        None => (&version.0, b"0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_read_only_in_its_epoch_and_schema() {
        assert_eq!(payload(b"3|1|abc".to_vec(), b"3", 1), Some(b"abc".to_vec()));
        assert_eq!(payload(b"3|1|".to_vec(), b"3", 1), Some(Vec::new()));
        assert_eq!(payload(b"3|1|abc".to_vec(), b"4", 1), None, "cleared since");
        assert_eq!(
            payload(b"3|1|abc".to_vec(), b"3", 2),
            None,
            "another schema"
        );
        assert_eq!(payload(b"3|12|abc".to_vec(), b"3", 1), None);
        assert_eq!(payload(b"33|1|abc".to_vec(), b"3", 1), None);
    }

    #[test]
    fn a_lease_version_splits_into_the_key_version_and_the_cache_epoch() {
        assert_eq!(
            split_version(&Version(b"12|3".to_vec())),
            (&b"12"[..], &b"3"[..])
        );
        assert_eq!(
            split_version(&Version(b"7".to_vec())),
            (&b"7"[..], &b"0"[..])
        );
    }
}
