//! The attributes on an rmcp `#[tool]` method: the key is the canonical JSON of its
//! `Parameters<T>`, resources name fields of `T`, and the `#[tool]` annotations are made to
//! agree with what the attribute says the tool does.

use cache_attr::args::Errors;
use cache_attr::signature::mentions;
use cache_attr::tokens::{self, binding};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, Ident, ItemFn, Lit, Meta, Pat, PathArguments,
    ReturnType, Token, Type,
};

use crate::attr::{Kind, Options};
use crate::validate::{FieldTemplate, field_template};

/// The index of the item's rmcp `#[tool]` attribute (`#[tool]`, `#[rmcp::tool(..)]`), which
/// makes the item an rmcp tool. The rule is rmcp's own `#[tool_router]`'s.
pub(crate) fn tool_attribute(item: &ItemFn) -> Option<usize> {
    item.attrs.iter().position(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "tool")
    })
}

/// Where the tool's arguments come from.
enum Source {
    /// `pattern: Parameters<T>` (or a `JsonObject` of raw arguments), at `index`.
    Param {
        index: usize,
        pattern: Box<Pat>,
        /// `Parameters<T>`: the struct whose fields resources may name.
        typed: bool,
        ty: Box<Type>,
    },
    /// No parameters: one entry.
    None,
}

/// An rmcp tool checked and ready to expand.
pub(crate) struct McpPlan {
    kind: Kind,
    options: Options,
    /// The MCP name, which loop reports use.
    name: String,
    source: Source,
    templates: Vec<FieldTemplate>,
    /// The `#[tool]` attribute with the read-only hint the attribute implies.
    tool_attr: Attribute,
    tool_index: usize,
}

impl McpPlan {
    pub(crate) fn new(
        kind: Kind,
        item: &ItemFn,
        options: Options,
        tool_index: usize,
    ) -> syn::Result<Self> {
        let mut errors = Errors::default();
        if !cfg!(feature = "rmcp") {
            errors.push(syn::Error::new(
                item.attrs[tool_index].span(),
                format!(
                    "#[{}] on an rmcp `#[tool]` needs the `rmcp` feature of agent-cache: \
                     `agent-cache = {{ version = \"..\", features = [\"rmcp\"] }}`",
                    kind.name()
                ),
            ));
        }
        check_options(kind, &options, &mut errors);
        check_async(kind, item, &mut errors);
        let source = source(item);
        let (name, tool_attr) = match rewrite_tool_attribute(kind, &item.attrs[tool_index]) {
            Ok(rewritten) => rewritten,
            Err(error) => {
                errors.push(error);
                (None, item.attrs[tool_index].clone())
            }
        };
        let name = name.unwrap_or_else(|| item.sig.ident.to_string());
        let mut templates = Vec::new();
        for resource in &options.resources {
            match field_template(resource, &item.sig.ident) {
                Ok(template) => {
                    if !template.fields.is_empty()
                        && !matches!(source, Source::Param { typed: true, .. })
                    {
                        errors.push(syn::Error::new(
                            resource.span(),
                            format!(
                                "resource \"{}\" names a field, but `{}` takes no \
                                 `Parameters<T>` whose fields it could name: take one, or drop \
                                 the placeholder",
                                resource.value(),
                                item.sig.ident
                            ),
                        ));
                    }
                    templates.push(template);
                }
                Err(error) => errors.push(error),
            }
        }
        errors.finish()?;
        Ok(McpPlan {
            kind,
            options,
            name,
            source,
            templates,
            tool_attr,
            tool_index,
        })
    }

