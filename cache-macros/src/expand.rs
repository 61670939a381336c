//! Code generation: the cached function, then its helpers.

use cache_attr::args::Engine;
use cache_attr::signature::KeyPart;
use cache_attr::tokens::{self, binding};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::{Attribute, ItemFn};

use crate::attr::{Kind, Options};
use crate::validate::{Form, Plan, plan};

/// Entry point of both attributes.
pub(crate) fn cached(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    tokens::expand_fn(kind.name(), args, item, |args, item| {
        let options = Options::from_args(kind, args)?;
        let plan = plan(kind, item, &options)?;
        Ok(Expansion::new(kind, item, &options, &plan).tokens())
    })
}

/// The path through which expansions reach the runtime.
fn runtime() -> TokenStream {
    quote!(::cache_core::__private)
}

struct Expansion<'a> {
    kind: Kind,
    item: &'a ItemFn,
    options: &'a Options,
    plan: &'a Plan,
    /// The `#[cfg]`s of the function, repeated on every generated item.
    cfgs: Vec<&'a Attribute>,
    cache: syn::Ident,
    key: syn::Ident,
}

impl<'a> Expansion<'a> {
    fn new(kind: Kind, item: &'a ItemFn, options: &'a Options, plan: &'a Plan) -> Self {
        Expansion {
            kind,
            item,
            options,
            plan,
            cfgs: tokens::cfgs(&item.attrs),
            cache: binding("cache"),
            key: binding("key"),
        }
    }

