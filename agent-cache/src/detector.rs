//! [`LoopDetector`]: what a runaway agent looks like, in constant time and memory per call.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};

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
    /// The longest cycle looked for, in calls (2 at least). Default 10.
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
    let mut hasher = DefaultHasher::new();
    tool.hash(&mut hasher);
    arguments.hash(&mut hasher);
    hasher.finish()
}

/// How many distinct calls the repeat and failure counts remember; older ones are forgotten
/// first, which bounds memory for any session length.
const REMEMBERED_CALLS: usize = 4096;

/// Watches one session's tool calls for runaway loops.
///
/// Each [`record`](Self::record) costs O(`max_cycle_len`), a constant, and memory stays
/// bounded however long the session runs: the recent calls sit in a ring of
/// 2 × `max_cycle_len`, and the per-call counts remember at most 4,096 distinct calls.
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
    /// The most recent calls, oldest first.
    recent: VecDeque<(u64, &'static str)>,
    /// `matching[p]`: how many of the most recent calls equal the call `p` before them.
    matching: Vec<usize>,
    repeats: BoundedCounts,
    failures: BoundedCounts,
}

impl LoopDetector {
    /// A detector with these limits.
    pub fn new(limits: LoopLimits) -> Self {
        let max_cycle_len = limits.max_cycle_len.max(2);
        LoopDetector {
            limits: LoopLimits {
                max_cycle_len,
                ..limits
            },
            calls: 0,
            recent: VecDeque::with_capacity(2 * max_cycle_len),
            matching: vec![0; max_cycle_len + 1],
            repeats: BoundedCounts::default(),
            failures: BoundedCounts::default(),
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
    pub fn record(&mut self, tool: &'static str, signature: u64) -> Option<Detection> {
        self.calls += 1;
        let repeats = self.repeats.increment(signature);
        let cycle = self.push(signature, tool);
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
        cycle.map(|cycle| {
            let message = format!("Cycle detected: {}", cycle.join(" -> "));
            self.detection(LoopKind::Cycle, tool, cycle, message)
        })
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

    /// Appends a call to the recent ones and returns the cycle it completes, if any: the
    /// shortest period `p` (2 ≤ p ≤ max) whose last `p` calls equal the `p` before them and
    /// are not all one call (that is a repeat, not a cycle).
    fn push(&mut self, signature: u64, tool: &'static str) -> Option<Vec<&'static str>> {
        let len = self.recent.len();
        for period in 1..self.matching.len() {
            let same = len >= period && self.recent[len - period].0 == signature;
            self.matching[period] = if same { self.matching[period] + 1 } else { 0 };
        }
        if self.recent.len() == 2 * self.limits.max_cycle_len {
            self.recent.pop_front();
        }
        self.recent.push_back((signature, tool));
        // The run of identical calls ending here.
        let identical = self.matching[1] + 1;
        let period = (2..self.matching.len())
            .find(|&period| self.matching[period] >= period && identical < period)?;
        let start = self.recent.len() - period;
        Some(self.recent.range(start..).map(|(_, tool)| *tool).collect())
    }
}

/// Counts per call signature, remembering at most [`REMEMBERED_CALLS`] signatures.
#[derive(Debug, Default)]
struct BoundedCounts {
    counts: HashMap<u64, u32, BuildHasherDefault<SignatureHasher>>,
    /// Signatures in the order they were first counted, to forget the oldest.
    order: VecDeque<u64>,
}

/// Signatures are already hashes: a map keyed by them need not hash them again.
#[derive(Default)]
struct SignatureHasher(u64);

impl Hasher for SignatureHasher {
    fn finish(&self) -> u64 {
        self.0
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
    fn increment(&mut self, signature: u64) -> u32 {
        if !self.counts.contains_key(&signature) {
            if self.order.len() == REMEMBERED_CALLS {
                while let Some(oldest) = self.order.pop_front() {
                    if self.counts.remove(&oldest).is_some() {
                        break;
                    }
                }
            }
            self.order.push_back(signature);
        }
        let count = self.counts.entry(signature).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    fn get(&self, signature: u64) -> u32 {
        self.counts.get(&signature).copied().unwrap_or(0)
    }

    fn remove(&mut self, signature: u64) {
        // Its place in `order` is skipped when it comes up for forgetting.
        self.counts.remove(&signature);
    }
}
