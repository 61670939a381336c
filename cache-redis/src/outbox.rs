//! [`Outbox`]: the invalidations this process has issued and Redis has not acknowledged yet.
//!
//! Each message gets a sequence number. The writer sends the oldest messages in one pipeline
//! and, once Redis has answered, drops them; a failed send puts them back in front. So
//! "everything up to `acknowledged()` reached Redis" holds at every moment, which is what
//! [`Fleet::flush`](crate::Fleet::flush) and an agent invalidator wait for.
//!
//! The queue is bounded. When it is full (Redis has been away for long), the cache with the
//! most queued messages has them replaced by one clear of that cache, at the place of its
//! oldest: a clear covers every key invalidation it replaces, so nothing is lost but
//! precision.

use std::collections::VecDeque;
use std::sync::Arc;

/// One message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub(crate) seq: u64,
    pub(crate) channel: Arc<str>,
    pub(crate) kind: Kind,
    /// Which versions in Redis the message moves besides telling the processes.
    pub(crate) versions: Versions,
}

/// The versions a cache's messages move in Redis, for loads elsewhere to see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Versions {
    /// None: the cache's values live in each process only.
    None,
    /// The key's version (and its value goes): a shared cache.
    Key,
    /// The resource path's versions and its ancestors': agent-cache's resource channel.
    Resource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Invalidate(Box<[u8]>),
    Clear,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<Outgoing>,
    /// Taken by the writer and not answered yet; they stay pending.
    in_flight: Vec<Outgoing>,
    /// The number of the next message; messages are numbered from 1.
    next_seq: u64,
    max_queued: usize,
    /// Times the queue overflowed into a clear.
    pub(crate) overflows: u64,
}

