//! The rules a cached function's signature must follow, and how its arguments form a key.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, Pat, PatType, Receiver, ReturnType, Signature, Type};

use crate::args::{Errors, WithSpan};

/// What an expansion needs to know about a signature that follows the rules.
pub struct Analysis {
    /// How each non-skipped parameter enters the default key (empty with a custom key).
    pub key_parts: Vec<KeyPart>,
    /// Every parameter as a generated helper declares and forwards it.
    pub params: Vec<Param>,
    /// Every argument is owned and `'static` (no references, receiver, lifetimes or generics),
    /// so a load can run in a task of its own.
    pub all_owned: bool,
    /// It has a receiver or mentions `Self`: it lives in an `impl`.
    pub is_method: bool,
    /// The return type is a path ending in `Result`.
    pub returns_result: bool,
}

/// How one parameter becomes part of the key.
pub enum KeyPart {
    /// `x: T`: a clone of `x`.
    Owned {
        /// The parameter.
        name: Ident,
        /// Its type.
        ty: Type,
    },
    /// `x: &T`: `x.to_owned()`.
    Borrowed {
        /// The parameter.
        name: Ident,
        /// The borrowed type, `T`.
        ty: Type,
    },
    /// `&self`: a clone of `*self`.
    BorrowedSelf(syn::token::SelfValue),
    /// `self`: a clone of `self`.
    OwnedSelf(syn::token::SelfValue),
}

/// A parameter as a generated helper declares and forwards it: patterns replaced by names,
/// `mut` dropped.
pub enum Param {
    /// `self`, `&self`, ...
    Receiver(Receiver),
    /// `name: Type`.
    Typed {
        /// The parameter's name, or `__cache_argN` for a pattern.
        name: Ident,
        /// Its type.
        ty: Box<Type>,
    },
}

impl Param {
    /// The parameter in a helper's signature.
    pub fn declaration(&self) -> TokenStream {
        match self {
            Param::Receiver(receiver) => receiver.to_token_stream(),
            Param::Typed { name, ty } => quote!(#name: #ty),
        }
    }

    /// The argument that forwards it.
    pub fn forward(&self) -> TokenStream {
        match self {
            Param::Receiver(receiver) => receiver.self_token.to_token_stream(),
            Param::Typed { name, .. } => name.to_token_stream(),
        }
    }
}

// Input:  `async fn order(&self, id: u64) -> Result<Order, E>` with `skip_args = 1`
// Output: `Analysis { key_parts: [Owned(id)], is_method: true, returns_result: true, .. }`
/// Checks the rules every cached function follows (it is `async`, `skip_args` fits its
/// arity, its return type does not depend on its generics, and, unless `custom_key`, every
/// non-skipped argument can be keyed), pushing each violation to `errors`.
pub fn analyse(
    attribute: &str,
    sig: &Signature,
    skip: WithSpan<usize>,
    custom_key: bool,
    errors: &mut Errors,
) -> Analysis {
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span(),
            format!("#[{attribute}] applies to async functions only: make this an `async fn`"),
        ));
    }
    let arity = sig.inputs.len();
    if skip.value > arity {
        errors.push(syn::Error::new(
            skip.span,
            format!(
                "`skip_args = {}` but `{}` has {arity} parameter{}: skip at most {arity}",
                skip.value,
                sig.ident,
                if arity == 1 { "" } else { "s" }
            ),
        ));
    }
    let generics = type_generics(sig);
    if let ReturnType::Type(_, ty) = &sig.output
        && let Some(generic) = mentions_any(ty.to_token_stream(), &generics)
    {
        errors.push(syn::Error::new(
            ty.span(),
            format!(
                "the return type depends on the generic parameter `{generic}`, but a cached \
                     function keeps one cache for all its instantiations: return a type that \
                     does not mention `{generic}`"
            ),
        ));
    }
    let mut key_parts = Vec::new();
    if !custom_key {
        for input in sig.inputs.iter().skip(skip.value) {
            match key_part(input, &generics) {
                Ok(part) => key_parts.push(part),
                Err(error) => errors.push(error),
            }
        }
    }
    Analysis {
        key_parts,
        params: sig
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| param(i, input))
            .collect(),
        all_owned: sig.generics.params.is_empty()
            && sig.inputs.iter().all(|input| match input {
                FnArg::Receiver(_) => false,
                FnArg::Typed(typed) => is_owned(&typed.ty),
            }),
        is_method: sig
            .inputs
            .iter()
            .any(|input| matches!(input, FnArg::Receiver(_)))
            || mentions(sig.to_token_stream(), |ident| ident == "Self"),
        returns_result: returns_result(&sig.output),
    }
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

fn type_generics(sig: &Signature) -> Vec<Ident> {
    sig.generics
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

/// Whether `tokens` contain an identifier that `matches`.
pub fn mentions(tokens: TokenStream, matches: impl Fn(&Ident) -> bool + Copy) -> bool {
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
