//! The clock entries expire by: the OS clock when it is read lightly, a coarse clock one tick
//! behind it when hits on entries with a TTL come hard.
//!
//! Times are nanoseconds since a process-wide origin, so an expiry is one word and checking it
//! is one comparison. An entry's expiry is fixed with the OS clock when it is stored ([`now`],
//! `std::time::Instant` underneath). A hit compares it with [`recent`], which is never ahead of
//! the OS clock, so an entry never expires early; and which lags it by at most one [`TICK`] (plus
//! however late the OS wakes the clock thread, below), so an entry is never served more than a
//! tick after it expired.
//!
//! Why a coarse clock: reading the OS clock costs a hit on an entry with a TTL about twice what
//! the hit itself costs (`BENCHMARKS.md` has the runner's rows: quick_cache's own hit, then the
//! same with an expiry check by `Instant::now()` and by quanta). quanta, which reads the CPU's
//! time-stamp counter, costs nearly as much on the virtual machines measured there, and moka,
//! its best-known user, stopped trusting it for expiry (moka-rs/moka#481: it can drift and, on
//! some hardware, go backwards). Reading a word that a thread of ours refreshes every tick adds
//! under a nanosecond.
//!
//! What that thread costs: a wake-up per tick, 20 to 30 µs of CPU on the (virtual) machine of
//! `BENCHMARKS.md`, about 2.7% of a core at one tick a millisecond; far less on bare metal. So
//! it runs only while it pays: it is started by a thread that reads the clock for expiry
//! [`START_READS`] times within one tick (a quarter of a million hits a second), and every
//! [`PROBE_TICKS`] ticks it stops publishing for one tick to see whether such a thread is still
//! there; if none is, it parks (no CPU) until one is. While it is parked, hits read the OS clock
//! and expiry is exact. It is an ordinary OS thread (`cache-core clock`), spawned on first need
//! and never stopped, so a cache needs no runtime and one clock serves every cache and every
//! runtime of the process; if it cannot be spawned, hits read the OS clock.
//!
//! A machine too busy to wake that thread on time would stretch the tick. So a thread that
//! reads the coarse clock also reads the OS clock itself once every [`REFRESH_READS`] reads and
//! publishes it: while anyone reads densely (the only time the thread runs), the coarse clock
//! stays within a tick of the OS clock however late the thread is.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// The expiry of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// How far the coarse clock may lag the OS clock while its thread keeps time.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Reads of a parked clock within one tick, on one thread, that start the clock thread.
pub(crate) const START_READS: u32 = 256;

/// Ticks between two probes of the demand.
pub(crate) const PROBE_TICKS: u32 = 256;

/// `recent` of a clock whose thread is not publishing: read the OS clock instead.
const PARKED: u64 = 0;

static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The process's clock, shared by every cache.
static CLOCK: CoarseClock = CoarseClock::new(TICK);

/// The OS clock: nanoseconds since the process's origin, at least 1 (0 is [`PARKED`]).
pub(crate) fn now() -> u64 {
    nanos_since_origin(Instant::now())
}

/// `instant` in nanoseconds since the process's origin (0 for any instant before it).
pub(crate) fn nanos_since_origin(instant: Instant) -> u64 {
    let nanos = instant.saturating_duration_since(*ORIGIN).as_nanos();
    u64::try_from(nanos).unwrap_or(NEVER - 1).max(1)
}

/// The expiry of an entry stored now to live `ttl` (`None`, or a TTL too large for the
/// clock: [`NEVER`]).
///
/// The first entry with a TTL also spawns the clock's thread, parked: so that the hit that
/// later starts it allocates nothing (a hit never allocates), and a process that stores no
/// entry with a TTL never has one.
pub(crate) fn expiry(ttl: Option<Duration>) -> u64 {
    ttl.map_or(NEVER, |ttl| {
        CLOCK.prepare();
        let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(NEVER);
        now().saturating_add(ttl)
    })
}

/// The coarse clock: never ahead of [`now`], at most a tick behind it.
#[inline]
pub(crate) fn recent() -> u64 {
    CLOCK.recent()
}

/// A coarse clock and the thread that keeps it. One serves the process; tests make their own.
pub(crate) struct CoarseClock {
    /// The time its thread last published, or [`PARKED`].
    recent: AtomicU64,
    tick: Duration,
    /// The thread, once spawned, with the fork generation it was spawned in.
    keeper: Mutex<Option<(u64, Thread)>>,
    /// One more than the fork generation the thread was spawned in; 0 before it is.
    spawned_in: AtomicU64,
}

/// Per thread: the clock being read while parked, the tick window those reads fall in, and
/// how many reads it holds.
struct Demand {
    clock: Cell<usize>,
    window: Cell<u64>,
    reads: Cell<u32>,
}

