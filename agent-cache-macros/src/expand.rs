//! Code generation for both attributes.

use cache_attr::args::{Engine, Errors};
use cache_attr::signature::{self, Analysis, KeyPart};
use cache_attr::tokens::{self, binding};
use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::ItemFn;

use crate::attr::{Kind, Options, Scope};
use crate::mcp::{self, McpPlan};
use crate::validate::{Template, template};

/// Entry point of both attributes: an rmcp `#[tool]` method, or any other `async fn`.
pub(crate) fn tool(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    tokens::expand_fn(kind.name(), args, item, |args, item| {
        let options = Options::from_args(kind, args)?;
        if let Some(index) = mcp::tool_attribute(item) {
            return Ok(McpPlan::new(kind, item, options, index)?.expand(item));
        }
        if let Some(error) = mcp::below_tool(kind, item) {
            return Err(error);
        }
        Ok(Plan::new(kind, item, options)?.expand(item))
    })
}

/// A read's resource may not name a parameter that `skip_args` leaves out of the key: calls
/// for two of its values would share one entry, one instance served for another.
fn check_keyed(
    template: &Template,
    resource: &syn::LitStr,
    item: &ItemFn,
    skip: usize,
    errors: &mut Errors,
) {
    let skipped: Vec<&syn::Ident> = item
        .sig
        .inputs
        .iter()
        .take(skip)
        .filter_map(|input| match input {
            syn::FnArg::Typed(typed) => match &*typed.pat {
                syn::Pat::Ident(pat) => Some(&pat.ident),
                _ => None,
            },
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    for param in &template.params {
        if skipped.contains(&param) {
            errors.push(syn::Error::new(
                resource.span(),
                format!(
                    "resource \"{}\" names `{{{param}}}`, which `skip_args` leaves out of the \
                     key: calls for two values of `{param}` would share one cached entry; keep \
                     `{param}` in the key (lower `skip_args`) or drop it from the resource",
                    resource.value()
                ),
            ));
        }
    }
}

fn runtime() -> TokenStream {
    quote!(::agent_cache::__private)
}

// Input:  `TOOL.read(key, &resources, move || body)`
// Output: `match TOOL.read(..) { Read::Done(value) => value, Read::Waiting(wait) => wait.await }`
/// Awaits a read only when it has to wait: a hit returns its value from the function's first
/// poll without keeping anything in its future.
fn await_read(runtime: &TokenStream, read: TokenStream) -> TokenStream {
    let (value, wait) = (binding("value"), binding("wait"));
    quote! {
        match #read {
            #runtime::Read::Done(#value) => #value,
            #runtime::Read::Waiting(#wait) => #wait.await,
        }
    }
}

/// The `ToolSpec` of a tool named `name` with these options, for its `static`.
pub(crate) fn tool_spec(
    runtime: &TokenStream,
    name: &str,
    options: &Options,
    parameterised: bool,
) -> TokenStream {
    let scope = match options.scope {
        Scope::Global => quote!(#runtime::Scope::Global),
        Scope::Session => quote!(#runtime::Scope::Session),
    };
    let declared = &options.resources;
    let maxsize = options.maxsize;
    let ttl = match options.ttl_nanos {
        Some(nanos) => quote!(::core::option::Option::Some(#nanos)),
        None => quote!(::core::option::Option::None),
    };
    let engine = Engine::tokens(options.engine, runtime);
    quote! {
        #runtime::ToolSpec {
            name: #name,
            scope: #scope,
            resources: &[#(#declared),*],
            parameterised: #parameterised,
            maxsize: #maxsize,
            ttl_nanos: #ttl,
            engine: #engine,
        }
    }
}

/// Everything checked, ready to expand.
struct Plan {
    kind: Kind,
    options: Options,
    analysis: Analysis,
    templates: Vec<Template>,
}

impl Plan {
    fn new(kind: Kind, item: &ItemFn, options: Options) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let analysis = signature::analyse(
            kind.name(),
            &item.sig,
            options.skip_args,
            options.key.is_some(),
            &mut errors,
        );
        let mut templates = Vec::new();
        for resource in &options.resources {
            match template(resource, &item.sig) {
                Ok(template) => {
                    if kind == Kind::Read && options.key.is_none() {
                        check_keyed(
                            &template,
                            resource,
                            item,
                            options.skip_args.value,
                            &mut errors,
                        );
                    }
                    templates.push(template);
                }
                Err(error) => errors.push(error),
            }
        }
        errors.finish()?;
        Ok(Plan {
            kind,
            options,
            analysis,
            templates,
        })
    }

    fn result(&self) -> bool {
        self.options
            .result
            .map_or(self.analysis.returns_result, |result| result.value)
    }

    // Input:  `#[agent_cache(resource = "cart:{user_id}")] async fn get_cart(user_id: &str) -> Cart { body }`
    // Output: `async fn get_cart(user_id: &str) -> Cart {
    //              static TOOL: Tool = Tool::new(ToolSpec { name: "get_cart", .. });
    //              let key = borrowed_key_part::<str>(user_id);
    //              let resources = [path(format_args!("cart:{}", user_id))];
    //              TOOL.read(key, &resources, move || async move { body }).await
    //          }`
    fn expand(&self, item: &ItemFn) -> TokenStream {
        let ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = item;
        let runtime = runtime();
        let tool = binding("TOOL");
        // A `static` when no resource names a parameter: nothing to build or keep per call.
        let resources = if self.templates.iter().all(|t| t.params.is_empty()) {
            binding("RESOURCES")
        } else {
            binding("resources")
        };
        let spec = self.spec(item);
        let resource_values = self.resource_values();
        let pin_output = tokens::pin_output(sig);
        let stmts = &block.stmts;
        let body = quote!(async move { #pin_output #(#stmts)* });
        let name = &sig.ident;
        let call = match self.kind {
            Kind::Read => {
                let key = binding("key");
                let shared = self.options.shared.is_some_and(|shared| shared.value);
                let key_expr = match &self.options.key {
                    Some(key) => key.to_token_stream(),
                    None if shared => tokens::fleet_key_expr(&runtime, &self.analysis.key_parts),
                    None => tokens::key_expr(&runtime, &self.analysis.key_parts),
                };
                // The body goes in a closure, so that a hit never builds (or moves) its future.
                let read = match (shared, self.result()) {
                    (false, true) => {
                        let read = await_read(
                            &runtime,
                            quote!(#tool.try_read(#key, &#resources, move || #body)),
                        );
                        tokens::unshare_result(&runtime, sig, read)
                    }
                    (false, false) => await_read(
                        &runtime,
                        quote!(#tool.read(#key, &#resources, move || #body)),
                    ),
                    // Named across the fleet by its path; a value that cannot cross processes
                    // is reported at the return type.
                    (true, result) => {
                        let fleet = quote!(::core::concat!(
                            "agent-cache:tool:",
                            ::core::module_path!(),
                            "::",
                            ::core::stringify!(#name)
                        ));
                        let method = syn::Ident::new(
                            if result {
                                "try_read_shared"
                            } else {
                                "read_shared"
                            },
                            tokens::return_span(sig),
                        );
                        let read = quote_spanned! {tokens::return_span(sig)=>
                            #tool.#method(#fleet, #key, &#resources, move || #body).await
                        };
                        if result {
                            tokens::unshare_result(&runtime, sig, read)
                        } else {
                            read
                        }
                    }
                };
                quote! {
                    let #key = #key_expr;
                    #read
                }
            }
            Kind::Invalidator => {
                let parts = self.signature_parts();
                let failed = if self.result() {
                    quote!(::core::result::Result::is_err)
                } else {
                    quote!(|_| false)
                };
                let signature = binding("signature");
                // The `&dyn Debug` parts are hashed in a statement of their own: a temporary
                // that lived across the `.await` would make the function's future `!Send`.
                quote! {
                    let #signature = #tool.signature_of(&[#(#parts),*]);
                    #tool.mutate(#signature, &#resources, #failed, #body).await
                }
            }
        };
        let resources_decl = if self.templates.iter().all(|t| t.params.is_empty()) {
            let count = resource_values.len();
            quote! {
                static #resources: [::std::borrow::Cow<'static, ::core::primitive::str>; #count] =
                    [#(#resource_values),*];
            }
        } else {
            quote!(let #resources = [#(#resource_values),*];)
        };
        quote! {
            #(#attrs)*
            #vis #sig {
                static #tool: #runtime::Tool = #runtime::Tool::new(#spec);
                #resources_decl
                #call
            }
        }
    }

    fn spec(&self, item: &ItemFn) -> TokenStream {
        let parameterised = self.templates.iter().any(|t| !t.params.is_empty());
        tool_spec(
            &runtime(),
            &item.sig.ident.to_string(),
            &self.options,
            parameterised,
        )
    }

    /// Each resource as a `Cow<str>`: borrowed when it names no parameter, formatted
    /// from the arguments otherwise.
    fn resource_values(&self) -> Vec<TokenStream> {
        self.templates
            .iter()
            .zip(&self.options.resources)
            .map(|(template, declared)| {
                let format = &template.format;
                let params = &template.params;
                if params.is_empty() {
                    let text = format.replace("{{", "{").replace("}}", "}");
                    quote_spanned!(declared.span()=> ::std::borrow::Cow::Borrowed(#text))
                } else {
                    quote_spanned! {declared.span()=>
                        ::agent_cache::__private::path(::core::format_args!(#format, #(#params),*))
                    }
                }
            })
            .collect()
    }

    /// An invalidator's non-skipped arguments, as they join its loop signature.
    fn signature_parts(&self) -> Vec<TokenStream> {
        let runtime = runtime();
        self.analysis
            .key_parts
            .iter()
            .map(|part| match part {
                KeyPart::Owned { name, ty } | KeyPart::Borrowed { name, ty } => {
                    quote_spanned!(syn::spanned::Spanned::span(ty)=> #runtime::signature_part(&#name))
                }
                KeyPart::BorrowedSelf(self_token) => {
                    quote_spanned!(self_token.span=> #runtime::signature_part(#self_token))
                }
                KeyPart::OwnedSelf(self_token) => {
                    quote_spanned!(self_token.span=> #runtime::signature_part(&#self_token))
                }
            })
            .collect()
    }
}
