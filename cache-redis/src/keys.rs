//! Where the fleet's messages live in Redis.
//!
//! Every Redis key of a fleet starts with its namespace. Invalidations are writes under
//! `<namespace>:i:`, the one prefix every process tracks (`CLIENT TRACKING ON BCAST PREFIX
//! <namespace>:i: NOLOOP`), so Redis itself tells every other process which key was written:
//!
//! | message | Redis key | write |
//! |---|---|---|
//! | key `k` of cache `users` invalidated | `<ns>:i:k:users\0<k as postcard>` | `SET <token> PX <version ttl>` |
//! | cache `users` cleared | `<ns>:i:c:users` | `INCR` |
//!
//! A key invalidation marker expires after the version TTL, so invalidated keys do not pile
//! up in Redis; its expiry reaches the other processes as one more (harmless) invalidation of
//! that key. A clear marker never expires: there is one per cache, and its expiry would clear
//! the cache everywhere.

/// The key layout of one namespace.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    /// `<namespace>:i:`
    tracked: Vec<u8>,
}

/// A tracked key, read back from an invalidation message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Marker<'a> {
    Invalidate { channel: &'a str, key: &'a [u8] },
    Clear { channel: &'a str },
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Keys {
            tracked: format!("{namespace}:i:").into_bytes(),
        }
    }

    /// The prefix every process tracks.
    pub(crate) fn tracked_prefix(&self) -> &[u8] {
        &self.tracked
    }

    pub(crate) fn invalidation(&self, channel: &str, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.tracked.len() + 3 + channel.len() + key.len());
        out.extend_from_slice(&self.tracked);
        out.extend_from_slice(b"k:");
        out.extend_from_slice(channel.as_bytes());
        out.push(0);
        out.extend_from_slice(key);
        out
    }

    pub(crate) fn clear(&self, channel: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.tracked.len() + 2 + channel.len());
        out.extend_from_slice(&self.tracked);
        out.extend_from_slice(b"c:");
        out.extend_from_slice(channel.as_bytes());
        out
    }

    /// What a tracked key says; `None` for a key the fleet did not write.
    pub(crate) fn parse<'a>(&self, key: &'a [u8]) -> Option<Marker<'a>> {
        let rest = key.strip_prefix(self.tracked.as_slice())?;
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
    fn markers_read_back_as_written_and_foreign_keys_are_ignored() {
        let keys = Keys::new("shop");
        let written = keys.invalidation("users", b"\x07\x00:x");
        assert!(written.starts_with(b"shop:i:k:users\0"));
        assert_eq!(
            keys.parse(&written),
            Some(Marker::Invalidate {
                channel: "users",
                key: b"\x07\x00:x"
            })
        );
        assert_eq!(
            keys.parse(&keys.clear("a:b")),
            Some(Marker::Clear { channel: "a:b" })
        );
        assert_eq!(
            keys.parse(&keys.invalidation("users", b"")),
            Some(Marker::Invalidate {
                channel: "users",
                key: b""
            })
        );
        for foreign in [&b"shop:v:users"[..], b"shop:i:x:users", b"shop:i:k:no-nul", b"other"] {
            assert_eq!(keys.parse(foreign), None, "{foreign:?}");
        }
    }
}
