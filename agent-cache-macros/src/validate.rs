//! Resource templates against the function's parameters.

use proc_macro2::Ident;
use syn::{FnArg, LitStr, Pat, Signature};

/// A resource as the expansion builds it: literal text and the parameters named in braces.
pub(crate) struct Template {
    /// The format string for `format!`: each `{name}` replaced by `{}`, escapes kept.
    pub(crate) format: String,
    /// The parameters, in order.
    pub(crate) params: Vec<Ident>,
}

// Input:  `"cart:{user_id}"` on `async fn get_cart(user_id: &str)`
// Output: `Template { format: "cart:{}", params: [user_id] }`
/// Parses a resource, checking that every placeholder names a parameter of `sig`.
pub(crate) fn template(resource: &LitStr, sig: &Signature) -> syn::Result<Template> {
    let text = resource.value();
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
    let mut template = Template {
        format: String::new(),
        params: Vec::new(),
    };
    let mut rest = text.as_str();
    while let Some(brace) = rest.find(['{', '}']) {
        template.format.push_str(&rest[..brace]);
        let after = &rest[brace + 1..];
        match (&rest[brace..=brace], after.chars().next()) {
            ("{", Some('{')) | ("}", Some('}')) => {
                template.format.push_str(&rest[brace..brace + 2]);
                rest = &after[1..];
            }
            ("{", _) => {
                let Some(close) = after.find('}') else {
                    return Err(error(resource, "has a `{` with no closing `}`"));
                };
                let name = &after[..close];
                let Some(param) = names.iter().find(|param| **param == name) else {
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
                template.format.push_str("{}");
                template.params.push((*param).clone());
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
    template.format.push_str(rest);
    Ok(template)
}

fn error(resource: &LitStr, what: &str) -> syn::Error {
    syn::Error::new(
        resource.span(),
        format!("resource \"{}\" {what}", resource.value()),
    )
}