/// Reads of a ticking clock between two reads of the OS clock by one thread.
pub(crate) const REFRESH_READS: u32 = START_READS;

thread_local! {
    /// Reads of a ticking clock by this thread, for [`REFRESH_READS`].
    static READS: Cell<u32> = const { Cell::new(0) };
    static DEMAND: Demand = const {
        Demand { clock: Cell::new(0), window: Cell::new(0), reads: Cell::new(0) }
    };
}

/// Bumped in a forked child, whose clock thread did not survive the fork.
static FORKS: AtomicU64 = AtomicU64::new(0);

impl CoarseClock {
    pub(crate) const fn new(tick: Duration) -> Self {
        CoarseClock {
            recent: AtomicU64::new(PARKED),
            tick,
            keeper: Mutex::new(None),
            spawned_in: AtomicU64::new(0),
        }
    }

    /// One load while the thread keeps time (and, one read in [`REFRESH_READS`] on each
    /// thread, the OS clock, published); the OS clock otherwise.
    #[inline]
    pub(crate) fn recent(&'static self) -> u64 {
        match self.recent.load(Ordering::Relaxed) {
            PARKED => self.read_parked(),
            recent => {
                // Const-initialised and without a destructor: `with` cannot fail.
                let due = READS.with(|reads| {
                    let n = reads.get().wrapping_add(1);
                    reads.set(n);
                    n % REFRESH_READS == 0
                });
                if due { self.refresh() } else { recent }
            }
        }
    }

    /// Reads the OS clock and publishes it: a thread that reads densely keeps the coarse
    /// clock within [`REFRESH_READS`] of its own reads of the OS clock even when the clock
    /// thread is late (a machine too busy to run it on time).
    #[cold]
    fn refresh(&self) -> u64 {
        let now = now();
        // Never over `PARKED`: the thread may have parked since this read began, and a time
        // published then would stay.
        let _ = self
            .recent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |recent| {
                (recent != PARKED && recent < now).then_some(now)
            });
        now
    }

    /// Whether the thread is publishing the time.
    #[cfg(test)]
    pub(crate) fn is_ticking(&self) -> bool {
        self.recent.load(Ordering::Relaxed) != PARKED
    }

    /// Reads the OS clock, and starts the thread if this thread reads it densely enough.
    #[inline(never)]
    fn read_parked(&'static self) -> u64 {
        let now = now();
        let tick = u64::try_from(self.tick.as_nanos()).unwrap_or(NEVER);
        let me = std::ptr::from_ref(self) as usize;
        let dense = DEMAND
            .try_with(|demand| {
                if demand.clock.get() != me || now.saturating_sub(demand.window.get()) >= tick {
                    demand.clock.set(me);
                    demand.window.set(now);
                    demand.reads.set(0);
                }
                demand.reads.set(demand.reads.get() + 1);
                demand.reads.get() == START_READS
            })
            .unwrap_or(false);
        if dense {
            self.start(now);
        }
        now
    }

    /// Spawns the thread, parked, unless it runs already (in this process: a forked child
    /// needs one of its own).
    pub(crate) fn prepare(&'static self) {
        if self.spawned_in.load(Ordering::Relaxed) != FORKS.load(Ordering::Relaxed) + 1 {
            drop(self.keeper());
        }
    }

    /// The thread, spawned if need be; `None` if it cannot be (or, in a child forked while
    /// another thread held the lock, which stays held there).
    #[cold]
    fn keeper(&'static self) -> Option<Thread> {
        let mut keeper = self.keeper.try_lock().ok()?;
        let forks = FORKS.load(Ordering::Relaxed);
        match &*keeper {
            Some((spawned_in, thread)) if *spawned_in == forks => Some(thread.clone()),
            _ => {
                let thread = self.spawn()?;
                *keeper = Some((forks, thread.clone()));
                self.spawned_in.store(forks + 1, Ordering::Relaxed);
                Some(thread)
            }
        }
    }

    /// Publishes `now` at once (so other threads read the coarse clock from here on) and has
    /// the thread keep time from then. Allocates nothing once [`prepare`](Self::prepare) ran.
    #[cold]
    fn start(&'static self, now: u64) {
        if self
            .recent
            .compare_exchange(PARKED, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // started by another thread
        }
        match self.keeper() {
            Some(thread) => thread.unpark(),
            // No thread to keep time: hits go on reading the OS clock.
            None => self.recent.store(PARKED, Ordering::Relaxed),
        }
    }

    fn spawn(&'static self) -> Option<Thread> {
        register_fork_handler();
        thread::Builder::new()
            .name("cache-core clock".to_owned())
            .spawn(move || self.keep_time())
            .ok()
            .map(|handle| handle.thread().clone())
    }

    /// The thread's loop: parked until a dense reader publishes a time; then publish the time
    /// every tick and, every [`PROBE_TICKS`] ticks, stop for one tick and park again unless a
    /// thread that reads densely started publishing meanwhile.
    fn keep_time(&self) {
        let mut ticks = 0_u32;
        loop {
            // `start` publishes before it unparks, so no wake-up is lost; a spurious one
            // finds the clock still parked and parks again.
            while self.recent.load(Ordering::Relaxed) == PARKED {
                thread::park();
            }
            thread::sleep(self.tick);
            ticks = ticks.wrapping_add(1);
            if ticks.is_multiple_of(PROBE_TICKS) {
                self.recent.store(PARKED, Ordering::Relaxed);
                thread::sleep(self.tick);
                if self.recent.load(Ordering::Relaxed) == PARKED {
                    continue;
                }
            }
            // Never over `PARKED` (a reader may have just found the thread gone quiet); and
            // never back: a time a reader published may be newer.
            let now = now();
            let _ = self
                .recent
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |recent| {
                    (recent != PARKED && recent < now).then_some(now)
                });
        }
    }
}

