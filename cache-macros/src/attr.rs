//! The attribute's arguments: parsed leniently as `name = value` pairs, then typed one by one
//! so that every mistake is reported, each at its own tokens.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, Token, UnOp};

/// Which attribute is being expanded.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Lru,
    Ttl,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Lru => "async_lru",
            Kind::Ttl => "async_ttl",
        }
    }

    fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Lru => &["maxsize", "skip_args", "key", "result", "detached"],
            Kind::Ttl => &[
                "time_to_live",
                "maxsize",
                "skip_args",
                "key",
                "result",
                "detached",
            ],
        }
    }

    fn default_maxsize(self) -> u64 {
        match self {
            Kind::Lru => 128,
            Kind::Ttl => 1024,
        }
    }
}

/// `name = value, ...` as written.
pub(crate) struct RawArgs(Punctuated<RawArg, Token![,]>);

pub(crate) struct RawArg {
    name: Ident,
    value: Expr,
}

impl Parse for RawArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input
            .parse_terminated(RawArg::parse, Token![,])
            .map(RawArgs)
    }
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                name.span(),
                format!("expected `{name} = <value>`: every option takes a value"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(RawArg { name, value })
    }
}

/// The typed options of one attribute.
pub(crate) struct Options {
    pub(crate) maxsize: u64,
    /// Time to live in nanoseconds; `None` never expires.
    pub(crate) ttl_nanos: Option<u64>,
    pub(crate) skip_args: WithSpan<usize>,
    pub(crate) key: Option<Expr>,
    pub(crate) result: Option<bool>,
    pub(crate) detached: Option<bool>,
}

/// A value with the span of the tokens it came from.
#[derive(Clone, Copy)]
pub(crate) struct WithSpan<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// Collects independent errors into one.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

impl Options {
    // Input:  `time_to_live = 30, skip_args = 1` (as `RawArgs`)
    // Output: `Options { maxsize: 1024, ttl_nanos: Some(30_000_000_000), skip_args: 1, .. }`
    pub(crate) fn from_args(kind: Kind, args: RawArgs) -> syn::Result<Self> {
        let mut options = Options {
            maxsize: kind.default_maxsize(),
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
        };
        let mut errors = Errors::default();
        let mut seen: Vec<Ident> = Vec::new();
        for RawArg { name, value } in args.0 {
            let option = name.to_string();
            // Checked first, so the `match` below only sees known options.
            if !kind.options().contains(&option.as_str()) {
                errors.push(unknown_option(kind, &name));
                continue;
            }
            if let Some(first) = seen.iter().find(|seen| **seen == name) {
                let mut error = syn::Error::new(
                    name.span(),
                    format!("duplicate option `{option}`: give it once"),
                );
                error.combine(syn::Error::new(
                    first.span(),
                    format!("`{option}` first given here"),
                ));
                errors.push(error);
                continue;
            }
            seen.push(name);
            let parsed = match option.as_str() {
                "maxsize" => integer(&option, &value).map(|n| options.maxsize = n),
                "skip_args" => integer(&option, &value).and_then(|n| {
                    let value_span = value.span();
                    usize::try_from(n)
                        .map(|n| {
                            options.skip_args = WithSpan {
                                value: n,
                                span: value_span,
                            }
                        })
                        .map_err(|_| syn::Error::new(value_span, "`skip_args` is too large"))
                }),
                "time_to_live" => ttl_nanos(&value).map(|n| options.ttl_nanos = Some(n)),
                "result" => boolean(&option, &value).map(|b| options.result = Some(b)),
                "key" => {
                    options.key = Some(value);
                    Ok(())
                }
                _ => boolean(&option, &value).map(|b| options.detached = Some(b)),
            };
            if let Err(error) = parsed {
                errors.push(error);
            }
        }
        errors.finish().map(|()| options)
    }
}

fn unknown_option(kind: Kind, name: &Ident) -> syn::Error {
    let allowed = kind
        .options()
        .iter()
        .map(|option| format!("`{option}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = match (kind, name.to_string().as_str()) {
        (Kind::Lru, "time_to_live" | "ttl") => {
            "; for entries that expire, use `#[async_ttl(time_to_live = <seconds>)]`"
        }
        (Kind::Ttl, "ttl") => "; did you mean `time_to_live`?",
        (_, "size" | "max_size" | "capacity") => "; did you mean `maxsize`?",
        (_, "skip" | "skip_arg") => "; did you mean `skip_args`?",
        _ => "",
    };
    syn::Error::new(
        name.span(),
        format!(
            "unknown option `{name}` for #[{}]: expected one of {allowed}{hint}",
            kind.name()
        ),
    )
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

fn is_negative_number(value: &Expr) -> bool {
    matches!(value, Expr::Unary(ExprUnary { op: UnOp::Neg(_), expr, .. })
        if matches!(literal(expr), Some(Lit::Int(_) | Lit::Float(_))))
}

fn integer(option: &str, value: &Expr) -> syn::Result<u64> {
    if is_negative_number(value) {
        return Err(syn::Error::new(
            value.span(),
            format!("`{option}` cannot be negative: give a whole number such as `{option} = 1`"),
        ));
    }
    match literal(value) {
        Some(Lit::Int(int)) => int.base10_parse(),
        _ => {
            let example = if option == "maxsize" { 128 } else { 1 };
            Err(syn::Error::new(
                value.span(),
                format!("`{option}` takes a whole number, such as `{option} = {example}`"),
            ))
        }
    }
}

fn boolean(option: &str, value: &Expr) -> syn::Result<bool> {
    match literal(value) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(syn::Error::new(
            value.span(),
            format!("`{option}` takes `true` or `false`"),
        )),
    }
}

/// `time_to_live` in seconds, an integer or a float, converted to whole nanoseconds.
fn ttl_nanos(value: &Expr) -> syn::Result<u64> {
    let not_positive = || {
        syn::Error::new(
            value.span(),
            "`time_to_live` must be a positive number of seconds, such as `time_to_live = 60` or \
             `time_to_live = 0.5`; for entries that never expire, use #[async_lru]",
        )
    };
    if is_negative_number(value) {
        return Err(not_positive());
    }
    let seconds = match literal(value) {
        Some(Lit::Int(int)) => int.base10_parse::<f64>()?,
        Some(Lit::Float(float)) => float.base10_parse::<f64>()?,
        _ => {
            return Err(syn::Error::new(
                value.span(),
                "`time_to_live` takes a number of seconds, such as `time_to_live = 60` or \
                 `time_to_live = 0.5`",
            ));
        }
    };
    let nanos = (seconds * 1e9).round();
    // Anything below a nanosecond would round to "never expires" or "already expired".
    if nanos.is_nan() || nanos < 1.0 {
        return Err(not_positive());
    }
    if nanos > u64::MAX as f64 {
        return Err(syn::Error::new(
            value.span(),
            "`time_to_live` is too large: at most about 584 years",
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked above
    Ok(nanos as u64)
}
