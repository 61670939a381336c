//! [`LoopDetector`]: what a runaway agent looks like, in constant time and memory per call.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use serde::Serialize;

/// The kinds of runaway loops a [`LoopDetector`] recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopKind {
    /// The same tool with the same arguments, more than `max_tool_repeats` times.
    Repeat,
    /// More than `max_execution_depth` tool calls.
    Depth,
    /// The last calls repeat a cycle of two or more distinct calls twice (A, B, A, B).
    Cycle,
    /// The same call failing again and again.
    RetryStorm,
}

impl fmt::Display for LoopKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoopKind::Repeat => "repeat",
            LoopKind::Depth => "depth",
            LoopKind::Cycle => "cycle",
            LoopKind::RetryStorm => "retry storm",
        })
    }
}

/// The limits a [`LoopDetector`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopLimits {
    /// At most this many calls of one tool with the same arguments. Default 5.
    pub max_tool_repeats: u32,
    /// At most this many tool calls in all. Default 50.
    pub max_execution_depth: u64,
    /// A call that has failed this many times in a row may not run again. Default 3.
    pub max_retries: u32,
    /// The longest cycle looked for, in calls (2 to 32). Default 10.
    pub max_cycle_len: usize,
}

impl Default for LoopLimits {
    fn default() -> Self {
        LoopLimits {
            max_tool_repeats: 5,
            max_execution_depth: 50,
            max_retries: 3,
            max_cycle_len: 10,
        }
    }
}

/// A loop the detector found, on the call that completed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// What kind of loop.
    pub kind: LoopKind,
    /// The tool whose call completed it.
    pub tool: &'static str,
    /// The calls of the cycle, in order (empty for other kinds).
    pub cycle: Vec<&'static str>,
    /// A readable account, such as `Cycle detected: check_stock -> update_stock`.
    pub message: String,
}

/// Identifies one call: its tool and its arguments. Equal calls have equal signatures.
pub fn signature<A: Hash + ?Sized>(tool: &str, arguments: &A) -> u64 {
    let mut hasher = CallHasher::default();
    tool.hash(&mut hasher);
    arguments.hash(&mut hasher);
    hasher.finish()
}

/// Hashes calls into signatures, several times faster than SipHash for the few words a call
/// usually is. Signatures only steer loop detection, so resistance to crafted collisions (what
/// SipHash buys) is not needed; a good spread of the bits the detector's tables index by is:
/// each word's multiply carries every bit below it into the high half of the product, and the
/// rotation brings that half down to bits 0 to 30, where [`SLOT_BITS`] and [`BUCKET_SHIFT`]
/// pick them (no finaliser: a bijection would not make two calls any less likely to collide).
#[derive(Default)]
pub(crate) struct CallHasher(u64);

impl CallHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31);
    }
}

