//! Where the fleet's messages live in Redis.
//!
//! Every Redis key of a fleet starts with its namespace. Invalidations are writes under
//! `<namespace>:i:`, the one prefix every process tracks (`CLIENT TRACKING ON BCAST PREFIX
//! <namespace>:i: NOLOOP`), so Redis itself tells every other process which key was written:
//!
//! | message | Redis key (written, then deleted, in one `MULTI`) |
//! |---|---|
//! | key `k` of cache `users` invalidated | `<ns>:i:<writer>:k:users\0<k as postcard>` |
//! | cache `users` cleared | `<ns>:i:<writer>:c:users` |
//!
//! `<writer>` is unique to each fleet instance (each process). Two reasons:
//!
//! - In BCAST mode Redis remembers, per key and per event-loop cycle, only the *last* client
//!   that wrote it, and NOLOOP then hides the key from that client. Had two processes written
//!   one shared marker key in the same cycle, the last one would never hear of the other's
//!   invalidation. Markers of different writers are different keys, so this cannot happen.
//! - A marker is set and deleted in one transaction, so nothing is left in Redis (no memory
//!   grows with the keys invalidated) and no later expiry sends a spurious invalidation. The
//!   two writes of one key in one cycle reach the other processes as one message.

/// The key layout of one namespace, for one writer.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    /// `<namespace>:`
    namespace: Vec<u8>,
    /// `<namespace>:i:`
    tracked: Vec<u8>,
    /// `<namespace>:i:<writer>:`
    own: Vec<u8>,
    writer: String,
}

/// The untracked keys of a shared cache's key (`<ns>:<kind>:<cache>\0<key>`), and of the
/// cache: its value, the lease on loading it, its version (moved by every invalidation), the
/// flag that a process waits for it, and the cache's epoch (moved by every clear).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedKeys {
    pub(crate) value: Vec<u8>,
    pub(crate) lease: Vec<u8>,
    pub(crate) version: Vec<u8>,
    pub(crate) waiter: Vec<u8>,
    pub(crate) epoch: Vec<u8>,
}

/// A tracked key, read back from an invalidation message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Marker<'a> {
    Invalidate { channel: &'a str, key: &'a [u8] },
    Clear { channel: &'a str },
}

impl Keys {
    /// `writer` must not contain `:`.
    pub(crate) fn new(namespace: &str, writer: &str) -> Self {
        debug_assert!(!writer.contains(':'));
        Keys {
            namespace: format!("{namespace}:").into_bytes(),
            tracked: format!("{namespace}:i:").into_bytes(),
            own: format!("{namespace}:i:{writer}:").into_bytes(),
            writer: writer.to_owned(),
        }
    }

    /// This fleet instance's name among the fleet's writers.
    pub(crate) fn writer(&self) -> &str {
        &self.writer
    }

