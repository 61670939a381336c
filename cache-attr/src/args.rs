//! Options parsed leniently as `name = value` pairs, then typed one by one, so that every
//! mistake is reported, each at its own tokens.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, Token, UnOp};

/// `name = value, ...` as written.
pub struct RawArgs(Punctuated<RawArg, Token![,]>);

/// One `name = value`.
pub struct RawArg {
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

/// One attribute's grammar: its name, its options, and hints for likely mistakes.
pub struct Grammar {
    /// The attribute, as users write it (`async_ttl`).
    pub attribute: &'static str,
    /// Every option it takes.
    pub options: &'static [&'static str],
    /// A hint appended to the error for an unknown option, if one fits.
    pub hint: fn(&str) -> Option<&'static str>,
}

impl RawArgs {
    /// Hands each known option, once, to `apply`, and collects every error: unknown options
    /// (listing the allowed ones), duplicates (pointing at both), and what `apply` rejects.
    pub fn apply(
        self,
        grammar: &Grammar,
        mut apply: impl FnMut(&str, Expr) -> syn::Result<()>,
    ) -> syn::Result<()> {
        let mut errors = Errors::default();
        let mut seen: Vec<Ident> = Vec::new();
        for RawArg { name, value } in self.0 {
            let option = name.to_string();
            if !grammar.options.contains(&option.as_str()) {
                errors.push(unknown_option(grammar, &name));
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
            if let Err(error) = apply(&option, value) {
                errors.push(error);
            }
        }
        errors.finish()
    }
}

fn unknown_option(grammar: &Grammar, name: &Ident) -> syn::Error {
    let allowed = grammar
        .options
        .iter()
        .map(|option| format!("`{option}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = (grammar.hint)(&name.to_string())
        .map(|hint| format!("; {hint}"))
        .unwrap_or_default();
    syn::Error::new(
        name.span(),
        format!(
            "unknown option `{name}` for #[{}]: expected one of {allowed}{hint}",
            grammar.attribute
        ),
    )
}

/// A value with the span of the tokens it came from.
#[derive(Clone, Copy)]
pub struct WithSpan<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

/// Collects independent errors into one.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error.
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Err` with every error pushed, if any.
    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
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

/// A non-negative integer; `example` shows a valid value in the error.
pub fn integer(option: &str, value: &Expr, example: u64) -> syn::Result<u64> {
    if is_negative_number(value) {
        return Err(syn::Error::new(
            value.span(),
            format!(
                "`{option}` cannot be negative: give a whole number such as `{option} = {example}`"
            ),
        ));
    }
    match literal(value) {
        Some(Lit::Int(int)) => int.base10_parse(),
        _ => Err(syn::Error::new(
            value.span(),
            format!("`{option}` takes a whole number, such as `{option} = {example}`"),
        )),
    }
}

/// `skip_args = N`, with its span for later checks against the function's arity.
pub fn skip_args(value: &Expr) -> syn::Result<WithSpan<usize>> {
    let n = integer("skip_args", value, 1)?;
    usize::try_from(n)
        .map(|n| WithSpan {
            value: n,
            span: value.span(),
        })
        .map_err(|_| syn::Error::new(value.span(), "`skip_args` is too large"))
}

/// `true` or `false`.
pub fn boolean(option: &str, value: &Expr) -> syn::Result<bool> {
    match literal(value) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(syn::Error::new(
            value.span(),
            format!("`{option}` takes `true` or `false`"),
        )),
    }
}

/// A string literal.
pub fn string(option: &str, value: &Expr) -> syn::Result<syn::LitStr> {
    match literal(value) {
        Some(Lit::Str(string)) => Ok(string.clone()),
        _ => Err(syn::Error::new(
            value.span(),
            format!("`{option}` takes a string, such as `{option} = \"...\"`"),
        )),
    }
}

/// The name of a cache in its fleet (`fleet = "users"`): a non-empty string without NUL.
pub fn fleet_name(value: &Expr) -> syn::Result<syn::LitStr> {
    let name = string("fleet", value)?;
    let text = name.value();
    if text.is_empty() || text.contains('\0') {
        return Err(syn::Error::new(
            name.span(),
            "`fleet` names the cache across the processes of the installed fleet: give a \
             non-empty name without NUL, such as `fleet = \"users\"`",
        ));
    }
    Ok(name)
}

/// A number of seconds, an integer or a float, as whole nanoseconds (at least one).
/// `never` ends the error for a value that is not positive, saying what to do instead.
pub fn seconds_as_nanos(option: &str, value: &Expr, never: &str) -> syn::Result<u64> {
    let not_positive = || {
        syn::Error::new(
            value.span(),
            format!(
                "`{option}` must be a positive number of seconds, such as `{option} = 60` or \
                 `{option} = 0.5`; {never}"
            ),
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
                format!(
                    "`{option}` takes a number of seconds, such as `{option} = 60` or \
                     `{option} = 0.5`"
                ),
            ));
        }
    };
    let nanos = (seconds * 1e9).round();
    // Anything below a nanosecond would round to "never expires" or "already expired".
    if nanos.is_nan() || nanos < 1.0 {
        return Err(not_positive());
    }
    #[allow(clippy::cast_precision_loss)] // a bound, not a value
    if nanos > u64::MAX as f64 {
        return Err(syn::Error::new(
            value.span(),
            format!("`{option}` is too large: at most about 584 years"),
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked above
    Ok(nanos as u64)
}

/// A storage engine of `cache_core::Engine`, by the name the `engine` option takes.
#[derive(Clone, Copy)]
pub enum Engine {
    /// `engine = "moka"`.
    Moka,
    /// `engine = "quick_cache"`.
    QuickCache,
}

impl Engine {
    /// Every engine, as `(option value, variant of cache_core::Engine)`.
    const NAMES: [(&'static str, Engine); 2] =
        [("quick_cache", Engine::QuickCache), ("moka", Engine::Moka)];

    /// The variant's name in `cache_core::Engine`.
    fn variant(self) -> &'static str {
        match self {
            Engine::Moka => "Moka",
            Engine::QuickCache => "QuickCache",
        }
    }

    /// `cache_core::Engine::<variant>` through `runtime` (a path that re-exports `Engine`), as
    /// an `Option` for a spec field: `None` for the default engine.
    pub fn tokens(
        engine: Option<Self>,
        runtime: &proc_macro2::TokenStream,
    ) -> proc_macro2::TokenStream {
        match engine {
            Some(engine) => {
                let variant = Ident::new(engine.variant(), Span::call_site());
                quote::quote!(::core::option::Option::Some(#runtime::Engine::#variant))
            }
            None => quote::quote!(::core::option::Option::None),
        }
    }

    // Input:  `engine = "moka"`
    // Output: `Engine::Moka`, or an error at the string that lists the engines
    /// The engine an `engine = "..."` option names.
    pub fn parse(value: &Expr) -> syn::Result<Self> {
        let name = string("engine", value).map_err(|error| {
            syn::Error::new(
                error.span(),
                "`engine` takes a string: `engine = \"quick_cache\"` or `engine = \"moka\"`",
            )
        })?;
        Engine::NAMES
            .iter()
            .find(|(known, _)| *known == name.value())
            .map(|(_, engine)| *engine)
            .ok_or_else(|| {
                let allowed = Engine::NAMES
                    .iter()
                    .map(|(known, _)| format!("`\"{known}\"`"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                syn::Error::new(
                    name.span(),
                    format!(
                        "unknown engine `{}`: `engine` takes {allowed}",
                        name.value()
                    ),
                )
            })
    }
}
