//! Warm restart: [`AsyncCache::snapshot`] writes the live entries with the time each has left,
//! and [`AsyncCacheBuilder::restore`] (or [`AsyncCache::restore_from`]) reads them back.
//!
//! # Format
//!
//! A snapshot is a magic line (`async-cache snapshot`), then a header and each entry as
//! [postcard](https://docs.rs/postcard) records (postcard's stable wire format, already the
//! encoding of fleet keys), each framed by its length (4 bytes, little-endian). The header
//! names the format version, the schema version given with
//! [`snapshot_version`](AsyncCacheBuilder::snapshot_version), the key and value type names
//! (`std::any::type_name`), when it was written (Unix time) and how many entries follow. An
//! entry is its key, its value and the nanoseconds it had left, or none for an entry that
//! never expires.
//!
//! Restoring checks the header before it decodes an entry: a file that is not a snapshot, a
//! format this version cannot read, another schema version or other type names are errors
//! that say which, and the cache is left as it was. Then every entry is decoded before the
//! first is stored, so a truncated or corrupt snapshot restores nothing. Time passes while a
//! service is down: an entry's time left shrinks by the wall-clock time since the snapshot
//! was written, and an entry whose time ran out is dropped.

use std::any::type_name;
use std::error::Error;
use std::fmt;
use std::hash::Hash;
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::{AsyncCache, AsyncCacheBuilder};

const MAGIC: &[u8] = b"async-cache snapshot\n";

/// The layout of the records after the magic line; bumped when it changes.
const FORMAT: u32 = 1;

/// A record larger than this is corrupt rather than an entry (postcard's length prefixes
/// could otherwise ask for any allocation).
const MAX_RECORD: u32 = 1 << 30;

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    schema: u32,
    key_type: String,
    value_type: String,
    written_at_unix_nanos: u64,
    entries: u64,
}

#[derive(Serialize)]
struct EntryRef<'a, K, V> {
    key: &'a K,
    value: &'a V,
    /// Nanoseconds left when the snapshot was written; `None` never expires.
    time_left_nanos: Option<u64>,
}

#[derive(Deserialize)]
struct Entry<K, V> {
    key: K,
    value: V,
    time_left_nanos: Option<u64>,
}

/// Why a snapshot could not be written or restored. Restoring fails before it stores any
/// entry, so the cache is left as it was.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing failed.
    Io(io::Error),
    /// The input does not start as a snapshot of this crate does.
    NotASnapshot,
    /// A snapshot in a format this version of the crate cannot read.
    Format {
        /// The snapshot's format.
        found: u32,
        /// The format this version reads.
        supported: u32,
    },
    /// A snapshot of another schema version (see
    /// [`snapshot_version`](AsyncCacheBuilder::snapshot_version)).
    Version {
        /// The cache's schema version.
        expected: u32,
        /// The snapshot's.
        found: u32,
    },
    /// A snapshot of a cache with other key or value types.
    Type {
        /// The cache's key and value types.
        expected: (String, String),
        /// The snapshot's.
        found: (String, String),
    },
    /// An entry could not be encoded, or the snapshot could not be decoded (truncated, or
    /// written by a type of the same name but another shape: bump the schema version when a
    /// type changes).
    Codec(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Io(error) => write!(f, "cache snapshot: {error}"),
            SnapshotError::NotASnapshot => f.write_str("not a cache snapshot"),
            SnapshotError::Format { found, supported } => write!(
                f,
                "cache snapshot in format {found}, but this version reads format {supported}"
            ),
            SnapshotError::Version { expected, found } => write!(
                f,
                "cache snapshot of schema version {found}, but the cache is version {expected}"
            ),
            SnapshotError::Type { expected, found } => write!(
                f,
                "cache snapshot of a cache of {} -> {}, but this cache holds {} -> {}",
                found.0, found.1, expected.0, expected.1
            ),
            SnapshotError::Codec(message) => write!(f, "cache snapshot: {message}"),
        }
    }
}