impl Hasher for CallHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let mut tail = [0; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.mix(u64::from_le_bytes(tail) ^ (bytes.len() as u64) << 56);
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.mix(word);
    }

    #[inline]
    fn write_usize(&mut self, word: usize) {
        self.mix(word as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The longest cycle a detector looks for.
const MAX_CYCLE_LEN: usize = 32;

/// The recent calls a detector keeps: two turns of the longest cycle.
const RING: usize = 2 * MAX_CYCLE_LEN;

/// Buckets of [`LoopDetector::last_pushed`]: a power of two.
const PUSH_BUCKETS: usize = 256;

/// Picks a signature's bucket by bits 16 to 23 (the repeat counts use the lowest ones).
const BUCKET_SHIFT: u32 = 16;

/// How many distinct failing calls the failure counts remember; older ones are forgotten
/// first, which bounds memory for any session length.
const REMEMBERED_CALLS: usize = 4096;

/// Watches one session's tool calls for runaway loops.
///
/// Each [`record`](Self::record) costs O(`max_cycle_len`), a constant, and memory stays
/// bounded however long the session runs: the recent calls sit in a fixed ring of 64, repeat
/// counts in a fixed table of 4,096 slots, and failure counts remember at most 4,096 calls.
/// Most calls cost a few dozen instructions whatever `max_cycle_len` is: a table of 256
/// buckets says when a call like it was last seen, and only a call whose bucket was written
/// within the last `max_cycle_len` calls is looked for among them.
///
/// ```
/// use agent_cache::{LoopDetector, LoopKind, LoopLimits, signature};
///
/// let mut detector = LoopDetector::new(LoopLimits::default());
/// let check = signature("check_stock", &"SKU-42");
/// let update = signature("update_stock", &("SKU-42", -1));
/// assert!(detector.record("check_stock", check).is_none());
/// assert!(detector.record("update_stock", update).is_none());
/// assert!(detector.record("check_stock", check).is_none());
/// let found = detector.record("update_stock", update).unwrap();
/// assert_eq!(found.kind, LoopKind::Cycle);
/// assert_eq!(found.message, "Cycle detected: check_stock -> update_stock");
/// ```
#[derive(Debug)]
pub struct LoopDetector {
    limits: LoopLimits,
    calls: u64,
    /// The most recent calls' signatures, each written twice (at `i` and `i + RING`, where
    /// `i` is its call number modulo [`RING`]), so the last `max_cycle_len` form one
    /// contiguous slice that the period loop reads without wrapping.
    recent: [u64; 2 * RING],
    /// The tools of the most recent calls, by call number modulo [`RING`].
    tools: [&'static str; RING],
    /// `last_pushed[b]`: the number (modulo 2^32) of the latest call whose signature falls in
    /// bucket `b` (its top bits). A call whose bucket nobody wrote within the last
    /// `max_cycle_len` calls is not among them: most calls need no look at the recent ones.
    last_pushed: [u32; PUSH_BUCKETS],
    /// `matching[p]`: how many of the most recent calls equal the call `p` before them.
    matching: [u32; MAX_CYCLE_LEN + 1],
    /// Whether any of `matching` is not zero.
    matching_any: bool,
    repeats: RepeatCounts,
    failures: BoundedCounts,
}

impl LoopDetector {
    /// A detector with these limits.
    pub fn new(limits: LoopLimits) -> Self {
        let max_cycle_len = limits.max_cycle_len.clamp(2, MAX_CYCLE_LEN);
        LoopDetector {
            limits: LoopLimits {
                max_cycle_len,
                ..limits
            },
            calls: 0,
            recent: [0; 2 * RING],
            tools: [""; RING],
            // Written so long ago that no call in the window can be in its bucket.
            last_pushed: [u32::MAX - RING as u32; PUSH_BUCKETS],
            matching: [0; MAX_CYCLE_LEN + 1],
            matching_any: false,
            repeats: RepeatCounts::default(),
            failures: BoundedCounts::new(limits.max_retries == 0),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> LoopLimits {
        self.limits
    }

    /// Tool calls recorded so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Records a call, before it runs, and returns the loop it completes, if any. Cache hits
    /// count: detection works on what the agent asks for, not on what executes.
    #[inline]
    pub fn record(&mut self, tool: &'static str, signature: u64) -> Option<Detection> {
        self.record_call(tool, signature, None)
    }

    /// Records a read, as [`record`](Self::record) does, given the version of what it reads
    /// (any value that moves when its data changes; the agent layer passes its resources'
    /// version). A repeat whose version moved since the previous call of the same read is
    /// progress, not a loop: the agent reads again because something changed, so it does not
    /// count toward `max_tool_repeats`. It still counts toward `max_execution_depth`, and
    /// cycles are found on signatures alone, so identical calls going round stay a loop.
    ///
    /// ```
    /// use agent_cache::{LoopDetector, LoopLimits, signature};
    ///
    /// let mut detector = LoopDetector::new(LoopLimits::default()); // max_tool_repeats = 5
    /// let cart = signature("get_cart", &"u1");
    /// for version in 0..8 {
    ///     // Each read follows a change to the cart: never a repeat.
    ///     assert!(detector.record_read("get_cart", cart, version).is_none());
    /// }
    /// for _ in 0..5 {
    ///     detector.record_read("get_cart", cart, 8); // nothing changes
    /// }
    /// assert!(detector.record_read("get_cart", cart, 8).is_some());
    /// ```
    #[inline]
    pub fn record_read(
        &mut self,
        tool: &'static str,
        signature: u64,
        version: u64,
    ) -> Option<Detection> {
        self.record_call(tool, signature, Some(version))
    }

    /// The hot path of every call: the state updates, then the one branch that tells a call
    /// which completes no loop (almost every call) from one that may; only the latter goes on
    /// to [`settle`](Self::settle), out of line. Always inlined (with what it calls): a few
    /// dozen instructions, which a call and its register saves would add a fifth to.
    #[inline(always)]
    fn record_call(
        &mut self,
        tool: &'static str,
        signature: u64,
        version: Option<u64>,
    ) -> Option<Detection> {
        let number = self.calls;
        self.calls += 1;
        let repeats = self.repeats.increment(signature, version);
        let maybe = self.push(number, signature, tool);
        let limits = &self.limits;
        // Not short-circuiting: one branch, not five.
        if !(maybe | self.matching_any)
            & (self.calls <= limits.max_execution_depth)
            & (repeats <= limits.max_tool_repeats)
            & !self.failures.storms_possible()
        {
            return None;
        }
        self.settle(number, signature, tool, repeats, maybe)
    }

    /// The rest of [`record_call`](Self::record_call) for a call that may complete a loop or
    /// follows one that matched a period: whether it is among the `max_cycle_len` calls before
    /// it (`maybe`: its bucket says it may be), the periods it matches, and the loop it
    /// completes, if any.
    #[inline(never)]
    fn settle(
        &mut self,
        number: u64,
        signature: u64,
        tool: &'static str,
        repeats: u32,
        maybe: bool,
    ) -> Option<Detection> {
        let end = Self::end(number);
        let repeated = maybe && {
            let seen = Self::seen(number, self.limits.max_cycle_len);
            // The call itself is written at `end` and `end - RING`, outside the window.
            self.recent[end - seen..end].contains(&signature)
        };
        if repeated {
            self.match_periods(number, signature, end);
        } else if self.matching_any {
            self.matching.fill(0);
        }
        self.matching_any = repeated;
        let limits = &self.limits;
        if !repeated
            && self.calls <= limits.max_execution_depth
            && repeats <= limits.max_tool_repeats
            && !self.failures.storms_possible()
        {
            return None;
        }
        self.conclude(tool, signature, repeats, repeated)
    }

    /// The loop a call completes, if any, once [`record_call`](Self::record_call) recorded it:
    /// depth first, then a retry storm, a repeat, and a cycle (`repeated`: the call is among
    /// the last `max_cycle_len`, so it may complete one).
    #[inline(never)]
    fn conclude(
        &self,
        tool: &'static str,
        signature: u64,
        repeats: u32,
        repeated: bool,
    ) -> Option<Detection> {
        let limits = self.limits;
        if self.calls > limits.max_execution_depth {
            return Some(self.detection(
                LoopKind::Depth,
                tool,
                Vec::new(),
                format!(
                    "Execution depth exceeded: {tool} is tool call {} (max_execution_depth = {})",
                    self.calls, limits.max_execution_depth
                ),
            ));
        }
        let failures = self.failures.get(signature);
        if failures >= limits.max_retries {
            return Some(self.detection(
                LoopKind::RetryStorm,
                tool,
                Vec::new(),
                format!(
                    "Retry storm detected: {tool} failed {failures} times in a row with the same \
                 arguments (max_retries = {})",
                    limits.max_retries
                ),
            ));
        }
        if repeats > limits.max_tool_repeats {
            return Some(self.detection(
                LoopKind::Repeat,
                tool,
                Vec::new(),
                format!(
                    "Repeated call detected: {tool} called {repeats} times with the same arguments \
                 (max_tool_repeats = {})",
                    limits.max_tool_repeats
                ),
            ));
        }
        let cycle = self.cycle(repeated)?;
        let message = format!("Cycle detected: {}", cycle.join(" -> "));
        Some(self.detection(LoopKind::Cycle, tool, cycle, message))
    }

    /// Records that the call with this signature failed.
    pub fn record_failure(&mut self, signature: u64) {
        self.failures.increment(signature);
    }

    /// Records that the call with this signature succeeded, ending its run of failures.
    pub fn record_success(&mut self, signature: u64) {
        self.failures.remove(signature);
    }

    fn detection(
        &self,
        kind: LoopKind,
        tool: &'static str,
        cycle: Vec<&'static str>,
        message: String,
    ) -> Detection {
        Detection {
            kind,
            tool,
            cycle,
            message,
        }
    }

    /// Appends call number `number` (counted from 0) to the recent ones and tells whether it
    /// may be among the `max_cycle_len` before it: only then can it complete a cycle
    /// ([`settle`](Self::settle) looks).
    #[inline(always)]
    fn push(&mut self, number: u64, signature: u64, tool: &'static str) -> bool {
        #[allow(clippy::cast_possible_truncation)] // numbers and buckets wrap by design
        let (end, short, bucket) = (
            Self::end(number),
            number as u32,
            &mut self.last_pushed[(signature >> BUCKET_SHIFT) as usize & (PUSH_BUCKETS - 1)],
        );
        // A call among the last `max` wrote its bucket since: if nobody did, this is not one
        // of them. (A bucket last written 2^32 calls ago looks recent: a needless scan.)
        let maybe = short.wrapping_sub(*bucket) as usize <= self.limits.max_cycle_len;
        *bucket = short;
        let slot = end - RING;
        self.recent[slot] = signature;
        self.recent[end] = signature;
        self.tools[slot] = tool;
        maybe
    }

    /// Where call `number` is written in `recent` (and at that minus [`RING`]): the end of the
    /// window of the calls before it.
    #[inline(always)]
    fn end(number: u64) -> usize {
        #[allow(clippy::cast_possible_truncation)] // modulo `RING`
        let end = number as usize % RING + RING;
        end
    }

    /// How many of the `max` calls before call `number` there are.
    #[inline]
    fn seen(number: u64, max: usize) -> usize {
        #[allow(clippy::cast_possible_truncation)] // at most `max`
        let seen = number.min(max as u64) as usize;
        seen
    }

    /// Counts, for each period, the calls ending here that equal the call that period before
    /// them, given the end of the window the call is pushed after.
    #[inline(never)]
    fn match_periods(&mut self, number: u64, signature: u64, end: usize) {
        let seen = Self::seen(number, self.limits.max_cycle_len);
        let window = &self.recent[end - seen..end];
        for period in 1..=self.limits.max_cycle_len {
            let same = period <= seen && window[seen - period] == signature;
            self.matching[period] = if same { self.matching[period] + 1 } else { 0 };
        }
    }

    /// The cycle the last call completed, if any (`repeated`: that call is among the
    /// `max_cycle_len` before it): the shortest period `p` (2 ≤ p ≤ max) whose last `p` calls
    /// equal the `p` before them and are not all one call (that is a repeat, not a cycle).
    fn cycle(&self, repeated: bool) -> Option<Vec<&'static str>> {
        if !repeated {
            return None;
        }
        // A cycle needs two distinct calls: periods within the run of identical calls ending
        // here (A, A, A, A) are repeats, not cycles.
        let identical = self.matching[1] as usize + 1;
        let period = (2..=self.limits.max_cycle_len)
            .find(|&period| self.matching[period] as usize >= period && identical < period)?;
        #[allow(clippy::cast_possible_truncation)] // modulo `RING`
        let last = self.calls as usize % RING;
        Some(
            (RING + last - period..RING + last)
                .map(|call| self.tools[call % RING])
                .collect(),
        )
    }
}

/// Bits of a signature that pick its repeat count's slot: the lowest.
const SLOT_BITS: u32 = 12;

/// Slots of the repeat counts.
const REPEAT_SLOTS: usize = 1 << SLOT_BITS;

/// How often each recent call was made, in a direct-mapped table of [`REPEAT_SLOTS`] slots
/// (64 KiB, allocated on a session's first call): a call's slot is picked by its signature,
/// and a call whose slot holds another signature takes it over. So a count survives until
/// another call lands in its slot, which among a few thousand distinct calls is unlikely;
/// every call costs a few instructions whatever the session's length.
#[derive(Debug, Default)]
struct RepeatCounts {
    slots: Option<Box<[RepeatSlot; REPEAT_SLOTS]>>,
}

/// One call's count, and the version of what it read when last made (the low 32 bits: a
/// version moves by one per invalidation, so two that differ never agree on them in
/// practice), which keeps a slot at 16 bytes.
#[derive(Clone, Copy, Debug, Default)]
struct RepeatSlot {
    signature: u64,
    count: u32,
    version: u32,
}

impl RepeatCounts {
    /// Counts one more call of `signature` and returns its count, unless `version` (a read's)
    /// moved since the previous call: then the call is progress and the count stays.
    #[inline(always)]
    fn increment(&mut self, signature: u64, version: Option<u64>) -> u32 {
        let slots = self.slots.get_or_insert_with(|| {
            let slots = vec![RepeatSlot::default(); REPEAT_SLOTS].into_boxed_slice();
            slots
                .try_into()
                .unwrap_or_else(|_| unreachable!("{REPEAT_SLOTS} slots"))
        });
        #[allow(clippy::cast_possible_truncation)] // the low bits pick the slot
        let slot = &mut slots[signature as usize & (REPEAT_SLOTS - 1)];
        #[allow(clippy::cast_possible_truncation)] // see `RepeatSlot::version`
        let version = version.map(|version| version as u32);
        if slot.signature == signature && slot.count > 0 {
            match version {
                Some(version) if version != slot.version => slot.version = version,
                _ => slot.count = slot.count.saturating_add(1),
            }
        } else {
            *slot = RepeatSlot {
                signature,
                count: 1,
                version: version.unwrap_or(0),
            };
        }
        slot.count
    }
}

/// Counts per call signature, remembering at most [`REMEMBERED_CALLS`] signatures.
#[derive(Debug)]
struct BoundedCounts {
    counts: HashMap<u64, u32, BuildHasherDefault<SignatureHasher>>,
    /// Signatures in the order they were first counted, to forget the oldest.
    order: VecDeque<u64>,
    /// Whether every call is a retry storm (`max_retries = 0`).
    always: bool,
    /// `always`, or some count is kept: kept up to date, so a call reads one flag.
    storms_possible: bool,
}

/// Signatures are already hashes: a map keyed by them needs one multiply, not a hash.
#[derive(Default)]
struct SignatureHasher(u64);

impl Hasher for SignatureHasher {
    fn finish(&self) -> u64 {
        // A signature's low bits are well spread, its high ones less (see `CallHasher`): the
        // multiply carries the low ones up to the bits the map takes its tags from.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for signatures; fold anything else in.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, signature: u64) {
        self.0 = signature;
    }
}

impl BoundedCounts {
    fn new(always: bool) -> Self {
        BoundedCounts {
            counts: HashMap::default(),
            order: VecDeque::new(),
            always,
            storms_possible: always,
        }
    }

    fn increment(&mut self, signature: u64) -> u32 {
        self.storms_possible = true;
        if let Some(count) = self.counts.get_mut(&signature) {
            *count = count.saturating_add(1);
            return *count;
        }
        if self.order.len() == REMEMBERED_CALLS {
            while let Some(oldest) = self.order.pop_front() {
                if self.counts.remove(&oldest).is_some() {
                    break;
                }
            }
        }
        self.order.push_back(signature);
        self.counts.insert(signature, 1);
        1
    }

    /// Whether a call may be a retry storm: some call has a failure counted, or any call is
    /// one (`max_retries = 0`). Usually not, and then a call need not look up its failures.
    #[inline]
    fn storms_possible(&self) -> bool {
        self.storms_possible
    }

    fn get(&self, signature: u64) -> u32 {
        self.counts.get(&signature).copied().unwrap_or(0)
    }

    fn remove(&mut self, signature: u64) {
        // Its place in `order` is skipped when it comes up for forgetting.
        self.counts.remove(&signature);
        self.storms_possible = self.always || !self.counts.is_empty();
    }
}
