//! The typed options of `#[async_lru]` and `#[async_ttl]`.

use cache_attr::args::{self, Engine, Grammar, RawArgs, WithSpan};
use proc_macro2::Span;
use syn::Expr;
use syn::spanned::Spanned;

/// Which attribute is being expanded.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Lru,
    Ttl,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        self.grammar().attribute
    }

    fn grammar(self) -> Grammar {
        match self {
            Kind::Lru => Grammar {
                attribute: "async_lru",
                options: &[
                    "maxsize",
                    "skip_args",
                    "key",
                    "result",
                    "detached",
                    "engine",
                    "fleet",
                    "shared",
                    "version",
                    "snapshot",
                    "refresh_after",
                    "stale_on_error",
                    "time_to_idle",
                    "max_weight",
                    "weigher",
                    "on_evict",
                ],
                hint: |option| match option {
                    "time_to_live" | "ttl" => Some(
                        "for entries that expire, use `#[async_ttl(time_to_live = <seconds>)]`",
                    ),
                    _ => common_hint(option),
                },
            },
            Kind::Ttl => Grammar {
                attribute: "async_ttl",
                options: &[
                    "time_to_live",
                    "maxsize",
                    "skip_args",
                    "key",
                    "result",
                    "detached",
                    "engine",
                    "fleet",
                    "shared",
                    "version",
                    "snapshot",
                    "refresh_after",
                    "stale_on_error",
                    "time_to_idle",
                    "max_weight",
                    "weigher",
                    "on_evict",
                ],
                hint: |option| match option {
                    "ttl" => Some("did you mean `time_to_live`?"),
                    _ => common_hint(option),
                },
            },
        }
    }
}

fn common_hint(option: &str) -> Option<&'static str> {
    match option {
        "size" | "max_size" | "capacity" => Some("did you mean `maxsize`?"),
        "skip" | "skip_arg" => Some("did you mean `skip_args`?"),
        "backend" | "store" | "storage" => Some("did you mean `engine`?"),
        "persist" | "backup" | "save" | "snapshots" => {
            Some("for `snapshot` and `restore` helpers (a warm restart), use `snapshot = true`")
        }
        "refresh" | "refresh_after_write" | "refresh_ahead" => {
            Some("did you mean `refresh_after`?")
        }
        "stale" | "serve_stale" | "stale_if_error" => Some("did you mean `stale_on_error`?"),
        "idle" | "tti" | "time_to_idle_secs" => Some("did you mean `time_to_idle`?"),
        "weight" | "max_bytes" | "weight_capacity" | "byte_budget" => {
            Some("for a bound in weight, use `max_weight = N` with `weigher = <fn(&K, &V) -> u32>`")
        }
        "eviction_listener" | "listener" | "on_remove" | "on_removal" => {
            Some("did you mean `on_evict`?")
        }
        "redis" | "cluster" | "distributed" => {
            Some("a cache shared across processes names its fleet cache: `fleet = \"name\"`")
        }
        _ => None,
    }
}

/// The options of one attribute, defaults filled in.
pub(crate) struct Options {
    pub(crate) maxsize: u64,
    /// Time to live in nanoseconds; `None` never expires.
    pub(crate) ttl_nanos: Option<u64>,
    pub(crate) skip_args: WithSpan<usize>,
    pub(crate) key: Option<Expr>,
    pub(crate) result: Option<bool>,
    pub(crate) detached: Option<bool>,
    /// `None`: the runtime's default engine.
    pub(crate) engine: Option<Engine>,
    /// The cache's name in the installed fleet; `None`: process-local.
    pub(crate) fleet: Option<syn::LitStr>,
    /// Whether the values live in the fleet's shared tier (L2) too.
    pub(crate) shared: Option<WithSpan<bool>>,
    /// The values' schema version in the shared tier.
    pub(crate) version: Option<WithSpan<u32>>,
    /// Generate `snapshot` and `restore` helpers (warm restart).
    pub(crate) snapshot: Option<WithSpan<bool>>,
    /// Refresh-ahead, in nanoseconds.
    pub(crate) refresh_after: Option<WithSpan<u64>>,
    /// Stale-on-error's window, in nanoseconds.
    pub(crate) stale_on_error: Option<WithSpan<u64>>,
    /// Idle timeout, in nanoseconds.
    pub(crate) time_to_idle: Option<WithSpan<u64>>,
    /// Where `maxsize = ..` was written, if it was.
    pub(crate) maxsize_span: Option<Span>,
    /// The bound in weight (`maxsize` holds it too).
    pub(crate) max_weight: Option<WithSpan<u64>>,
    /// A `fn(&K, &V) -> u32`: a path or a closure that captures nothing.
    pub(crate) weigher: Option<Expr>,
    /// A `fn(K, V, RemovalCause)`: a path or a closure that captures nothing.
    pub(crate) on_evict: Option<Expr>,
}