    fn tokens(&self) -> TokenStream {
        let function = self.function();
        let helpers = match self.plan.form {
            Form::Free => self.helper_module(),
            Form::Method => self.helper_methods(),
        };
        quote!(#function #helpers)
    }

    /// The path of the function's `CacheSlot`.
    fn slot(&self) -> TokenStream {
        let name = &self.item.sig.ident;
        match self.plan.form {
            Form::Free => quote!(#name::__CACHE_SLOT),
            Form::Method => {
                let slot_fn = self.slot_fn();
                quote!(Self::#slot_fn())
            }
        }
    }

    fn slot_fn(&self) -> syn::Ident {
        format_ident!("__cache_slot_{}", self.item.sig.ident)
    }

    // Input:  `async fn user(id: u64) -> User { body }`
    // Output: `async fn user(id: u64) -> User {
    //              let cache = user::__CACHE_SLOT
    //                  .get_or_init(|| build(128, None, None, Freshness::NONE));
    //              let key = key_part(&id);
    //              cache.get_with_detached(key, async move { body }).await
    //          }`
    //         (with `fleet = "users"`: `build_fleet(128, None, None, "users", ..)` and
    //         `fleet_key_part(&id)`)
    fn function(&self) -> TokenStream {
        let ItemFn {
            attrs, vis, sig, ..
        } = self.item;
        let (cache, key) = (&self.cache, &self.key);
        let slot = self.slot();
        let key_expr = self.key_expr();
        let hit = self.hit();
        let call = self.call();
        let build = self.build();
        quote! {
            #(#attrs)*
            #vis #sig {
                let #cache = #slot.get_or_init(|| #build);
                #hit
                let #key = #key_expr;
                #call
            }
        }
    }

    // Input:  the options
    // Output: `build(128, None, None)`, or with `fleet = "users"`:
    //         `build_fleet(128, None, None, "users")`
    /// The expression that builds the function's cache, on first use.
    fn build(&self) -> TokenStream {
        let maxsize = self.options.maxsize;
        let ttl = match self.options.ttl_nanos {
            Some(nanos) => quote!(::core::option::Option::Some(#nanos)),
            None => quote!(::core::option::Option::None),
        };
        let engine = Engine::tokens(self.options.engine, &runtime());
        let fresh = self.freshness();
        // Spanned as the call they go into: the key and value types are inferred through them.
        let span = match &self.options.fleet {
            None => Span::call_site(),
            Some(_) if self.shared() => tokens::return_span(&self.item.sig),
            Some(name) => name.span(),
        };
        let hooks = self.evict_hooks(span);
        match &self.options.fleet {
            None => quote!(::cache_core::__private::build(#maxsize, #ttl, #engine, #fresh, #hooks)),
            // Spanned at the return type, where a value that cannot cross processes is.
            Some(name) if self.shared() => {
                let version = self.options.version.map_or(0, |version| version.value);
                quote_spanned! {tokens::return_span(&self.item.sig)=>
                    ::cache_core::__private::build_fleet_shared(
                        #maxsize, #ttl, #engine, #name, #version, #fresh, #hooks,
                    )
                }
            }
            // Spanned at the name, so a key type that cannot cross processes (`key = ...`) is
            // reported at the option that made it have to.
            Some(name) => quote_spanned! {name.span()=>
                ::cache_core::__private::build_fleet(
                    #maxsize, #ttl, #engine, #name, #fresh, #hooks,
                )
            },
        }
    }

    // Input:  `id: u64, name: &str` (the non-skipped parameters) and `-> Result<User, E>`
    // Output: `(u64, <str as ToOwned>::Owned)` and `<Result<User, E> as OkType>::Ok`
    /// The cache's key and value types, spelled from the signature (for `snapshot = true`,
    /// whose helpers have no arguments to infer them from). They are the types a call's key
    /// and body have, so both reach the same cache.
    fn cache_types(&self) -> (TokenStream, TokenStream) {
        let parts: Vec<TokenStream> = self
            .plan
            .key_parts
            .iter()
            .map(|part| match part {
                KeyPart::Owned { ty, .. } => quote!(#ty),
                KeyPart::Borrowed { ty, .. } => quote!(<#ty as ::std::borrow::ToOwned>::Owned),
                KeyPart::BorrowedSelf(_) | KeyPart::OwnedSelf(_) => quote!(Self),
            })
            .collect();
        let key = match parts.as_slice() {
            [one] => one.clone(),
            parts => quote!((#(#parts,)*)),
        };
        let output = match &self.item.sig.output {
            syn::ReturnType::Type(_, ty) => quote!(#ty),
            syn::ReturnType::Default => quote!(()),
        };
        let value = if self.plan.result {
            quote!(<#output as ::cache_core::__private::OkType>::Ok)
        } else {
            output
        };
        (key, value)
    }

    // Input:  the slot's path, `snapshot = true`
    // Output: `pub fn snapshot(writer: impl Write) -> Result<usize, SnapshotError>;
    //          pub fn restore(reader: impl Read) -> Result<RestoreReport, SnapshotError>;`
    /// The warm-restart helpers, named `snapshot` and `restore` (prefixed by the method's
    /// name in an `impl`).
    fn snapshot_helpers(&self, slot: &TokenStream, prefix: Option<&syn::Ident>) -> TokenStream {
        if !self.plan.snapshot {
            return TokenStream::new();
        }
        let (key, value) = self.cache_types();
        let build = self.build();
        let span = self
            .options
            .snapshot
            .map_or_else(Span::call_site, |snapshot| snapshot.span);
        let (snapshot, restore) = match prefix {
            None => (format_ident!("snapshot"), format_ident!("restore")),
            Some(name) => (
                format_ident!("{}_snapshot", name),
                format_ident!("{}_restore", name),
            ),
        };
        let vis = match prefix {
            None => quote!(pub),
            Some(_) => self.item.vis.to_token_stream(),
        };
        let cfgs = match prefix {
            None => Vec::new(),
            Some(_) => self.cfgs.clone(),
        };
        let note = self.doc_note();
        // Spanned at `snapshot = true`, so that a key or value type serde cannot handle is
        // reported at the option that needs it.
        let cache = quote_spanned! {span=>
            #slot.get_or_init::<#key, #value>(|| #build)
        };
        let write = quote_spanned!(span=> ::cache_core::__private::snapshot(#cache, writer));
        let read = quote_spanned!(span=> ::cache_core::__private::restore(#cache, reader));
        quote! {
            #(#cfgs)*
            /// Writes the cache's live entries, with the time each has left, to `writer`, for
            /// `restore` to read back after a restart. Returns how many it wrote.
            #[doc = #note]
            ///
            /// # Errors
            ///
            /// When writing fails or an entry cannot be serialized.
            #vis fn #snapshot(
                writer: impl ::std::io::Write,
            ) -> ::core::result::Result<usize, ::cache_core::SnapshotError> {
                #write
            }

            #(#cfgs)*
            /// Fills the cache from a snapshot written by `snapshot`: each entry with the time
            /// it had left less the time since, expired ones dropped, live values here kept.
            #[doc = #note]
            ///
            /// # Errors
            ///
            /// A snapshot of another cache (types, schema version, format) or one that cannot
            /// be read or decoded: nothing is restored.
            #vis fn #restore(
                reader: impl ::std::io::Read,
            ) -> ::core::result::Result<::cache_core::RestoreReport, ::cache_core::SnapshotError> {
                #read
            }
        }
    }

    // Input:  a key that is one argument, `name: &str` (or `name: String`, `&self`, ...)
    // Output: `if let Some(value) = hit(cache, name) { return value; }` (`Ok(value)` for a
    //         `Result`), so that a hit never builds the owned key: no `to_owned`, no clone.
    /// A hit looked up by the borrowed key, for a key that is one argument; nothing for a
    /// tuple of arguments (a tuple of owned parts cannot be looked up by borrowed ones) or a
    /// `key = ...` expression.
    fn hit(&self) -> TokenStream {
        let ([part], None) = (self.plan.key_parts.as_slice(), &self.options.key) else {
            return TokenStream::new();
        };
        if self.options.refresh_after.is_some() {
            // The detached call's own lookup starts the background reload of an old entry.
            return TokenStream::new();
        }
        let probe = match part {
            KeyPart::Owned { name, .. } => quote!(&#name),
            KeyPart::Borrowed { name, .. } => quote!(#name),
            KeyPart::BorrowedSelf(self_token) => quote!(#self_token),
            KeyPart::OwnedSelf(self_token) => quote!(&#self_token),
        };
        let cache = &self.cache;
        let value = binding("value");
        let output = if self.plan.result {
            quote!(::core::result::Result::Ok(#value))
        } else {
            quote!(#value)
        };
        quote! {
            if let ::core::option::Option::Some(#value) =
                ::cache_core::__private::hit(#cache, #probe)
            {
                return #output;
            }
        }
    }

    // Input:  `refresh_after = 30, time_to_idle = 5` (or none of the freshness options)
    // Output: `Freshness { refresh_after: Some(30_000_000_000), stale_on_error: None,
    //                      time_to_idle: Some(5_000_000_000) }` (or `Freshness::NONE`)
    // Input:  `weigher = page_bytes, on_evict = log_eviction`
    // Output: `EvictHooks { weigher: Some(page_bytes), on_evict: Some(log_eviction) }`
    /// The weigher and the eviction listener, each spanned at its option so that a function
    /// of the wrong signature is reported there.
    fn evict_hooks(&self, span: Span) -> TokenStream {
        let hook = |option: &Option<syn::Expr>| match option {
            Some(path) => {
                quote_spanned!(syn::spanned::Spanned::span(path)=> ::core::option::Option::Some(#path))
            }
            None => quote!(::core::option::Option::None),
        };
        if self.options.weigher.is_none() && self.options.on_evict.is_none() {
            return quote_spanned!(span=> ::cache_core::__private::EvictHooks::NONE);
        }
        let (weigher, on_evict) = (hook(&self.options.weigher), hook(&self.options.on_evict));
        // With the cache's types spelled out, a hook of the wrong signature is a mismatch at
        // the hook; left to inference, it would decide the value type and fail the body.
        let sig = &self.item.sig;
        let nameable = sig.generics.params.is_empty()
            && self.options.key.is_none()
            && !matches!(&sig.output, syn::ReturnType::Type(_, ty)
                if cache_attr::tokens::contains_impl_trait(ty));
        let types = if nameable {
            let (key, value) = self.cache_types();
            quote!(::<#key, #value>)
        } else {
            TokenStream::new()
        };
        quote_spanned! {span=>
            ::cache_core::__private::EvictHooks #types { weigher: #weigher, on_evict: #on_evict }
        }
    }

    fn freshness(&self) -> TokenStream {
        let nanos = |option: Option<cache_attr::args::WithSpan<u64>>| match option {
            Some(option) => {
                let nanos = option.value;
                quote!(::core::option::Option::Some(#nanos))
            }
            None => quote!(::core::option::Option::None),
        };
        let options = &self.options;
        if options.refresh_after.is_none()
            && options.stale_on_error.is_none()
            && options.time_to_idle.is_none()
        {
            return quote!(::cache_core::__private::Freshness::NONE);
        }
        let (refresh, stale, idle) = (
            nanos(options.refresh_after),
            nanos(options.stale_on_error),
            nanos(options.time_to_idle),
        );
        quote! {
            ::cache_core::__private::Freshness {
                refresh_after: #refresh,
                stale_on_error: #stale,
                time_to_idle: #idle,
            }
        }
    }

    /// The key of one call: the `key = ...` expression, or the owned non-skipped arguments.
    fn key_expr(&self) -> TokenStream {
        match &self.options.key {
            Some(key) => key.to_token_stream(),
            None if self.options.fleet.is_some() => {
                tokens::fleet_key_expr(&runtime(), &self.plan.key_parts)
            }
            None => tokens::key_expr(&runtime(), &self.plan.key_parts),
        }
    }

    // Input:  the body `{ stmts }` and the return type `R`
    // Output: `cache.get_with(key, async move { stmts }).await`, or for `Result<T, E>`:
    //         `match cache.try_get_with(key, ...).await { Ok(v) => Ok(v),
    //                                                    Err(e) => Err(unshare_error(e)) }`
    fn call(&self) -> TokenStream {
        let (cache, key) = (&self.cache, &self.key);
        let stmts = &self.item.block.stmts;
        let pin_output = tokens::pin_output(&self.item.sig);
        let body = quote!(async move { #pin_output #(#stmts)* });
        let method = match (self.plan.result, self.plan.detached) {
            (false, false) => "get_with",
            (false, true) => "get_with_detached",
            (true, false) => "try_get_with",
            (true, true) => "try_get_with_detached",
        };
        let method = syn::Ident::new(method, Span::call_site());
        let call = quote!(#cache.#method(#key, #body).await);
        if self.plan.result {
            tokens::unshare_result(&runtime(), &self.item.sig, call)
        } else {
            call
        }
    }

    fn doc_note(&self) -> String {
        format!(
            "Generated by `#[{}]` on [`{}`].",
            self.kind.name(),
            self.item.sig.ident
        )
    }

    // Input:  `pub async fn user(id: u64, name: &str) -> User`
    // Output: `pub mod user { pub fn invalidate(id: u64, name: &str); pub fn clear();
    //                         pub fn metrics() -> CacheMetrics;
    //                         pub async fn refresh(id: u64, name: &str) -> User; }`
    fn helper_module(&self) -> TokenStream {
        let ItemFn { vis, sig, .. } = self.item;
        let name = &sig.ident;
        let cfgs = &self.cfgs;
        let key_expr = self.key_expr();
        let (generics, where_clause) = (&sig.generics, &sig.generics.where_clause);
        let key_params = self.declarations(self.options.skip_args.value);
        let all_params = self.declarations(0);
        let forward = self.plan.params.iter().map(|param| param.forward());
        let output = &sig.output;
        let unsafety = &sig.unsafety;
        let module_doc = format!(
            "Cache helpers of [`{name}`](fn@{name}): invalidate one call, clear, read the metrics, \
             refresh. {}",
            self.doc_note()
        );
        let errors_doc = self.errors_doc();
        let invalidate = self.invalidate(&quote!(__CACHE_SLOT), &key_expr);
        let clear = self.clear(&quote!(__CACHE_SLOT));
        let snapshot = self.snapshot_helpers(&quote!(__CACHE_SLOT), None);
        quote! {
            #(#cfgs)*
            #[doc = #module_doc]
            #vis mod #name {
                #[allow(unused_imports)]
                use super::*;

                #[doc(hidden)]
                pub(super) static __CACHE_SLOT: ::cache_core::__private::CacheSlot =
                    ::cache_core::__private::CacheSlot::new();

                /// Removes the cached value of these arguments. A call already loading them
                /// cannot store its value; the next call loads afresh.
                #[allow(unused_variables, clippy::needless_pass_by_value)]
                pub fn invalidate #generics (#(#key_params),*) #where_clause {
                    #invalidate
                }

                /// Removes every cached value and fences every load in flight.
                pub fn clear() {
                    #clear
                }

                /// A snapshot of the cache's metrics (all zero before the first call).
                #[must_use]
                pub fn metrics() -> ::cache_core::CacheMetrics {
                    __CACHE_SLOT.metrics()
                }

                /// Calls the function without reading the cache and caches what it returns.
                #errors_doc
                #[allow(deprecated)]
                pub #unsafety async fn refresh #generics (#(#all_params),*) #output #where_clause {
                    #invalidate
                    super::#name(#(#forward),*).await
                }

                #snapshot
            }
        }
    }

    // Input:  `pub async fn order(&self, id: u64) -> Result<Order, E>` (skip_args = 1)
    // Output: `fn __cache_slot_order() -> &'static CacheSlot;
    //          pub fn order_invalidate(id: u64); pub fn order_clear();
    //          pub fn order_metrics() -> CacheMetrics;
    //          pub async fn order_refresh(&self, id: u64) -> Result<Order, E>;`
    fn helper_methods(&self) -> TokenStream {
        let ItemFn { vis, sig, .. } = self.item;
        let name = &sig.ident;
        let cfgs = &self.cfgs;
        let key_expr = self.key_expr();
        let (generics, where_clause) = (&sig.generics, &sig.generics.where_clause);
        let key_params = self.declarations(self.options.skip_args.value);
        let all_params = self.declarations(0);
        let forward = self.plan.params.iter().map(|param| param.forward());
        let output = &sig.output;
        let unsafety = &sig.unsafety;
        let slot_fn = self.slot_fn();
        let [invalidate, clear, metrics, refresh] = ["invalidate", "clear", "metrics", "refresh"]
            .map(|helper| format_ident!("{}_{}", name, helper));
        let note = self.doc_note();
        let errors_doc = self.errors_doc();
        let invalidate_call = self.invalidate(&quote!(Self::#slot_fn()), &key_expr);
        let clear_call = self.clear(&quote!(Self::#slot_fn()));
        let snapshot = self.snapshot_helpers(&quote!(Self::#slot_fn()), Some(name));
        quote! {
            #(#cfgs)*
            #[doc(hidden)]
            fn #slot_fn() -> &'static ::cache_core::__private::CacheSlot {
                static SLOT: ::cache_core::__private::CacheSlot = ::cache_core::__private::CacheSlot::new();
                &SLOT
            }

            #(#cfgs)*
            /// Removes the cached value of these arguments. A call already loading them cannot
            /// store its value; the next call loads afresh.
            #[doc = #note]
            #[allow(unused_variables, clippy::needless_pass_by_value)]
            #vis fn #invalidate #generics (#(#key_params),*) #where_clause {
                #invalidate_call
            }

            #(#cfgs)*
            /// Removes every cached value and fences every load in flight.
            #[doc = #note]
            #vis fn #clear() {
                #clear_call
            }

            #(#cfgs)*
            /// A snapshot of the cache's metrics (all zero before the first call).
            #[doc = #note]
            #[must_use]
            #vis fn #metrics() -> ::cache_core::CacheMetrics {
                Self::#slot_fn().metrics()
            }

            #(#cfgs)*
            /// Calls the method without reading the cache and caches what it returns.
            #[doc = #note]
            #errors_doc
            #[allow(deprecated)]
            #vis #unsafety async fn #refresh #generics (#(#all_params),*) #output #where_clause {
                #invalidate_call
                Self::#name(#(#forward),*).await
            }

            #snapshot
        }
    }

    // Input:  the slot's path and the key expression
    // Output: `slot.invalidate(&key);`, or with `fleet = "users"`:
    //         `slot.invalidate_in_fleet(&key, "users");`
    /// A helper's invalidation of one key. A fleet cache also tells the other processes when
    /// this one has not built its cache yet (it never called the function).
    fn invalidate(&self, slot: &TokenStream, key_expr: &TokenStream) -> TokenStream {
        match &self.options.fleet {
            None => quote!(#slot.invalidate(&#key_expr);),
            Some(name) if self.shared() => {
                quote!(#slot.invalidate_in_shared_fleet(&#key_expr, #name);)
            }
            Some(name) => quote!(#slot.invalidate_in_fleet(&#key_expr, #name);),
        }
    }

    fn shared(&self) -> bool {
        self.options.shared.is_some_and(|shared| shared.value)
    }

    // Input:  the slot's path
    // Output: `slot.clear();`, or `slot.clear_in_fleet("users");`
    fn clear(&self, slot: &TokenStream) -> TokenStream {
        match &self.options.fleet {
            None => quote!(#slot.clear();),
            Some(name) if self.shared() => quote!(#slot.clear_in_shared_fleet(#name);),
            Some(name) => quote!(#slot.clear_in_fleet(#name);),
        }
    }

    fn declarations(&self, skip: usize) -> Vec<TokenStream> {
        self.plan
            .params
            .iter()
            .skip(skip)
            .map(|param| param.declaration())
            .collect()
    }

    fn errors_doc(&self) -> TokenStream {
        if self.plan.result {
            quote!(#[doc = "\n# Errors\n\nThe function's own error, as a call returns it."])
        } else {
            TokenStream::new()
        }
    }
}
