//! Code that both expansions generate the same way. `runtime` is the path of the runtime
//! crate's hidden module (`::cache_core::__private`), the only way expansions reach it.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, ReturnType, Signature, Type};

use crate::args::RawArgs;
use crate::signature::KeyPart;

/// The entry point both attributes share: parses the item as a function and the arguments,
/// then calls `expand`. On any error the item is emitted as written plus the error, so that
/// the rest of the crate keeps compiling.
pub fn expand_fn(
    attribute: &str,
    args: TokenStream,
    item: TokenStream,
    expand: impl FnOnce(RawArgs, &ItemFn) -> syn::Result<TokenStream>,
) -> TokenStream {
    let Ok(item_fn) = syn::parse2::<ItemFn>(item.clone()) else {
        let error = syn::Error::new(
            Span::call_site(),
            format!("#[{attribute}] applies to an `async fn`"),
        );
        return with_error(item, &error);
    };
    match syn::parse2::<RawArgs>(args).and_then(|args| expand(args, &item_fn)) {
        Ok(tokens) => tokens,
        Err(error) => with_error(item, &error),
    }
}

/// The item as written plus the error, so that the rest of the crate keeps compiling.
pub fn with_error(item: TokenStream, error: &syn::Error) -> TokenStream {
    let mut tokens = item;
    tokens.extend(error.to_compile_error());
    tokens
}

/// The `#[cfg]`s of an item, to repeat on everything generated beside it.
pub fn cfgs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"))
        .collect()
}

/// A name for a binding of the expansion's own: hygienic, and with a reserved prefix because
/// a `let` pattern would still match a user's constant of the same name.
pub fn binding(name: &str) -> syn::Ident {
    syn::Ident::new(&format!("__cache_{name}"), Span::mixed_site())
}

// Input:  `id: u64, name: &str` (the non-skipped parameters)
// Output: `(key_part(&id), borrowed_key_part::<str>(name))`, or one part alone
/// The key of one call: the owned non-skipped arguments, one alone, several as a tuple. Each
/// part is spanned at its parameter, so a type that cannot be keyed is reported there.
pub fn key_expr(runtime: &TokenStream, parts: &[KeyPart]) -> TokenStream {
    key_expr_through(runtime, parts, quote!(key_part), quote!(borrowed_key_part))
}

// Input:  `id: u64, name: &str`
// Output: `(fleet_key_part(&id), fleet_borrowed_key_part::<str>(name))`
/// [`key_expr`] for a cache whose keys cross processes: each part must also be serde
/// `Serialize + DeserializeOwned`, and a part that is not is reported at its parameter.
pub fn fleet_key_expr(runtime: &TokenStream, parts: &[KeyPart]) -> TokenStream {
    key_expr_through(
        runtime,
        parts,
        quote!(fleet_key_part),
        quote!(fleet_borrowed_key_part),
    )
}

fn key_expr_through(
    runtime: &TokenStream,
    parts: &[KeyPart],
    owned: TokenStream,
    borrowed: TokenStream,
) -> TokenStream {
    let parts: Vec<TokenStream> = parts
        .iter()
        .map(|part| match part {
            KeyPart::Owned { name, ty } => {
                quote_spanned!(ty.span()=> #runtime::#owned(&#name))
            }
            KeyPart::Borrowed { name, ty } => {
                quote_spanned!(ty.span()=> #runtime::#borrowed::<#ty>(#name))
            }
            // A clone of `*self` (`Self` is sized), so a missing bound names the key first.
            KeyPart::BorrowedSelf(self_token) => {
                quote_spanned!(self_token.span()=> #runtime::#owned::<Self>(#self_token))
            }
            KeyPart::OwnedSelf(self_token) => {
                quote_spanned!(self_token.span()=> #runtime::#owned(&#self_token))
            }
        })
        .collect();
    match parts.as_slice() {
        [one] => one.clone(),
        parts => quote!((#(#parts,)*)),
    }
}

// Input:  `-> u64`
// Output: `if false { let __cache_fake_return: u64 = loop {}; return __cache_fake_return; }`
/// Pins an `async move` block's output to the declared return type, so that a type error in
/// the body points at the user's code rather than at the expansion (the approach of
/// `tracing-attributes`). `impl Trait` cannot be named in a `let`, so it is left alone.
pub fn pin_output(sig: &Signature) -> TokenStream {
    let ty: Type = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => syn::parse_quote!(()),
    };
    if contains_impl_trait(&ty) {
        return TokenStream::new();
    }
    let fake = binding("fake_return");
    quote_spanned! {ty.span()=>
        #[allow(
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    }
}

/// Where the return type is written, for errors about it.
pub fn return_span(sig: &Signature) -> Span {
    match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    }
}

// Input:  `result` (a `Result<V, Arc<E>>` from `try_get_with`)
// Output: `match result { Ok(v) => Ok(v), Err(e) => Err(<e handed to this caller>) }`
/// Converts a coalesced load's `Result<V, Arc<E>>` into the function's `Result<V, E>`: the
/// original error when this caller held the only reference, otherwise by the first tier of
/// `unshare` that `E` allows (clone, `From<SharedError>`, `io::Error`), chosen at compile
/// time by autoref specialisation; spanned at the return type.
pub fn unshare_result(runtime: &TokenStream, sig: &Signature, result: TokenStream) -> TokenStream {
    let (value, error, shared) = (binding("value"), binding("error"), binding("shared"));
    let unshare = quote_spanned! {return_span(sig)=>
        #runtime::unshare::Unshare(#error).into_inner_or(|#shared| {
            #[allow(unused_imports)]
            use #runtime::unshare::{Unsupported as _, ViaClone as _, ViaFrom as _, ViaIo as _};
            (&&#shared).unshare()
        })
    };
    quote! {
        match #result {
            ::core::result::Result::Ok(#value) => ::core::result::Result::Ok(#value),
            ::core::result::Result::Err(#error) => ::core::result::Result::Err(#unshare),
        }
    }
}

/// Whether `ty` mentions `impl Trait` anywhere, so that it cannot be named in a `let` or a
/// helper's signature.
pub fn contains_impl_trait(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(ty.to_token_stream())
}
