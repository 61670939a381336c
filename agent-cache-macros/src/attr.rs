//! The typed options of `#[agent_cache]` and `#[agent_invalidator]`.

use cache_attr::args::{self, Engine, Grammar, RawArgs, WithSpan};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, LitStr};

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// `#[agent_cache]`: a read tool.
    Read,
    /// `#[agent_invalidator]`: a mutating tool.
    Invalidator,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        self.grammar().attribute
    }

    fn grammar(self) -> Grammar {
        match self {
            Kind::Read => Grammar {
                attribute: "agent_cache",
                options: &[
                    "resource",
                    "scope",
                    "ttl",
                    "maxsize",
                    "skip_args",
                    "key",
                    "result",
                    "engine",
                    "shared",
                ],
                hint: read_hint,
            },
            Kind::Invalidator => Grammar {
                attribute: "agent_invalidator",
                options: &["resource", "scope", "skip_args", "result"],
                hint: |option| match option {
                    "ttl" | "maxsize" | "key" | "engine" | "shared" => {
                        Some("an invalidator caches nothing; this option belongs on #[agent_cache]")
                    }
                    option => read_hint(option),
                },
            },
        }
    }
}

fn read_hint(option: &str) -> Option<&'static str> {
    match option {
        "resources" | "tag" | "tags" => Some("did you mean `resource`?"),
        "time_to_live" => Some("did you mean `ttl`?"),
        "skip" | "skip_arg" => Some("did you mean `skip_args`?"),
        "backend" | "store" | "storage" => Some("did you mean `engine`?"),
        _ => None,
    }
}

/// Where a tool's entries live.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Scope {
    Global,
    Session,
}

/// The options of one attribute, defaults filled in.
pub(crate) struct Options {
    /// The resource templates, as written.
    pub(crate) resources: Vec<LitStr>,
    pub(crate) scope: Scope,
    pub(crate) ttl_nanos: Option<u64>,
    pub(crate) maxsize: u64,
    pub(crate) skip_args: WithSpan<usize>,
    pub(crate) key: Option<Expr>,
    pub(crate) result: Option<WithSpan<bool>>,
    /// `None`: the runtime's default engine.
    pub(crate) engine: Option<Engine>,
    /// Whether results live in the installed fleet's shared tier too.
    pub(crate) shared: Option<WithSpan<bool>>,
}

impl Options {
    // Input:  `resource = ["cart:{user_id}", "orders"], scope = "session", ttl = 60`
    // Output: `Options { resources: [..], scope: Session, ttl_nanos: Some(60_000_000_000), .. }`
    pub(crate) fn from_args(kind: Kind, raw: RawArgs) -> syn::Result<Self> {
        let mut options = Options {
            resources: Vec::new(),
            scope: Scope::Global,
            ttl_nanos: None,
            maxsize: 1024,
            skip_args: WithSpan {
                value: 0,
                span: Span::call_site(),
            },
            key: None,
            result: None,
            engine: None,
            shared: None,
        };
        let mut given_resource = false;
        raw.apply(&kind.grammar(), |option, value| {
            match option {
                "resource" => {
                    given_resource = true;
                    options.resources = resources(&value)?;
                }
                "scope" => options.scope = scope(&value)?,
                "ttl" => {
                    let never = "leave `ttl` out for entries that never expire";
                    options.ttl_nanos = Some(args::seconds_as_nanos(option, &value, never)?);
                }
                "maxsize" => options.maxsize = args::integer(option, &value, 1024)?,
                "skip_args" => options.skip_args = args::skip_args(&value)?,
                "result" => {
                    options.result = Some(WithSpan {
                        value: args::boolean(option, &value)?,
                        span: value.span(),
                    });
                }
                "engine" => options.engine = Some(Engine::parse(&value)?),
                "shared" => {
                    options.shared = Some(WithSpan {
                        value: args::boolean(option, &value)?,
                        span: value.span(),
                    });
                }
                // `key`, the one option left.
                _ => options.key = Some(value),
            }
            Ok(())
        })?;
        if let Some(shared) = options.shared
            && shared.value
            && options.scope == Scope::Session
        {
            return Err(syn::Error::new(
                shared.span,
                "`shared = true` keeps results in the fleet's shared tier, for every process: a \
                 session-scoped tool's entries live in one session of one process; drop \
                 `shared` or use `scope = \"global\"`",
            ));
        }
        if !given_resource {
            return Err(syn::Error::new(
                Span::call_site(),
                format!(
                    "#[{}] needs `resource = \"...\"`: the resources this tool {}, such as \
                     `resource = \"cart:{{user_id}}\"` or `resource = [\"cart\", \"orders\"]`",
                    kind.name(),
                    if kind == Kind::Read {
                        "reads"
                    } else {
                        "changes"
                    },
                ),
            ));
        }
        Ok(options)
    }
}

fn resources(value: &Expr) -> syn::Result<Vec<LitStr>> {
    let expected = || {
        syn::Error::new(
            value.span(),
            "`resource` takes a string or an array of strings, such as `resource = \"cart\"` or \
             `resource = [\"cart:{user_id}\", \"orders\"]`",
        )
    };
    let strings = match value {
        Expr::Array(array) => array
            .elems
            .iter()
            .map(|elem| {
                args::string("resource", elem).map_err(|_| {
                    syn::Error::new(
                        elem.span(),
                        "every resource is a string, such as \"orders\" or \"cart:{user_id}\"",
                    )
                })
            })
            .collect::<syn::Result<Vec<_>>>()?,
        value => vec![args::string("resource", value).map_err(|_| expected())?],
    };
    if strings.is_empty() {
        return Err(syn::Error::new(
            value.span(),
            "`resource` needs at least one resource",
        ));
    }
    for string in &strings {
        let text = string.value();
        if text.is_empty() || text.split(':').any(str::is_empty) {
            return Err(syn::Error::new(
                string.span(),
                format!(
                    "resource \"{text}\" has an empty segment: resources are names joined by \
                     `:`, such as \"cart\" or \"cart:{{user_id}}\""
                ),
            ));
        }
    }
    Ok(strings)
}

fn scope(value: &Expr) -> syn::Result<Scope> {
    let string = args::string("scope", value)?;
    match string.value().as_str() {
        "global" => Ok(Scope::Global),
        "session" => Ok(Scope::Session),
        other => Err(syn::Error::new(
            string.span(),
            format!("unknown scope \"{other}\": expected \"global\" (the default) or \"session\""),
        )),
    }
}
