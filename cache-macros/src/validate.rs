//! Rules across the options and the function's signature, and the [`Plan`] they produce.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident};
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, ItemFn, Pat, PatType, Receiver, ReturnType, Type};

use crate::attr::{Errors, Kind, Options};

/// What the expansion needs to know about the function, once every rule has passed.
pub(crate) struct Plan {
    /// Where the helpers go: a module beside a free function, or associated functions beside
    /// a method.
    pub(crate) form: Form,
    /// How each non-skipped parameter enters the default key (empty with `key = ...`).
    pub(crate) key_parts: Vec<KeyPart>,
    /// The parameters as the helpers declare them: patterns replaced by names, `mut` dropped.
    pub(crate) params: Vec<Param>,
    /// Cache only `Ok` values.
    pub(crate) result: bool,
    /// Load in a task of its own (every argument is owned).
    pub(crate) detached: bool,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Form {
    Free,
    Method,
}

/// How one parameter becomes part of the key.
pub(crate) enum KeyPart {
    /// `x: T`: a clone of `x`.
    Owned { name: Ident, ty: Type },
    /// `x: &T`: `x.to_owned()`.
    Borrowed { name: Ident, ty: Type },
    /// `&self`: `self.to_owned()`.
    BorrowedSelf(syn::token::SelfValue),
    /// `self`: a clone of `self`.
    OwnedSelf(syn::token::SelfValue),
}

/// A parameter as a helper declares and forwards it.
pub(crate) enum Param {
    Receiver(Receiver),
    Typed { name: Ident, ty: Box<Type> },
}

impl Param {
    /// The parameter in a helper's signature.
    pub(crate) fn declaration(&self) -> TokenStream {
        match self {
            Param::Receiver(receiver) => receiver.to_token_stream(),
            Param::Typed { name, ty } => quote::quote!(#name: #ty),
        }
    }

    /// The argument that forwards it to the cached function.
    pub(crate) fn forward(&self) -> TokenStream {
        match self {
            Param::Receiver(receiver) => receiver.self_token.to_token_stream(),
            Param::Typed { name, .. } => name.to_token_stream(),
        }
    }
}

// Input:  `#[async_ttl(skip_args = 1)] async fn order(&self, id: u64) -> Result<Order, E>`
// Output: `Plan { form: Method, key_parts: [Owned(id)], result: true, detached: false, .. }`
pub(crate) fn plan(kind: Kind, item: &ItemFn, options: &Options) -> syn::Result<Plan> {
    let sig = &item.sig;
    let mut errors = Errors::default();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span(),
            format!(
                "#[{}] caches async functions only: make this an `async fn`",
                kind.name()
            ),
        ));
    }
    let arity = sig.inputs.len();
    let skip = options.skip_args.value;
    if skip > arity {
        errors.push(syn::Error::new(
            options.skip_args.span,
            format!(
                "`skip_args = {skip}` but `{}` has {arity} parameter{}: skip at most {arity}",
                sig.ident,
                if arity == 1 { "" } else { "s" }
            ),
        ));
    }
    let generics = type_generics(item);
    if let ReturnType::Type(_, ty) = &sig.output {
        if let Some(generic) = mentions_any(ty.to_token_stream(), &generics) {
            errors.push(syn::Error::new(
                ty.span(),
                format!(
                    "the return type depends on the generic parameter `{generic}`, but a cached \
                     function keeps one cache for all its instantiations: return a type that \
                     does not mention `{generic}`"
                ),
            ));
        }
    }

    let mut key_parts = Vec::new();
    if options.key.is_none() {
        for input in sig.inputs.iter().skip(skip) {
            match key_part(input, &generics) {
                Ok(part) => key_parts.push(part),
                Err(error) => errors.push(error),
            }
        }
    }
    let params = sig
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| param(i, input))
        .collect();

    let all_owned = item.sig.generics.params.is_empty()
        && sig.inputs.iter().all(|input| match input {
            FnArg::Receiver(_) => false,
            FnArg::Typed(typed) => is_owned(&typed.ty),
        });
    if options.detached == Some(true) && !all_owned {
        errors.push(syn::Error::new(
            sig.ident.span(),
            "`detached = true` needs every argument owned and `'static` (no references, \
             receivers, lifetimes or generic parameters), so the load can outlive this call",
        ));
    }
    errors.finish()?;

    let mentions_self = sig
        .inputs
        .iter()
        .any(|input| matches!(input, FnArg::Receiver(_)))
        || mentions(sig.to_token_stream(), |ident| ident == "Self");
    Ok(Plan {
        form: if mentions_self {
            Form::Method
        } else {
            Form::Free
        },
        key_parts,
        params,
        result: options
            .result
            .unwrap_or_else(|| returns_result(&sig.output)),
        detached: options.detached.unwrap_or(all_owned),
    })
}

