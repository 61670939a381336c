//! Rules across the options and the function's signature, and the [`Plan`] they produce.

use cache_attr::args::Errors;
use cache_attr::signature::{self, KeyPart, Param};
use proc_macro2::Span;
use syn::ItemFn;
use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::attr::{Kind, Options};

/// What the expansion needs to know about the function, once every rule has passed.
pub(crate) struct Plan {
    /// Where the helpers go: a module beside a free function, or associated functions beside
    /// a method.
    pub(crate) form: Form,
    /// How each non-skipped parameter enters the default key (empty with `key = ...`).
    pub(crate) key_parts: Vec<KeyPart>,
    /// The parameters as the helpers declare them.
    pub(crate) params: Vec<Param>,
    /// Cache only `Ok` values.
    pub(crate) result: bool,
    /// Load in a task of its own (every argument is owned).
    pub(crate) detached: bool,
    /// Generate `snapshot` and `restore` helpers.
    pub(crate) snapshot: bool,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Form {
    Free,
    Method,
}

// Input:  `#[async_ttl(skip_args = 1)] async fn order(&self, id: u64) -> Result<Order, E>`
// Output: `Plan { form: Method, key_parts: [Owned(id)], result: true, detached: false, .. }`
pub(crate) fn plan(kind: Kind, item: &ItemFn, options: &Options) -> syn::Result<Plan> {
    let mut errors = Errors::default();
    let analysis = signature::analyse(
        kind.name(),
        &item.sig,
        options.skip_args,
        options.key.is_some(),
        &mut errors,
    );
    let detached = options.detached.unwrap_or(analysis.all_owned);
    if detached
        && analysis.all_owned
        && let Some(call) = self_call(item)
    {
        let name = &item.sig.ident;
        errors.push(syn::Error::new(
            call,
            format!(
                "`{name}` calls itself, so its cached load cannot run detached: a detached load \
                 (the default when every argument is owned) must be `Send`, which the compiler \
                 cannot prove for a recursive async fn; add `detached = false` to \
                 `#[{}(...)]` to load in the calling task",
                kind.name()
            ),
        ));
    }
    if let Some(refresh) = options.refresh_after
        && !(detached && analysis.all_owned)
    {
        errors.push(syn::Error::new(
            refresh.span,
            "`refresh_after` reloads in the background, after the call that found the value \
             old returned: it needs the detached load, so every argument owned and `'static` \
             (no references, receivers, lifetimes or generic parameters) and no \
             `detached = false`",
        ));
    }
    if let Some(stale) = options.stale_on_error {
        if !options.result.unwrap_or(analysis.returns_result) {
            errors.push(syn::Error::new(
                stale.span,
                "`stale_on_error` answers a failed load with the expired value: it needs a \
                 function returning `Result` (only an `Err` is a failure)",
            ));
        } else if options.ttl_nanos.is_none() && options.time_to_idle.is_none() {
            errors.push(syn::Error::new(
                stale.span,
                "`stale_on_error` serves a value past its expiry, and `#[async_lru]` entries \
                 never expire: use `#[async_ttl(time_to_live = ..)]` or add `time_to_idle`",
            ));
        }
    }
    if options.detached == Some(true) && !analysis.all_owned {
        errors.push(syn::Error::new(
            item.sig.ident.span(),
            "`detached = true` needs every argument owned and `'static` (no references, \
             receivers, lifetimes or generic parameters), so the load can outlive this call",
        ));
    }
    if let (Some(shared), None) = (options.shared, &options.fleet)
        && shared.value
    {
        errors.push(syn::Error::new(
            shared.span,
            "`shared = true` puts the values in the fleet's shared tier: name the cache \
             across the fleet too, with `fleet = \"name\"`",
        ));
    }
    if let Some(version) = options.version
        && !options.shared.is_some_and(|shared| shared.value)
    {
        errors.push(syn::Error::new(
            version.span,
            "`version` is the schema version of the values in the fleet's shared tier: it \
             needs `shared = true` (and `fleet = \"name\"`)",
        ));
    }
    weight_rules(options, &mut errors);
    let snapshot = options.snapshot.is_some_and(|snapshot| snapshot.value);
    if let Some(option) = options.snapshot.filter(|_| snapshot) {
        snapshot_rules(item, options, option.span, &mut errors);
    }
    errors.finish()?;
    Ok(Plan {
        form: if analysis.is_method {
            Form::Method
        } else {
            Form::Free
        },
        key_parts: analysis.key_parts,
        params: analysis.params,
        result: options.result.unwrap_or(analysis.returns_result),
        detached,
        snapshot,
    })
}

/// `max_weight` and `weigher` come together, and `max_weight` replaces `maxsize`.
fn weight_rules(options: &Options, errors: &mut Errors) {
    match (&options.max_weight, &options.weigher) {
        (Some(weight), None) => errors.push(syn::Error::new(
            weight.span,
            "`max_weight` bounds the total weight the weigher gives the entries: add \
             `weigher = <fn(&K, &V) -> u32>`, or bound the number of entries with `maxsize`",
        )),
        (None, Some(weigher)) => errors.push(syn::Error::new(
            weigher.span(),
            "a `weigher` weighs entries against a bound: add `max_weight = <total weight>`",
        )),
        _ => {}
    }
    if let (Some(weight), Some(_)) = (&options.max_weight, options.maxsize_span) {
        errors.push(syn::Error::new(
            weight.span,
            "`max_weight` is the cache's bound, in the weigher's units: leave out `maxsize`",
        ));
    }
}

/// `snapshot = true` names the cache's key and value types in its helpers (which take no
/// arguments to infer them from): they must be nameable from the signature alone.
fn snapshot_rules(item: &ItemFn, options: &Options, span: Span, errors: &mut Errors) {
    let sig = &item.sig;
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            "`snapshot = true` needs the cache's key and value types, which a generic function \
             does not fix: cache a non-generic function (it may call this one)",
        ));
    }
    if options.key.is_some() {
        errors.push(syn::Error::new(
            span,
            "`snapshot = true` cannot name the type of a `key = ...` expression: key the \
             cache by the arguments (leave out the ones that are not part of it with \
             `skip_args`), or snapshot an `AsyncCache` of your own",
        ));
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output
        && cache_attr::tokens::contains_impl_trait(ty)
    {
        errors.push(syn::Error::new(
            ty.span(),
            "`snapshot = true` needs a return type it can name: write the type instead of \
             `impl Trait`",
        ));
    }
}