impl Options {
    // Input:  `time_to_live = 30, skip_args = 1` (as `RawArgs`)
    // Output: `Options { maxsize: 1024, ttl_nanos: Some(30_000_000_000), skip_args: 1, .. }`
    pub(crate) fn from_args(kind: Kind, raw: RawArgs) -> syn::Result<Self> {
        let mut options = Options {
            maxsize: match kind {
                Kind::Lru => 128,
                Kind::Ttl => 1024,
            },
            ttl_nanos: match kind {
                Kind::Lru => None,
                Kind::Ttl => Some(60_000_000_000),
            },
            skip_args: WithSpan {
                value: 0,
                span: Span::call_site(),
            },
            key: None,
            result: None,
            detached: None,
            engine: None,
            fleet: None,
            shared: None,
            version: None,
            snapshot: None,
            refresh_after: None,
            stale_on_error: None,
            time_to_idle: None,
            maxsize_span: None,
            max_weight: None,
            weigher: None,
            on_evict: None,
        };
        raw.apply(&kind.grammar(), |option, value| {
            match option {
                "maxsize" => {
                    options.maxsize = args::integer(option, &value, 128)?;
                    options.maxsize_span = Some(value.span());
                }
                "max_weight" => {
                    let weight = args::integer(option, &value, 1_048_576)?;
                    options.maxsize = weight;
                    options.max_weight = Some(WithSpan {
                        value: weight,
                        span: value.span(),
                    });
                }
                "weigher" => options.weigher = Some(value),
                "on_evict" => options.on_evict = Some(value),
                "skip_args" => options.skip_args = args::skip_args(&value)?,
                "time_to_live" => {
                    let never = "for entries that never expire, use #[async_lru]";
                    options.ttl_nanos = Some(args::seconds_as_nanos(option, &value, never)?);
                }
                "result" => options.result = Some(args::boolean(option, &value)?),
                "detached" => options.detached = Some(args::boolean(option, &value)?),
                "engine" => options.engine = Some(Engine::parse(&value)?),
                "fleet" => options.fleet = Some(args::fleet_name(&value)?),
                "snapshot" => {
                    options.snapshot = Some(WithSpan {
                        value: args::boolean(option, &value)?,
                        span: value.span(),
                    });
                }
                "shared" => {
                    options.shared = Some(WithSpan {
                        value: args::boolean(option, &value)?,
                        span: value.span(),
                    });
                }
                "version" => {
                    let version = args::integer(option, &value, 2)?;
                    let Ok(version) = u32::try_from(version) else {
                        return Err(syn::Error::new(
                            value.span(),
                            "`version` is a schema version from 0 to 4294967295",
                        ));
                    };
                    options.version = Some(WithSpan {
                        value: version,
                        span: value.span(),
                    });
                }
                "refresh_after" | "stale_on_error" | "time_to_idle" => {
                    let nanos = WithSpan {
                        value: args::seconds_as_nanos(
                            option,
                            &value,
                            "leave the option out for none",
                        )?,
                        span: value.span(),
                    };
                    match option {
                        "refresh_after" => options.refresh_after = Some(nanos),
                        "stale_on_error" => options.stale_on_error = Some(nanos),
                        _ => options.time_to_idle = Some(nanos),
                    }
                }
                // `key`, the last option the grammar allows.
                _ => options.key = Some(value),
            }
            Ok(())
        })?;
        Ok(options)
    }
}
