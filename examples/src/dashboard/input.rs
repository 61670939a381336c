//! Reading request bodies: a JSON object whose fields are checked one at a time, each error
//! naming the field, what it accepts and what it got.
//!
//! Numbers may come as JSON numbers or as strings holding them, as typed in a form field, so
//! the page can send what the user typed and show the server's verdict.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde_json::{Map, Value};

/// The fields of a request body.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    object: Map<String, Value>,
}

impl Fields {
    /// The fields of `body`, which must be an object (or absent: `null` has no fields) with
    /// no fields outside `allowed`.
    pub(crate) fn of(body: Value, allowed: &[&str]) -> Result<Self, String> {
        let object = match body {
            Value::Null => Map::new(),
            Value::Object(object) => object,
            other => return Err(format!("the body must be a JSON object, got {other}")),
        };
        if let Some(unknown) = object.keys().find(|name| !allowed.contains(&name.as_str())) {
            return Err(format!(
                "unknown field {unknown:?}; the fields are {}",
                allowed.join(", ")
            ));
        }
        Ok(Fields { object })
    }

    /// A field that is absent or `null`: the caller keeps its current value or default.
    fn get(&self, name: &str) -> Option<&Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    /// A whole number within `range`.
    pub(crate) fn whole_number(
        &self,
        name: &str,
        range: RangeInclusive<u64>,
    ) -> Result<Option<u64>, String> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let number = match value {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        match number {
            Some(number) if range.contains(&number) => Ok(Some(number)),
            _ => Err(format!(
                "{name} must be a whole number from {} to {}, got {}",
                range.start(),
                range.end(),
                shown(value)
            )),
        }
    }

    /// A number within `range`.
    pub(crate) fn number(
        &self,
        name: &str,
        range: RangeInclusive<f64>,
    ) -> Result<Option<f64>, String> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let number = match value {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        match number {
            Some(number) if range.contains(&number) => Ok(Some(number)),
            _ => Err(format!(
                "{name} must be a number from {} to {}, got {}",
                range.start(),
                range.end(),
                shown(value)
            )),
        }
    }

    /// A time to live in seconds, up to `max`; `Some(None)` means "never expire", written
    /// `0`, `""` or `"never"` (`null` means absent, as for every field).
    pub(crate) fn seconds_or_never(
        &self,
        name: &str,
        max: f64,
    ) -> Result<Option<Option<Duration>>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) if matches!(text.trim(), "" | "never") => Ok(Some(None)),
            Some(_) => {
                let secs = self.number(name, 0.0..=max).map_err(|_| {
                    format!(
                        "{name} must be a number of seconds from 0 to {max} (0, \"\" or \"never\": never expire), got {}",
                        shown(&self.object[name])
                    )
                })?;
                Ok(secs.map(|secs| (secs > 0.0).then(|| Duration::from_secs_f64(secs))))
            }
        }
    }

    /// A string of at most `max_len` bytes (and at least one).
    pub(crate) fn text(&self, name: &str, max_len: usize) -> Result<Option<String>, String> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value {
            Value::String(text) if !text.is_empty() && text.len() <= max_len => {
                Ok(Some(text.clone()))
            }
            Value::String(text) if text.is_empty() => Err(format!("{name} must not be empty")),
            Value::String(text) => Err(format!(
                "{name} must be at most {max_len} bytes long, got {} bytes",
                text.len()
            )),
            other => Err(format!("{name} must be a string, got {other}")),
        }
    }

    /// `true` or `false`.
    pub(crate) fn flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(format!("{name} must be true or false, got {other}")),
        }
    }

    /// A list of at most `max_items` strings, each as [`text`](Self::text) checks them.
    pub(crate) fn text_list(
        &self,
        name: &str,
        max_items: usize,
        max_len: usize,
    ) -> Result<Option<Vec<String>>, String> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            return Err(format!("{name} must be a list of strings, got {value}"));
        };
        if items.len() > max_items {
            return Err(format!(
                "{name} may hold at most {max_items} items, got {}",
                items.len()
            ));
        }
        items
            .iter()
            .map(|item| {
                let item = Fields::of_one(name, item.clone());
                item.text(name, max_len)
                    .map(|text| text.unwrap_or_default())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn of_one(name: &str, value: Value) -> Self {
        Fields {
            object: Map::from_iter([(name.to_owned(), value)]),
        }
    }
}

/// A value as an error message shows it: a number typed into a form as a number (`-5`, not
/// `"-5"`), anything else as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) if text.trim().parse::<f64>().is_ok() => text.trim().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(body: Value) -> Fields {
        Fields::of(body, &["n", "x", "ttl", "s", "b", "list"]).unwrap()
    }

    #[test]
    fn numbers_come_as_numbers_or_strings_and_errors_say_what_is_allowed() {
        let f = fields(json!({"n": "12", "x": 2.5}));
        assert_eq!(f.whole_number("n", 0..=100), Ok(Some(12)));
        assert_eq!(f.number("x", 0.0..=10.0), Ok(Some(2.5)));
        assert_eq!(f.whole_number("missing", 0..=1), Ok(None));
        assert_eq!(
            fields(json!({"n": -5})).whole_number("n", 0..=100),
            Err("n must be a whole number from 0 to 100, got -5".into())
        );
        assert_eq!(
            fields(json!({"n": "abc"})).whole_number("n", 0..=100),
            Err("n must be a whole number from 0 to 100, got \"abc\"".into())
        );
        assert!(
            fields(json!({"n": 1.5}))
                .whole_number("n", 0..=100)
                .is_err()
        );
        assert!(fields(json!({"x": "NaN"})).number("x", 0.0..=10.0).is_err());
    }

    #[test]
    fn ttl_accepts_seconds_or_never() {
        let secs = |v: Value| fields(json!({ "ttl": v })).seconds_or_never("ttl", 3600.0);
        assert_eq!(
            secs(json!(1.5)),
            Ok(Some(Some(Duration::from_millis(1500))))
        );
        assert_eq!(secs(json!("")), Ok(Some(None)));
        assert_eq!(secs(json!("never")), Ok(Some(None)));
        assert_eq!(secs(json!(0)), Ok(Some(None)));
        assert!(secs(json!(-1)).unwrap_err().contains("number of seconds"));
        assert!(secs(json!("soon")).is_err());
    }

    #[test]
    fn unknown_fields_and_non_objects_are_refused() {
        assert!(
            Fields::of(json!({"nn": 1}), &["n"])
                .unwrap_err()
                .contains("unknown field \"nn\"")
        );
        assert!(Fields::of(json!([1]), &["n"]).is_err());
        assert!(Fields::of(Value::Null, &["n"]).is_ok());
    }

    #[test]
    fn text_flags_and_lists() {
        let f = fields(json!({"s": "", "b": "yes", "list": ["a", 1]}));
        assert_eq!(f.text("s", 10), Err("s must not be empty".into()));
        assert!(f.flag("b").is_err());
        assert!(f.text_list("list", 5, 10).is_err());
        let f = fields(json!({"s": "key", "b": true, "list": ["a", "b"]}));
        assert_eq!(f.text("s", 10), Ok(Some("key".into())));
        assert_eq!(
            f.text("s", 2).unwrap_err(),
            "s must be at most 2 bytes long, got 3 bytes"
        );
        assert_eq!(f.flag("b"), Ok(Some(true)));
        assert_eq!(
            f.text_list("list", 5, 10),
            Ok(Some(vec!["a".into(), "b".into()]))
        );
        assert!(f.text_list("list", 1, 10).is_err());
    }
}