/// After `fork`, the child has no clock thread: its clock reads the OS clock until a dense
/// reader spawns a new one.
fn register_fork_handler() {
    #[cfg(unix)]
    {
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        extern "C" fn in_child() {
            // Atomic stores only: all a handler in a forked child may do.
            CLOCK.recent.store(PARKED, Ordering::Relaxed);
            FORKS.fetch_add(1, Ordering::Relaxed);
        }
        REGISTERED.call_once(|| {
            // SAFETY: `in_child` is async-signal-safe (two atomic operations) and lives for the
            // whole process. A failure to register (ENOMEM) leaves forks unhandled.
            unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(tick: Duration) -> &'static CoarseClock {
        Box::leak(Box::new(CoarseClock::new(tick)))
    }

    fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_coarse_clock_is_never_ahead_of_the_os_clock() {
        let clock = clock(TICK);
        let mut ticked = false;
        for _ in 0..2_000_000 {
            let recent = clock.recent();
            assert!(recent <= now(), "the coarse clock ran ahead");
            ticked |= clock.is_ticking();
        }
        assert!(ticked, "two million reads started the thread");
    }

    #[test]
    fn light_reads_read_the_os_clock_and_start_nothing() {
        let clock = clock(TICK);
        for _ in 0..100 {
            let before = now();
            let read = clock.recent();
            assert!(before <= read && read <= now(), "read the OS clock");
            thread::sleep(Duration::from_millis(2));
        }
        assert!(!clock.is_ticking());
    }

    #[test]
    fn dense_reads_start_the_thread_and_it_parks_once_they_stop() {
        // A long tick, so the published time visibly lags; probes come every 256 ticks.
        let tick = Duration::from_millis(2);
        let clock = clock(tick);
        for _ in 0..START_READS {
            clock.recent();
        }
        assert!(
            clock.is_ticking(),
            "{START_READS} reads within a tick start it"
        );
        // It keeps time: the published time moves on.
        let first = clock.recent();
        until("it publishes a later time", || clock.recent() > first);
        // Nobody reads: at the next probe it parks, and reads go back to the OS clock.
        until("it parks", || !clock.is_ticking());
        let before = now();
        assert!(clock.recent() >= before);
        // And dense reads start it again.
        until("dense reads restart it", || {
            (0..START_READS).for_each(|_| {
                clock.recent();
            });
            clock.is_ticking()
        });
    }

    #[test]
    fn a_dense_reader_keeps_the_clock_within_its_own_reads_when_the_thread_is_late() {
        // A thread that publishes once a minute stands for one the OS does not run on time.
        let clock = clock(Duration::from_secs(60));
        let start = Instant::now();
        let mut worst = 0;
        while start.elapsed() < Duration::from_millis(50) {
            let recent = clock.recent();
            worst = worst.max(now() - recent);
        }
        assert!(clock.is_ticking());
        // Within the time of REFRESH_READS reads (microseconds), not the thread's minute; the
        // bound is generous for a loaded machine.
        assert!(worst < 20_000_000, "lagged {worst} ns");
    }

    #[test]
    fn expiries_saturate_and_never_means_never() {
        assert_eq!(expiry(None), NEVER);
        assert_eq!(expiry(Some(Duration::MAX)), NEVER);
        let before = now();
        let in_a_second = expiry(Some(Duration::from_secs(1)));
        assert!(in_a_second >= before + 1_000_000_000 && in_a_second <= now() + 1_000_000_000);
        if let Some(earlier) = ORIGIN.checked_sub(Duration::from_secs(1)) {
            assert_eq!(
                nanos_since_origin(earlier),
                1,
                "before the origin: its first instant"
            );
        }
    }
}
