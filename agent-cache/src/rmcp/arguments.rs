//! [`Arguments`]: a tool call's parameters as canonical JSON, the key of an MCP read.

use std::fmt;

use serde::Serialize;

/// A tool call's parameters as canonical JSON (object keys sorted, no whitespace), so that
/// two calls with equal parameters have equal keys however their maps were ordered.
///
/// Keyed from the typed parameters the tool received, not from the request's raw JSON:
/// fields the tool ignores, and defaults spelled out or left out, make no difference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Arguments(Option<Box<str>>);

impl Arguments {
    /// The arguments of a tool that takes no parameters.
    pub fn none() -> Self {
        Arguments(Some(Box::from("")))
    }

    /// The canonical JSON; `None` when the parameters could not be serialized (such a call
    /// runs uncached).
    pub(crate) fn into_json(self) -> Option<Box<str>> {
        self.0
    }
}

impl fmt::Debug for Arguments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(json) => f.write_str(json),
            None => f.write_str("<unserializable>"),
        }
    }
}

/// The parameters of a cached rmcp tool: keyed by their canonical JSON.
#[diagnostic::on_unimplemented(
    message = "the parameters `{Self}` of an agent-cache rmcp tool must implement `serde::Serialize`",
    label = "a call is keyed by the canonical JSON of its parameters",
    note = "add `Serialize` to its derives, beside `Deserialize` and `JsonSchema`"
)]
pub trait ToolParameters: Serialize {}

impl<T: Serialize + ?Sized> ToolParameters for T {}

/// The canonical JSON of `parameters`.
pub fn arguments<P: ToolParameters + ?Sized>(parameters: &P) -> Arguments {
    let json = serde_json::to_value(parameters).and_then(|mut value| {
        // A no-op unless serde_json's `preserve_order` is on somewhere in the build: its
        // objects are sorted maps otherwise, which serialize with their keys in order.
        value.sort_all_objects();
        serde_json::to_string(&value)
    });
    match json {
        Ok(json) => Arguments(Some(json.into_boxed_str())),
        Err(error) => {
            tracing::debug!(
                target: "agent_cache",
                parameters = std::any::type_name::<P>(),
                %error,
                "parameters that cannot be serialized to JSON: the call runs uncached"
            );
            Arguments(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Serialize)]
    struct Search {
        query: String,
        filters: HashMap<String, Vec<u32>>,
        limit: Option<u32>,
    }

    #[test]
    fn equal_parameters_have_one_key_whatever_the_order_of_their_maps() {
        let mut forward = HashMap::new();
        let mut backward = HashMap::new();
        for i in 0..32 {
            forward.insert(format!("f{i}"), vec![i]);
        }
        for i in (0..32).rev() {
            backward.insert(format!("f{i}"), vec![i]);
        }
        let a = arguments(&Search {
            query: "rust \"cache\"".into(),
            filters: forward,
            limit: None,
        });
        let b = arguments(&Search {
            query: "rust \"cache\"".into(),
            filters: backward,
            limit: None,
        });
        assert_eq!(a, b);
        let json = a.into_json().unwrap();
        assert!(
            json.starts_with(r#"{"filters":{"f0":[0],"f1":[1],"f10":[10]"#),
            "{json}"
        );
        assert!(
            json.ends_with(r#""limit":null,"query":"rust \"cache\""}"#),
            "{json}"
        );
    }

    #[test]
    fn different_parameters_have_different_keys() {
        let key = |limit| {
            arguments(&Search {
                query: "q".into(),
                filters: HashMap::new(),
                limit,
            })
        };
        assert_ne!(key(Some(1)), key(Some(2)));
        assert_ne!(key(None), key(Some(0)));
    }

    #[test]
    fn parameters_that_cannot_be_json_are_left_uncached() {
        let mut by_tuple = HashMap::new();
        by_tuple.insert((1, 2), "map keys must be strings in JSON");
        assert_eq!(arguments(&by_tuple).into_json(), None);
    }
}