// Input:  `async fn fib(n: u64) -> u64 { ... fib(n - 1) ... }`
// Output: the span of `fib(n - 1)`
/// The first call of the function to itself in its body (`name(..)`, `Self::name(..)` or
/// `self.name(..)`), not looking into items nested in the body.
fn self_call(item: &ItemFn) -> Option<Span> {
    struct Finder<'a> {
        name: &'a syn::Ident,
        found: Option<Span>,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
            if let syn::Expr::Path(path) = &*call.func {
                let segments: Vec<_> = path.path.segments.iter().collect();
                let calls_itself = match segments.as_slice() {
                    [name] => name.ident == *self.name,
                    [owner, name] => owner.ident == "Self" && name.ident == *self.name,
                    _ => false,
                };
                if calls_itself && self.found.is_none() {
                    self.found = Some(call.span());
                }
            }
            syn::visit::visit_expr_call(self, call);
        }
        fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
            let on_self =
                matches!(&*call.receiver, syn::Expr::Path(path) if path.path.is_ident("self"));
            if on_self && call.method == *self.name && self.found.is_none() {
                self.found = Some(call.span());
            }
            syn::visit::visit_expr_method_call(self, call);
        }
        // A nested fn of the same name is another function.
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut finder = Finder {
        name: &item.sig.ident,
        found: None,
    };
    finder.visit_block(&item.block);
    finder.found
}