impl Outbox {
    pub(crate) fn new(max_queued: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            in_flight: Vec::new(),
            next_seq: 1,
            max_queued: max_queued.max(1),
            overflows: 0,
        }
    }

    /// Queues a message; returns its sequence number.
    pub(crate) fn push(&mut self, channel: &Arc<str>, kind: Kind, versions: Versions) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.queue.len() >= self.max_queued && self.overflow(channel) {
            // The message's cache was just turned into a clear, which covers it.
            return seq;
        }
        self.queue.push_back(Outgoing {
            seq,
            channel: Arc::clone(channel),
            kind,
            versions,
        });
        seq
    }

    /// Replaces the queued messages of one cache with a clear of it: `incoming`'s cache if
    /// it has any queued (then the incoming message is covered too, and `true` is returned),
    /// else the cache with the most queued.
    fn overflow(&mut self, incoming: &Arc<str>) -> bool {
        self.overflows += 1;
        let covers_incoming = self.queue.iter().any(|m| m.channel == *incoming);
        let victim = if covers_incoming {
            Arc::clone(incoming)
        } else {
            let mut counts: Vec<(&Arc<str>, usize)> = Vec::new();
            for message in &self.queue {
                match counts.iter_mut().find(|(c, _)| **c == message.channel) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((&message.channel, 1)),
                }
            }
            match counts.into_iter().max_by_key(|(_, n)| *n) {
                Some((channel, _)) => Arc::clone(channel),
                None => return false,
            }
        };
        let first = self.queue.iter().position(|m| m.channel == victim);
        let versions = self
            .queue
            .iter()
            .find(|m| m.channel == victim)
            .map_or(Versions::None, |m| m.versions);
        let seq = self
            .queue
            .iter()
            .filter(|m| m.channel == victim)
            .map(|m| m.seq)
            .min();
        self.queue.retain(|m| m.channel != victim);
        if let (Some(first), Some(seq)) = (first, seq) {
            self.queue.insert(
                first,
                Outgoing {
                    seq,
                    channel: victim,
                    kind: Kind::Clear,
                    versions,
                },
            );
        }
        covers_incoming
    }

    /// Takes up to `max` of the oldest messages for the writer to send; they stay pending
    /// until [`sent`](Self::sent) or [`failed`](Self::failed).
    pub(crate) fn start_batch(&mut self, max: usize) -> &[Outgoing] {
        debug_assert!(self.in_flight.is_empty(), "one batch at a time");
        let n = self.queue.len().min(max);
        self.in_flight.extend(self.queue.drain(..n));
        &self.in_flight
    }

    /// Redis acknowledged the batch.
    pub(crate) fn sent(&mut self) {
        self.in_flight.clear();
    }

    /// The batch was not acknowledged: it goes back in front, in order.
    pub(crate) fn failed(&mut self) {
        for message in self.in_flight.drain(..).rev() {
            self.queue.push_front(message);
        }
    }

    /// Every message numbered up to this one reached Redis.
    pub(crate) fn acknowledged(&self) -> u64 {
        let pending = self
            .in_flight
            .iter()
            .chain(&self.queue)
            .map(|m| m.seq)
            .min();
        pending.map_or(self.next_seq - 1, |seq| seq - 1)
    }

    /// The number of the last message issued.
    pub(crate) fn issued(&self) -> u64 {
        self.next_seq - 1
    }

    /// Messages waiting, the batch in flight included.
    pub(crate) fn len(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: u8) -> Kind {
        Kind::Invalidate(Box::new([k]))
    }

    #[test]
    fn acknowledged_moves_only_past_messages_that_reached_redis() {
        let users: Arc<str> = "users".into();
        let mut outbox = Outbox::new(100);
        assert_eq!(outbox.acknowledged(), 0);
        let seqs: Vec<u64> = (0..5)
            .map(|k| outbox.push(&users, key(k), Versions::None))
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(outbox.acknowledged(), 0);
        assert_eq!(outbox.start_batch(2).len(), 2);
        outbox.failed();
        assert_eq!(outbox.acknowledged(), 0, "a failed batch is still pending");
        outbox.start_batch(3);
        outbox.sent();
        assert_eq!(outbox.acknowledged(), 3);
        outbox.start_batch(10);
        assert_eq!(outbox.acknowledged(), 3, "in flight is pending");
        outbox.sent();
        assert_eq!(
            (outbox.acknowledged(), outbox.issued(), outbox.len()),
            (5, 5, 0)
        );
    }

    #[test]
    fn a_full_queue_turns_one_caches_messages_into_a_clear_in_the_place_of_its_oldest() {
        let (users, orders): (Arc<str>, Arc<str>) = ("users".into(), "orders".into());
        let mut outbox = Outbox::new(4);
        outbox.push(&orders, key(1), Versions::None); // 1
        outbox.push(&users, key(2), Versions::None); // 2
        outbox.push(&users, key(3), Versions::None); // 3
        outbox.push(&orders, key(4), Versions::None); // 4
        // Full: a fifth users message collapses users into a clear, which covers it too.
        assert_eq!(outbox.push(&users, key(5), Versions::None), 5);
        assert_eq!(outbox.overflows, 1);
        let queued: Vec<(u64, &str, bool)> = outbox
            .start_batch(10)
            .iter()
            .map(|m| (m.seq, &*m.channel, m.kind == Kind::Clear))
            .collect();
        assert_eq!(
            queued,
            [
                (1, "orders", false),
                (2, "users", true),
                (4, "orders", false)
            ]
        );
        // Until the clear is acknowledged, nothing from 2 on is.
        outbox.failed();
        assert_eq!(outbox.acknowledged(), 0);
        outbox.start_batch(2);
        outbox.sent();
        assert_eq!(outbox.acknowledged(), 3);
        outbox.start_batch(1);
        outbox.sent();
        assert_eq!(
            outbox.acknowledged(),
            5,
            "the covered fifth message is delivered"
        );
    }

    #[test]
    fn an_overflow_from_a_cache_with_nothing_queued_collapses_the_busiest_cache() {
        let (users, orders): (Arc<str>, Arc<str>) = ("users".into(), "orders".into());
        let mut outbox = Outbox::new(3);
        for k in 0..3 {
            outbox.push(&users, key(k), Versions::None);
        }
        outbox.push(&orders, key(9), Versions::None);
        let queued: Vec<(&str, bool)> = outbox
            .start_batch(10)
            .iter()
            .map(|m| (&*m.channel, m.kind == Kind::Clear))
            .collect();
        assert_eq!(queued, [("users", true), ("orders", false)]);
    }
}
