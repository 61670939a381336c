//! [`SessionLimits`]: the loop-detection settings a caller picks for a scenario's sessions.

use agent_cache::{AgentCacheSessionBuilder, LoopLimits, OnLoop};

/// Loop-detection limits and the reaction to a loop, for the sessions of a scenario or a
/// script. The default is the library's: 5 repeats, 50 calls, [`OnLoop::Raise`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// At most this many calls of one tool with the same arguments.
    pub max_tool_repeats: u32,
    /// At most this many tool calls in a session.
    pub max_execution_depth: u64,
    /// What a detection does.
    pub on_loop: OnLoop,
}

impl Default for SessionLimits {
    fn default() -> Self {
        let limits = LoopLimits::default();
        SessionLimits {
            max_tool_repeats: limits.max_tool_repeats,
            max_execution_depth: limits.max_execution_depth,
            on_loop: OnLoop::default(),
        }
    }
}

impl SessionLimits {
    /// `builder` with loop detection on and these limits, or untouched when `limits` is
    /// `None` (the scenario keeps the settings it was written with).
    pub(super) fn apply(
        limits: Option<Self>,
        builder: AgentCacheSessionBuilder,
    ) -> AgentCacheSessionBuilder {
        match limits {
            None => builder,
            Some(limits) => builder
                .loop_detection(true)
                .max_tool_repeats(limits.max_tool_repeats)
                .max_execution_depth(limits.max_execution_depth)
                .on_loop(limits.on_loop),
        }
    }
}

/// The names [`parse_on_loop`] accepts, in the order of [`OnLoop`]'s variants.
pub const ON_LOOP_NAMES: [&str; 3] = ["raise", "warn", "short_circuit"];

/// Parses an [`OnLoop`] from its snake-case name (`raise`, `warn`, `short_circuit`).
pub fn parse_on_loop(name: &str) -> Option<OnLoop> {
    match name {
        "raise" => Some(OnLoop::Raise),
        "warn" => Some(OnLoop::Warn),
        "short_circuit" => Some(OnLoop::ShortCircuit),
        _ => None,
    }
}
