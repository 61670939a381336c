//! Rules across the options and the function's signature, and the [`Plan`] they produce.

use cache_attr::args::Errors;
use cache_attr::signature::{self, KeyPart, Param};
use proc_macro2::Span;
use syn::ItemFn;
use syn::spanned::Spanned;

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
        detached: options.detached.unwrap_or(analysis.all_owned),
        snapshot,
    })
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
