//! Resource templates against the function's parameters (or, for an rmcp tool, the fields of
//! its parameters struct).

use proc_macro2::Ident;
use syn::{FnArg, LitStr, Pat, Signature};

/// A resource as the expansion builds it: literal text and the parameters named in braces.
pub(crate) struct Template {
    /// The format string for `format!`: each `{name}` replaced by `{}`, escapes kept.
    pub(crate) format: String,
    /// The parameters, in order.
    pub(crate) params: Vec<Ident>,
}

/// A resource of an rmcp tool: literal text and the fields of its parameters named in
/// braces, each a path of one or more field names (`{user_id}`, `{filter.region}`).
pub(crate) struct FieldTemplate {
    /// The format string for `format!`: each `{name}` replaced by `{}`, escapes kept.
    pub(crate) format: String,
    /// The field paths, in order.
    pub(crate) fields: Vec<Vec<Ident>>,
}

// Input:  `"cart:{user_id}"` on `async fn get_cart(user_id: &str)`
// Output: `Template { format: "cart:{}", params: [user_id] }`
/// Parses a resource, checking that every placeholder names a parameter of `sig`.
pub(crate) fn template(resource: &LitStr, sig: &Signature) -> syn::Result<Template> {
    let names: Vec<&Ident> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(pat) => Some(&pat.ident),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    let (format, placeholders) = split(resource)?;
    let mut params = Vec::new();
    for name in placeholders {
        let Some(param) = names.iter().find(|param| **param == name.as_str()) else {
            let known = names
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let known = if known.is_empty() {
                String::from("it has no named parameters")
            } else {
                format!("its parameters are {known}")
            };
            return Err(error(
                resource,
                &format!(
                    "names `{{{name}}}`, which is not a parameter of `{}`: {known} \
                     (write `{{{{` for a literal brace)",
                    sig.ident
                ),
            ));
        };
        params.push((*param).clone());
    }
    Ok(Template { format, params })
}

// Input:  `"cart:{user_id}"` on an rmcp tool taking `Parameters<CartArgs>`
// Output: `FieldTemplate { format: "cart:{}", fields: [[user_id]] }`
/// Parses an rmcp tool's resource: every placeholder names a field of its parameters, which
/// the compiler checks against the struct (a wrong name is an error at the resource).
pub(crate) fn field_template(resource: &LitStr, tool: &Ident) -> syn::Result<FieldTemplate> {
    let (format, placeholders) = split(resource)?;
    let fields = placeholders
        .iter()
        .map(|name| {
            name.split('.')
                .map(|field| {
                    syn::parse_str::<Ident>(field).map_err(|_| {
                        error(
                            resource,
                            &format!(
                                "names `{{{name}}}`, which is not a field of `{tool}`'s \
                                 parameters: a placeholder is a field name (`{{user_id}}`) or \
                                 a path of field names (`{{filter.region}}`)"
                            ),
                        )
                    })
                })
                .collect::<syn::Result<Vec<Ident>>>()
        })
        .collect::<syn::Result<Vec<_>>>()?;
    Ok(FieldTemplate { format, fields })
}

/// A resource's format string and the names in its braces.
fn split(resource: &LitStr) -> syn::Result<(String, Vec<String>)> {
    let text = resource.value();
    let mut format = String::new();
    let mut names = Vec::new();
    let mut rest = text.as_str();
    while let Some(brace) = rest.find(['{', '}']) {
        format.push_str(&rest[..brace]);
        let after = &rest[brace + 1..];
        match (&rest[brace..=brace], after.chars().next()) {
            ("{", Some('{')) | ("}", Some('}')) => {
                format.push_str(&rest[brace..brace + 2]);
                rest = &after[1..];
            }
            ("{", _) => {
                let Some(close) = after.find('}') else {
                    return Err(error(resource, "has a `{` with no closing `}`"));
                };
                format.push_str("{}");
                names.push(after[..close].to_owned());
                rest = &after[close + 1..];
            }
            _ => {
                return Err(error(
                    resource,
                    "has a `}` with no opening `{` (write `}}`)",
                ));
            }
        }
    }
    format.push_str(rest);
    Ok((format, names))
}

fn error(resource: &LitStr, what: &str) -> syn::Error {
    syn::Error::new(
        resource.span(),
        format!("resource \"{}\" {what}", resource.value()),
    )
}