fn key_part(input: &FnArg, generics: &[Ident]) -> syn::Result<KeyPart> {
    let cannot = |span: Span, what: &str| {
        syn::Error::new(
            span,
            format!(
                "{what}, so it cannot be part of the cache key: leave it out with `skip_args = N` \
                 (the first N parameters) or key the call yourself with `key = <expression>`"
            ),
        )
    };
    match input {
        FnArg::Receiver(receiver) => match (&receiver.reference, &receiver.mutability) {
            _ if receiver.colon_token.is_some() => Err(cannot(
                receiver.span(),
                "a typed receiver such as `self: Arc<Self>` is not keyed by value",
            )),
            (Some(_), Some(_)) => Err(cannot(
                receiver.span(),
                "`&mut self` may change between calls",
            )),
            (Some(_), None) => Ok(KeyPart::BorrowedSelf(receiver.self_token)),
            (None, _) => Ok(KeyPart::OwnedSelf(receiver.self_token)),
        },
        FnArg::Typed(PatType { pat, ty, .. }) => {
            let Pat::Ident(pat_ident) = &**pat else {
                return Err(cannot(
                    pat.span(),
                    "this parameter is a pattern with no single name",
                ));
            };
            if pat_ident.subpat.is_some() || pat_ident.by_ref.is_some() {
                return Err(cannot(pat.span(), "this parameter binds by pattern"));
            }
            let name = pat_ident.ident.clone();
            if mentions(ty.to_token_stream(), |ident| ident == "impl") {
                return Err(cannot(
                    ty.span(),
                    &format!("`{name}` has an `impl Trait` type"),
                ));
            }
            if mentions(ty.to_token_stream(), |ident| ident == "dyn") {
                return Err(cannot(
                    ty.span(),
                    &format!("`{name}` has a `dyn Trait` type"),
                ));
            }
            if let Some(generic) = mentions_any(ty.to_token_stream(), generics) {
                return Err(cannot(
                    ty.span(),
                    &format!(
                        "`{name}` has the generic type `{generic}` and a cached function keeps \
                         one cache for all its instantiations"
                    ),
                ));
            }
            match &**ty {
                Type::Reference(reference) if reference.mutability.is_some() => {
                    Err(cannot(ty.span(), &format!("`{name}` is a mutable borrow")))
                }
                Type::Reference(reference) => Ok(KeyPart::Borrowed {
                    name,
                    ty: (*reference.elem).clone(),
                }),
                ty => Ok(KeyPart::Owned {
                    name,
                    ty: ty.clone(),
                }),
            }
        }
    }
}

fn param(index: usize, input: &FnArg) -> Param {
    match input {
        FnArg::Receiver(receiver) => Param::Receiver(receiver.clone()),
        FnArg::Typed(PatType { pat, ty, .. }) => Param::Typed {
            name: match &**pat {
                Pat::Ident(pat_ident) if pat_ident.subpat.is_none() => pat_ident.ident.clone(),
                _ => format_ident!("__cache_arg{}", index),
            },
            ty: ty.clone(),
        },
    }
}

fn type_generics(item: &ItemFn) -> Vec<Ident> {
    item.sig
        .generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(ty) => Some(ty.ident.clone()),
            GenericParam::Lifetime(_) | GenericParam::Const(_) => None,
        })
        .collect()
}

/// Whether a type can move into a task of its own: no borrows, lifetimes or opaque types.
fn is_owned(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().all(|tree| match tree {
            TokenTree::Punct(punct) => punct.as_char() != '&' && punct.as_char() != '\'',
            TokenTree::Ident(ident) => ident != "impl" && ident != "dyn",
            TokenTree::Group(group) => walk(group.stream()),
            TokenTree::Literal(_) => true,
        })
    }
    walk(ty.to_token_stream())
}

fn mentions(tokens: TokenStream, matches: impl Fn(&Ident) -> bool + Copy) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => matches(&ident),
        TokenTree::Group(group) => mentions(group.stream(), matches),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

fn mentions_any(tokens: TokenStream, idents: &[Ident]) -> Option<&Ident> {
    idents
        .iter()
        .find(|generic| mentions(tokens.clone(), |ident| ident == *generic))
}

/// `Result<T, E>`, `io::Result<T>` or any other path ending in `Result`.
fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) => path
                .path
                .segments
                .last()
                .is_some_and(|segment| segment.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}