    /// The keys of `key` in the shared cache `channel`.
    pub(crate) fn shared(&self, channel: &str, key: &[u8]) -> SharedKeys {
        let of = |kind: &str| {
            let mut out = self.namespace.clone();
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b":");
            out.extend_from_slice(channel.as_bytes());
            out.push(0);
            out.extend_from_slice(key);
            out
        };
        SharedKeys {
            value: of("d"),
            lease: of("l"),
            version: of("v"),
            waiter: of("w"),
            epoch: self.epoch(channel),
        }
    }

    /// The epoch of the shared cache `channel`, moved by every clear.
    pub(crate) fn epoch(&self, channel: &str) -> Vec<u8> {
        let mut out = self.namespace.clone();
        out.extend_from_slice(b"e:");
        out.extend_from_slice(channel.as_bytes());
        out
    }

    /// What an invalidation of the resource `path` increments: its own counter
    /// (`<ns>:r:o:<path>`) and the `below` counter of each ancestor (`<ns>:r:b:<ancestor>`),
    /// the registry of agent-cache in Redis. Counters never expire, so a version never comes
    /// back: one small key per resource path ever invalidated.
    pub(crate) fn resource_bumps(&self, path: &[u8]) -> Vec<Vec<u8>> {
        let mut keys = vec![self.resource(b"o", path)];
        for (end, byte) in path.iter().enumerate() {
            if *byte == b':' {
                keys.push(self.resource(b"b", &path[..end]));
            }
        }
        keys
    }

    /// What the version of an entry tagged `path` sums: the resource epoch, the own counter
    /// of the path and of each ancestor, and the path's `below` counter.
    pub(crate) fn resource_reads(&self, path: &[u8]) -> Vec<Vec<u8>> {
        let mut keys = vec![self.resource(b"o", path), self.resource(b"b", path)];
        for (end, byte) in path.iter().enumerate() {
            if *byte == b':' {
                keys.push(self.resource(b"o", &path[..end]));
            }
        }
        keys
    }

    /// Moved by a clear of every resource (an overflowing queue): every version changes.
    pub(crate) fn resource_epoch(&self) -> Vec<u8> {
        let mut out = self.namespace.clone();
        out.extend_from_slice(b"r:e");
        out
    }

    fn resource(&self, kind: &[u8], path: &[u8]) -> Vec<u8> {
        let mut out = self.namespace.clone();
        out.extend_from_slice(b"r:");
        out.extend_from_slice(kind);
        out.push(b':');
        out.extend_from_slice(path);
        out
    }

    /// The pub/sub channel on which a stored (or released) key wakes the processes waiting.
    pub(crate) fn filled(&self) -> Vec<u8> {
        let mut out = self.namespace.clone();
        out.extend_from_slice(b"filled");
        out
    }

    /// The prefix every process tracks.
    pub(crate) fn tracked_prefix(&self) -> &[u8] {
        &self.tracked
    }

    pub(crate) fn invalidation(&self, channel: &str, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.own.len() + 3 + channel.len() + key.len());
        out.extend_from_slice(&self.own);
        out.extend_from_slice(b"k:");
        out.extend_from_slice(channel.as_bytes());
        out.push(0);
        out.extend_from_slice(key);
        out
    }

    pub(crate) fn clear(&self, channel: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.own.len() + 2 + channel.len());
        out.extend_from_slice(&self.own);
        out.extend_from_slice(b"c:");
        out.extend_from_slice(channel.as_bytes());
        out
    }

    /// What a tracked key says; `None` for a key the fleet did not write, or this writer did.
    pub(crate) fn parse<'a>(&self, key: &'a [u8]) -> Option<Marker<'a>> {
        if key.starts_with(&self.own) {
            return None;
        }
        let rest = key.strip_prefix(self.tracked.as_slice())?;
        let rest = &rest[rest.iter().position(|byte| *byte == b':')? + 1..];
        if let Some(rest) = rest.strip_prefix(b"k:") {
            let split = rest.iter().position(|byte| *byte == 0)?;
            let channel = std::str::from_utf8(&rest[..split]).ok()?;
            return Some(Marker::Invalidate {
                channel,
                key: &rest[split + 1..],
            });
        }
        let channel = std::str::from_utf8(rest.strip_prefix(b"c:")?).ok()?;
        Some(Marker::Clear { channel })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_key_has_its_value_lease_version_and_waiter_outside_the_tracked_prefix() {
        let keys = Keys::new("shop", "w1");
        let shared = keys.shared("users", b"\x07");
        assert_eq!(shared.value, b"shop:d:users\0\x07");
        assert_eq!(shared.lease, b"shop:l:users\0\x07");
        assert_eq!(shared.version, b"shop:v:users\0\x07");
        assert_eq!(shared.waiter, b"shop:w:users\0\x07");
        assert_eq!(shared.epoch, b"shop:e:users");
        for key in [
            &shared.value,
            &shared.lease,
            &shared.version,
            &shared.waiter,
        ] {
            assert!(!key.starts_with(keys.tracked_prefix()));
        }
        assert_eq!(keys.filled(), b"shop:filled");
    }

    #[test]
    fn a_resource_invalidation_moves_what_the_versions_of_its_entries_read() {
        let keys = Keys::new("shop", "w1");
        let text = |list: Vec<Vec<u8>>| -> Vec<String> {
            list.into_iter()
                .map(|k| String::from_utf8(k).unwrap())
                .collect()
        };
        assert_eq!(
            text(keys.resource_bumps(b"cart:u1:items")),
            [
                "shop:r:o:cart:u1:items",
                "shop:r:b:cart",
                "shop:r:b:cart:u1"
            ]
        );
        assert_eq!(
            text(keys.resource_reads(b"cart:u1")),
            ["shop:r:o:cart:u1", "shop:r:b:cart:u1", "shop:r:o:cart"]
        );
        // Invalidating cart:u1 moves a read of cart (below) and of cart:u1:x (own of an
        // ancestor), not cart:u2.
        let bumped = keys.resource_bumps(b"cart:u1");
        let moves = |path: &[u8]| keys.resource_reads(path).iter().any(|k| bumped.contains(k));
        assert!(moves(b"cart") && moves(b"cart:u1") && moves(b"cart:u1:x"));
        assert!(!moves(b"cart:u2") && !moves(b"orders"));
    }

    #[test]
    fn markers_read_back_as_written_and_foreign_keys_are_ignored() {
        let (mine, theirs) = (Keys::new("shop", "w1"), Keys::new("shop", "w2"));
        let written = mine.invalidation("users", b"\x07\x00:x");
        assert!(written.starts_with(b"shop:i:w1:k:users\0"));
        assert_eq!(
            mine.parse(&written),
            None,
            "a writer ignores its own markers"
        );
        let keys = theirs;
        assert_eq!(
            keys.parse(&written),
            Some(Marker::Invalidate {
                channel: "users",
                key: b"\x07\x00:x"
            })
        );
        assert_eq!(
            keys.parse(&mine.clear("a:b")),
            Some(Marker::Clear { channel: "a:b" })
        );
        assert_eq!(
            keys.parse(&mine.invalidation("users", b"")),
            Some(Marker::Invalidate {
                channel: "users",
                key: b""
            })
        );
        for foreign in [
            &b"shop:v:users"[..],
            b"shop:i:w1x:users",
            b"shop:i:w1:k:no-nul",
            b"shop:i:no-writer",
            b"other",
        ] {
            assert_eq!(keys.parse(foreign), None, "{foreign:?}");
        }
    }
}