impl Error for SnapshotError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SnapshotError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for SnapshotError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::UnexpectedEof => {
                SnapshotError::Codec("truncated: it ends inside a record".into())
            }
            _ => SnapshotError::Io(error),
        }
    }
}

/// What a restore did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Entries stored, with the time they had left less the time since the snapshot.
    pub restored: usize,
    /// Entries whose time to live ran out since the snapshot was written: dropped.
    pub expired: usize,
    /// Entries whose key already had a live value here: the value here was kept.
    pub skipped: usize,
}

impl<K, V> AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static + Serialize,
    V: Clone + Send + Sync + 'static + Serialize,
{
    /// Writes every live entry, with the time it has left, to `writer`, for
    /// [`AsyncCacheBuilder::restore`] to read back after a restart. Returns how many entries
    /// it wrote.
    ///
    /// The entries are cloned out of the cache first (no lock is held while writing, and
    /// calls go on meanwhile); the snapshot holds the cache as of that moment. See
    /// [`snapshot`](crate::snapshot) for the format.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::AsyncCache;
    ///
    /// # fn main() -> Result<(), cache_core::snapshot::SnapshotError> {
    /// let users: AsyncCache<u64, String> = AsyncCache::builder().maxsize(1_000).build();
    /// users.insert(1, "ada".into());
    /// users.insert_with_ttl(2, "alan".into(), Some(Duration::from_secs(60)));
    ///
    /// let mut file = Vec::new(); // a `std::fs::File` across a restart
    /// assert_eq!(users.snapshot(&mut file)?, 2);
    ///
    /// let restarted: AsyncCache<u64, String> =
    ///     AsyncCache::builder().maxsize(1_000).restore(file.as_slice())?;
    /// assert_eq!(restarted.get(&1).as_deref(), Some("ada"));
    /// assert_eq!(restarted.get(&2).as_deref(), Some("alan")); // with its ~60 s left
    ///
    /// // Another type is refused, with a message that says so.
    /// let wrong = AsyncCache::<String, String>::builder().restore(file.as_slice());
    /// assert!(wrong.unwrap_err().to_string().contains("but this cache holds"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Io`] when writing fails, [`SnapshotError::Codec`] when a key or value
    /// cannot be serialized.
    pub fn snapshot(&self, writer: impl Write) -> Result<usize, SnapshotError> {
        let now = clock::now();
        let entries = self.inner.store.entries(self.inner.generation());
        let mut writer = io::BufWriter::new(writer);
        writer.write_all(MAGIC)?;
        let header = Header {
            format: FORMAT,
            schema: self.inner.config.snapshot_version,
            key_type: type_name::<K>().to_owned(),
            value_type: type_name::<V>().to_owned(),
            written_at_unix_nanos: unix_nanos(SystemTime::now()),
            entries: entries.len() as u64,
        };
        write_record(&mut writer, &header)?;
        for (key, stored) in &entries {
            let left = stored.time_to_expiry(now);
            write_record(
                &mut writer,
                &EntryRef {
                    key,
                    value: &stored.value,
                    time_left_nanos: left.map(|left| saturating_nanos(left).max(1)),
                },
            )?;
        }
        writer.flush()?;
        Ok(entries.len())
    }
}