    // Input:  `#[agent_cache(resource = "cart:{user_id}")] #[tool(description = "..")]
    //          async fn get_cart(&self, Parameters(args): Parameters<CartArgs>) -> R { body }`
    // Output: `#[tool(description = "..", annotations(read_only_hint = true))]
    //          async fn get_cart(&self, __cache_params: Parameters<CartArgs>) -> R {
    //              static TOOL: Tool = Tool::new(ToolSpec { name: "get_cart", .. });
    //              let resources = [Cow::Owned(format!("cart:{}", __cache_params.0.user_id))];
    //              let arguments = rmcp::arguments(&__cache_params.0);
    //              rmcp::read(&TOOL, arguments, &resources, move || async move {
    //                  let Parameters(args) = __cache_params;
    //                  body
    //              }).await
    //          }`
    pub(crate) fn expand(&self, item: &ItemFn) -> TokenStream {
        let runtime = quote!(::agent_cache::__private);
        let (tool, resources, arguments) =
            (binding("TOOL"), binding("resources"), binding("arguments"));
        let params = binding("params");
        let mut attrs = item.attrs.clone();
        attrs[self.tool_index] = self.tool_attr.clone();
        let mut sig = item.sig.clone();
        let (unpack, arguments_expr) = match &self.source {
            Source::Param {
                index,
                pattern,
                typed,
                ty,
            } => {
                if let FnArg::Typed(typed_arg) = &mut sig.inputs[*index] {
                    *typed_arg.pat = syn::parse_quote!(#params);
                }
                // Located at the type, so that a missing `Serialize` is reported there.
                let at_type = located(&params, ty.span());
                let value = if *typed {
                    quote_spanned!(ty.span()=> &#at_type.0)
                } else {
                    quote_spanned!(ty.span()=> &#at_type)
                };
                (
                    quote!(let #pattern = #params;),
                    quote_spanned!(ty.span()=> #runtime::rmcp::arguments(#value)),
                )
            }
            Source::None => (
                TokenStream::new(),
                quote!(#runtime::rmcp::Arguments::none()),
            ),
        };
        let spec = self.spec(&runtime);
        let resource_values = self.resource_values(&params);
        let pin_output = tokens::pin_output(&item.sig);
        let stmts = &item.block.stmts;
        let body = quote!(async move { #unpack #pin_output #(#stmts)* });
        let returns = tokens::return_span(&item.sig);
        let call = match self.kind {
            Kind::Read => {
                let read = match returned(&item.sig.output) {
                    Returned::Json => quote_spanned!(returns=> #runtime::rmcp::read_json),
                    Returned::JsonResult => {
                        quote_spanned!(returns=> #runtime::rmcp::read_json_result)
                    }
                    Returned::Other => quote_spanned!(returns=> #runtime::rmcp::read),
                };
                let check = output_check(&runtime, &item.sig.output);
                quote! {
                    #check
                    #read(&#tool, #arguments, &#resources, move || #body).await
                }
            }
            Kind::Invalidator => {
                let failed = failed(&runtime, &item.sig.output);
                quote! {
                    #runtime::rmcp::mutate(&#tool, #arguments, &#resources, #failed, #body).await
                }
            }
        };
        let vis = &item.vis;
        quote! {
            #(#attrs)*
            #vis #sig {
                static #tool: #runtime::Tool = #runtime::Tool::new(#spec);
                let #resources = [#(#resource_values),*];
                let #arguments = #arguments_expr;
                #call
            }
        }
    }

    fn spec(&self, runtime: &TokenStream) -> TokenStream {
        let parameterised = self.templates.iter().any(|t| !t.fields.is_empty());
        crate::expand::tool_spec(runtime, &self.name, &self.options, parameterised)
    }

    /// Each resource as a `Cow<str>`, formatted from the parameters' fields when it names any
    /// (spanned at the resource, where a wrong field name is reported).
    fn resource_values(&self, params: &Ident) -> Vec<TokenStream> {
        self.templates
            .iter()
            .zip(&self.options.resources)
            .map(|(template, declared)| {
                let format = &template.format;
                if template.fields.is_empty() {
                    let text = format.replace("{{", "{").replace("}}", "}");
                    return quote_spanned!(declared.span()=> ::std::borrow::Cow::Borrowed(#text));
                }
                let fields = template.fields.iter().map(|path| {
                    let path = path.iter().map(|field| {
                        let field = Ident::new(&field.to_string(), declared.span());
                        quote_spanned!(declared.span()=> .#field)
                    });
                    let params = located(params, declared.span());
                    quote_spanned!(declared.span()=> #params.0 #(#path)*)
                });
                quote_spanned! {declared.span()=>
                    ::std::borrow::Cow::Owned(::std::format!(#format, #(#fields),*))
                }
            })
            .collect()
    }
}

/// A binding of the expansion's, with its hygiene, reported at `span`.
fn located(binding: &Ident, span: Span) -> Ident {
    Ident::new(&binding.to_string(), binding.span().located_at(span))
}

// Input:  `-> CartView`
// Output: `let _ = ::agent_cache::__private::rmcp::output::<CartView>;`
/// Checks that a read's result can be cached, where its type is written, so that a result
/// that is not `Clone` is reported at the return type. `Json` results are cached by their
/// `T`, and an `impl Trait` cannot be named: for those the call reports it.
fn output_check(runtime: &TokenStream, output: &ReturnType) -> TokenStream {
    match (output, returned(output)) {
        (ReturnType::Type(_, ty), Returned::Other)
            if !mentions(ty.to_token_stream(), |ident| ident == "impl") =>
        {
            quote_spanned!(ty.span()=> let _ = #runtime::rmcp::output::<#ty>;)
        }
        _ => TokenStream::new(),
    }
}

/// How a read's result is cached, by its return type as written (the rule rmcp's `#[tool]`
/// uses to find structured output).
enum Returned {
    /// `Json<T>`: not `Clone`, so its `T` is cached.
    Json,
    /// `Result<Json<T>, E>`: an `Ok`'s `T` is cached.
    JsonResult,
    /// Anything else: the result itself is cached, so it must be `Clone`.
    Other,
}

fn returned(output: &ReturnType) -> Returned {
    let ReturnType::Type(_, ty) = output else {
        return Returned::Other;
    };
    match last_segment(ty) {
        Some((name, _)) if name == "Json" => Returned::Json,
        Some((name, Some(args))) if name == "Result" => match args.first() {
            Some(GenericArgument::Type(ok))
                if last_segment(ok).is_some_and(|(n, _)| n == "Json") =>
            {
                Returned::JsonResult
            }
            _ => Returned::Other,
        },
        _ => Returned::Other,
    }
}

fn last_segment(ty: &Type) -> Option<(&Ident, Option<&Punctuated<GenericArgument, Token![,]>>)> {
    let Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    let args = match &segment.arguments {
        PathArguments::AngleBracketed(args) => Some(&args.args),
        _ => None,
    };
    Some((&segment.ident, args))
}

// Input:  `-> Result<CallToolResult, ErrorData>`
// Output: `|result: &Result<CallToolResult, ErrorData>| (&&Failed(result)).failed()`
/// Whether an invalidator's result is a failure, decided at compile time by the first tier
/// of `Failed` its type allows; an `impl Trait` result cannot be named, so never fails.
fn failed(runtime: &TokenStream, output: &ReturnType) -> TokenStream {
    let ty = match output {
        ReturnType::Type(_, ty) if !mentions(ty.to_token_stream(), |ident| ident == "impl") => {
            ty.to_token_stream()
        }
        ReturnType::Type(..) => return quote!(|_| false),
        ReturnType::Default => quote!(()),
    };
    let result = binding("result");
    quote! {
        |#result: &#ty| {
            #[allow(unused_imports)]
            use #runtime::rmcp::{ViaConversion as _, ViaNothing as _, ViaResult as _};
            (&&#runtime::rmcp::Failed(#result)).failed()
        }
    }
}

/// The options an rmcp tool has no use for: its key is its parameters' JSON, and what is
/// cached is decided by its result.
fn check_options(kind: Kind, options: &Options, errors: &mut Errors) {
    if options.skip_args.value != 0 {
        errors.push(syn::Error::new(
            options.skip_args.span,
            format!(
                "`skip_args` does not apply to an rmcp tool: #[{}] keys it by its \
                 `Parameters<T>` alone, and leaves `&self` and the request extractors out \
                 already; remove `skip_args`",
                kind.name()
            ),
        ));
    }
    if let Some(key) = &options.key {
        errors.push(syn::Error::new(
            key.span(),
            "`key` does not apply to an rmcp tool: it is keyed by the canonical JSON of its \
             `Parameters<T>`; to leave a field out of the key, leave it out of `T` (or mark it \
             `#[serde(skip_serializing)]`), or remove `key`",
        ));
    }
    if let Some(shared) = options.shared.filter(|shared| shared.value) {
        errors.push(syn::Error::new(
            shared.span,
            "`shared = true` is not supported on an rmcp tool yet: its results are cached in \
             this process (the fleet still invalidates them everywhere); remove `shared`",
        ));
    }
    if let Some(result) = options.result {
        errors.push(syn::Error::new(
            result.span,
            format!(
                "`result` does not apply to an rmcp tool: #[{}] {} by the tool result rmcp \
                 makes of it (an error result or `Err` is a failure); remove `result`",
                kind.name(),
                match kind {
                    Kind::Read => "caches a call or not",
                    Kind::Invalidator => "tells a failed call",
                }
            ),
        ));
    }
}

/// An rmcp tool must be `async` here, which it is no more once `#[tool]` has expanded: then
/// the attribute was written below `#[tool]`.
fn check_async(kind: Kind, item: &ItemFn, errors: &mut Errors) {
    if item.sig.asyncness.is_some() {
        return;
    }
    errors.push(syn::Error::new(
        item.sig.fn_token.span(),
        format!(
            "#[{}] applies to an `async fn` tool: make `{}` an `async fn`",
            kind.name(),
            item.sig.ident
        ),
    ));
}

/// `#[agent_cache]` written below `#[tool]` sees the function `#[tool]` made, which returns a
/// boxed future: an error that says to swap them.
pub(crate) fn below_tool(kind: Kind, item: &ItemFn) -> Option<syn::Error> {
    let syn::ReturnType::Type(_, ty) = &item.sig.output else {
        return None;
    };
    let boxed_future = mentions(ty.to_token_stream(), |ident| ident == "Pin")
        && mentions(ty.to_token_stream(), |ident| ident == "Future");
    (item.sig.asyncness.is_none() && boxed_future).then(|| {
        syn::Error::new(
            Span::call_site(),
            format!(
                "#[{0}] must be written above #[tool]: below it, it sees the function #[tool] \
                 made (which returns a boxed future) instead of the `async fn`; write \
                 `#[{0}(..)]` first, then `#[tool(..)]`",
                kind.name()
            ),
        )
    })
}

fn source(item: &ItemFn) -> Source {
    for (index, input) in item.sig.inputs.iter().enumerate() {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        let Type::Path(path) = &*typed.ty else {
            continue;
        };
        let Some(last) = path.path.segments.last() else {
            continue;
        };
        if last.ident == "Parameters" || last.ident == "JsonObject" {
            return Source::Param {
                index,
                pattern: typed.pat.clone(),
                typed: last.ident == "Parameters",
                ty: typed.ty.clone(),
            };
        }
    }
    Source::None
}

// Input:  `#[tool(name = "get-cart", annotations(title = "Cart"))]` on a read
// Output: `("get-cart", #[tool(name = "get-cart", annotations(title = "Cart", read_only_hint = true))])`
/// The tool's MCP name, and its `#[tool]` attribute with the read-only hint the agent
/// attribute implies (an error at a hint that contradicts it).
fn rewrite_tool_attribute(
    kind: Kind,
    attr: &Attribute,
) -> syn::Result<(Option<String>, Attribute)> {
    let mut metas: Punctuated<Meta, Token![,]> = match &attr.meta {
        Meta::Path(_) => Punctuated::new(),
        Meta::List(_) => match attr.parse_args_with(Punctuated::parse_terminated) {
            Ok(metas) => metas,
            // rmcp's own macro reports what it cannot parse.
            Err(_) => return Ok((None, attr.clone())),
        },
        Meta::NameValue(_) => return Ok((None, attr.clone())),
    };
    let mut name = None;
    let mut annotations = None;
    for (i, meta) in metas.iter().enumerate() {
        match meta {
            Meta::NameValue(pair) if pair.path.is_ident("name") => {
                if let Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(string),
                    ..
                }) = &pair.value
                {
                    name = Some(string.value());
                }
            }
            Meta::List(list) if list.path.is_ident("annotations") => annotations = Some(i),
            _ => {}
        }
    }
    let read_only = kind == Kind::Read;
    let hint = quote!(read_only_hint = #read_only);
    match annotations {
        Some(i) => {
            let Meta::List(list) = &metas[i] else {
                unreachable!("found as a list above")
            };
            let mut hints: Punctuated<Meta, Token![,]> =
                list.parse_args_with(Punctuated::parse_terminated)?;
            let mut given = false;
            let mut errors = Errors::default();
            for meta in &hints {
                if let Some(value) = flag(meta, "read_only_hint") {
                    given = true;
                    if value != read_only {
                        errors.push(contradiction(kind, meta));
                    }
                }
                if let (Some(true), Kind::Read) = (flag(meta, "destructive_hint"), kind) {
                    errors.push(contradiction(kind, meta));
                }
            }
            errors.finish()?;
            if !given {
                hints.push(syn::parse_quote!(#hint));
            }
            let path = &list.path;
            metas[i] = syn::parse_quote!(#path(#hints));
        }
        None => metas.push(syn::parse_quote!(annotations(#hint))),
    }
    let path = attr.path();
    let rewritten: Attribute = syn::parse_quote_spanned!(attr.span()=> #[#path(#metas)]);
    Ok((name, rewritten))
}

/// The value of a boolean hint such as `read_only_hint = false` (`read_only_hint` alone is
/// `true`), if `meta` is that hint written with a literal.
fn flag(meta: &Meta, hint: &str) -> Option<bool> {
    match meta {
        Meta::Path(path) if path.is_ident(hint) => Some(true),
        Meta::NameValue(pair) if pair.path.is_ident(hint) => match &pair.value {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Bool(value),
                ..
            }) => Some(value.value),
            _ => None,
        },
        _ => None,
    }
}

fn contradiction(kind: Kind, meta: &Meta) -> syn::Error {
    let message = match kind {
        Kind::Read => format!(
            "`{}` contradicts #[agent_cache]: a cached tool must not change anything (its \
             result is served again without running it), and #[agent_cache] marks it \
             `read_only_hint = true`; remove the hint, or make the tool #[agent_invalidator] \
             if it changes state",
            meta.to_token_stream()
        ),
        Kind::Invalidator => format!(
            "`{}` contradicts #[agent_invalidator]: an invalidator changes what cached reads \
             return, and #[agent_invalidator] marks it `read_only_hint = false`; remove the \
             hint, or make the tool #[agent_cache] if it only reads",
            meta.to_token_stream()
        ),
    };
    syn::Error::new(meta.span(), message)
}