impl<K, V> AsyncCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static + DeserializeOwned,
    V: Clone + Send + Sync + 'static + DeserializeOwned,
{
    /// Reads a snapshot written by [`snapshot`](Self::snapshot) into this cache. An entry
    /// keeps the time it had left, less the time since the snapshot was written; one whose
    /// time ran out is dropped, and a key that has a live value here keeps it. Entries are
    /// stored as `insert` stores them (fencing a load of their key in flight, within the
    /// bound, heard by the eviction listener), but not announced to a fleet: the other
    /// processes keep their values.
    ///
    /// # Errors
    ///
    /// See [`SnapshotError`]: a snapshot of another format, schema version or type, or one
    /// that cannot be read or decoded, restores nothing.
    pub fn restore_from(&self, reader: impl Read) -> Result<RestoreReport, SnapshotError> {
        let mut reader = io::BufReader::new(reader);
        let mut magic = [0; MAGIC.len()];
        if reader.read_exact(&mut magic).is_err() || magic != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        let header: Header = read_record(&mut reader)?;
        self.check(&header)?;
        let elapsed = unix_nanos(SystemTime::now()).saturating_sub(header.written_at_unix_nanos);
        let mut entries = Vec::new();
        for _ in 0..header.entries {
            let entry: Entry<K, V> = read_record(&mut reader)?;
            entries.push(entry);
        }
        let mut report = RestoreReport::default();
        for entry in entries {
            let ttl = match entry.time_left_nanos {
                None => None,
                Some(left) if left > elapsed => Some(Duration::from_nanos(left - elapsed)),
                Some(_) => {
                    report.expired += 1;
                    continue;
                }
            };
            if self.inner.store.contains(&entry.key) {
                report.skipped += 1;
                continue;
            }
            self.inner.fence(&entry.key);
            let generation = self.inner.generation();
            let stored = self.inner.stored(entry.value, generation, ttl);
            drop(self.inner.store.insert(entry.key, stored));
            report.restored += 1;
        }
        Ok(report)
    }

    fn check(&self, header: &Header) -> Result<(), SnapshotError> {
        if header.format != FORMAT {
            return Err(SnapshotError::Format {
                found: header.format,
                supported: FORMAT,
            });
        }
        let expected = self.inner.config.snapshot_version;
        if header.schema != expected {
            return Err(SnapshotError::Version {
                expected,
                found: header.schema,
            });
        }
        let types = (type_name::<K>(), type_name::<V>());
        if (header.key_type.as_str(), header.value_type.as_str()) != types {
            return Err(SnapshotError::Type {
                expected: (types.0.to_owned(), types.1.to_owned()),
                found: (header.key_type.clone(), header.value_type.clone()),
            });
        }
        Ok(())
    }
}

impl<K, V> AsyncCacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The schema version of the cache's snapshots: written by
    /// [`snapshot`](AsyncCache::snapshot), and required of a snapshot by
    /// [`restore`](Self::restore). Bump it when the key or value type changes shape without
    /// changing its name, so that an old snapshot is refused instead of misread. Default: 0.
    pub fn snapshot_version(mut self, version: u32) -> Self {
        self.config.snapshot_version = version;
        self
    }

    /// Builds the cache and fills it from a snapshot written by
    /// [`AsyncCache::snapshot`] (see [`AsyncCache::restore_from`] for what is restored).
    ///
    /// # Errors
    ///
    /// See [`SnapshotError`]. No cache is built when the snapshot cannot be restored; a
    /// service usually logs the error and builds an empty one.
    pub fn restore(self, reader: impl Read) -> Result<AsyncCache<K, V>, SnapshotError>
    where
        K: DeserializeOwned,
        V: DeserializeOwned,
    {
        let cache = self.build();
        cache.restore_from(reader)?;
        Ok(cache)
    }
}

fn write_record<T: Serialize>(writer: &mut impl Write, record: &T) -> Result<(), SnapshotError> {
    let bytes = postcard::to_allocvec(record)
        .map_err(|error| SnapshotError::Codec(format!("cannot encode an entry: {error}")))?;
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len <= MAX_RECORD)
        .ok_or_else(|| SnapshotError::Codec("an entry is larger than 1 GiB".into()))?;
    writer.write_all(&len.to_le_bytes())?;
    writer.write_all(&bytes)?;
    Ok(())
}

fn read_record<T: DeserializeOwned>(reader: &mut impl Read) -> Result<T, SnapshotError> {
    let mut len = [0; 4];
    reader.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_RECORD {
        return Err(SnapshotError::Codec(
            "corrupt: a record claims over 1 GiB".into(),
        ));
    }
    let mut bytes = vec![0; len as usize];
    reader.read_exact(&mut bytes)?;
    postcard::from_bytes(&bytes)
        .map_err(|error| SnapshotError::Codec(format!("corrupt or of another shape: {error}")))
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, saturating_nanos)
}

fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
