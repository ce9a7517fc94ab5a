//! Typed reading of a request's data (a `serde_json::Value` tree) into model values.
//!
//! Both request formats decode to a `Value`; the JSON format keeps JSON's types, the simplified
//! key-value format has only text. [`Fields`] reads either: in `lenient` mode (simple format) a
//! boolean or an integer may arrive as text, and a list of one item may arrive as a bare value.
//! Every refusal names the field path, so faults say exactly what was wrong.

use std::ops::RangeInclusive;

use serde_json::{Map, Value};

use super::error::{ModelError, ModelResult};

/// Longest text accepted in any free-text field; ids have their own, shorter limit.
pub const MAX_TEXT_LEN: usize = 1024;

/// A view of one JSON object of a request, with the path used in error messages.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    map: Option<&'a Map<String, Value>>,
    path: String,
    lenient: bool,
}

/// One item of a list field, ready to be read with [`Fields::item`] or [`Fields::item_text`].
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    value: &'a Value,
    index: usize,
}

impl<'a> Fields<'a> {
    /// Reads `value` as an object; `null` reads as an empty object.
    pub fn new(value: &'a Value, path: &str, lenient: bool) -> ModelResult<Self> {
        let map = match value {
            Value::Object(map) => Some(map),
            Value::Null => None,
            // The simple format writes an absent structure as an empty string.
            Value::String(s) if lenient && s.is_empty() => None,
            other => return Err(ModelError::invalid(path, format!("expected an object, got {}", kind(other)))),
        };
        Ok(Self { map, path: path.to_owned(), lenient })
    }

    /// Whether the request is in the lenient (simple) form.
    pub fn lenient(&self) -> bool {
        self.lenient
    }

    /// The path of a field of this object, for error messages.
    pub fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The raw value of a field; `null` counts as absent.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(name)).filter(|v| !v.is_null())
    }

    /// Whether the field is present with an explicit `null`.
    pub fn is_null(&self, name: &str) -> bool {
        self.map.and_then(|m| m.get(name)).is_some_and(Value::is_null)
    }

    /// Whether the field is present (and not `null`).
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// A mandatory nested object.
    pub fn req_object(&self, name: &str) -> ModelResult<Fields<'a>> {
        match self.raw(name) {
            Some(v) => Fields::new(v, &self.path_of(name), self.lenient),
            None => Err(ModelError::Missing(self.path_of(name))),
        }
    }

    /// An optional text field, at most `MAX_TEXT_LEN` characters, no control characters.
    pub fn opt_text(&self, name: &str) -> ModelResult<Option<String>> {
        self.raw(name).map(|v| text(v, &self.path_of(name), MAX_TEXT_LEN)).transpose()
    }

    /// A mandatory free-text field (a name or description that lands in no SIP header or URI):
    /// line breaks and tabs are allowed, as the spec's own `DTMFEvent_Name="a+string%0A"`
    /// example shows; NUL is not. In lenient mode `null` is the empty string.
    pub fn req_free_text(&self, name: &str) -> ModelResult<String> {
        if self.lenient && self.is_null(name) {
            return Ok(String::new());
        }
        let path = self.path_of(name);
        let value = self.raw(name).ok_or_else(|| ModelError::Missing(path.clone()))?;
        let Value::String(s) = value else {
            return Err(ModelError::invalid(&path, format!("expected a string, got {}", kind(value))));
        };
        if s.chars().count() > MAX_TEXT_LEN {
            return Err(ModelError::invalid(&path, format!("longer than {MAX_TEXT_LEN} characters")));
        }
        if s.contains('\0') {
            return Err(ModelError::invalid(&path, "contains NUL"));
        }
        Ok(s.clone())
    }

    /// A mandatory text field. In lenient mode an explicit `null` is the empty string, since
    /// the simple format writes `""` as `null`.
    pub fn req_text(&self, name: &str) -> ModelResult<String> {
        if self.lenient && self.is_null(name) {
            return Ok(String::new());
        }
        self.opt_text(name)?.ok_or_else(|| ModelError::Missing(self.path_of(name)))
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, name: &str) -> ModelResult<Option<bool>> {
        let path = self.path_of(name);
        self.raw(name)
            .map(|v| match v {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if self.lenient && s == "true" => Ok(true),
                Value::String(s) if self.lenient && s == "false" => Ok(false),
                other => Err(ModelError::invalid(&path, format!("expected true or false, got {}", kind(other)))),
            })
            .transpose()
    }

    /// A mandatory boolean field.
    pub fn req_bool(&self, name: &str) -> ModelResult<bool> {
        self.opt_bool(name)?.ok_or_else(|| ModelError::Missing(self.path_of(name)))
    }

    /// An optional integer field within `range`.
    pub fn opt_int(&self, name: &str, range: RangeInclusive<i64>) -> ModelResult<Option<i64>> {
        let path = self.path_of(name);
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) if self.lenient => s.parse::<i64>().ok(),
            _ => None,
        }
        .ok_or_else(|| ModelError::invalid(&path, format!("expected an integer, got {}", kind(v))))?;
        if range.contains(&n) {
            Ok(Some(n))
        } else {
            Err(ModelError::invalid(&path, format!("{n} is outside {}..={}", range.start(), range.end())))
        }
    }

    /// A mandatory integer field within `range`.
    pub fn req_int(&self, name: &str, range: RangeInclusive<i64>) -> ModelResult<i64> {
        self.opt_int(name, range)?.ok_or_else(|| ModelError::Missing(self.path_of(name)))
    }

    /// An optional list field. `null` reads as absent; in lenient mode a bare value is a list of one.
    pub fn opt_list(&self, name: &str) -> ModelResult<Option<Vec<Item<'a>>>> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        match v {
            Value::Array(items) => {
                Ok(Some(items.iter().enumerate().map(|(index, value)| Item { value, index }).collect()))
            }
            // The simple format cannot write an empty list except as an empty value.
            Value::String(s) if self.lenient && s.is_empty() => Ok(Some(Vec::new())),
            other if self.lenient => Ok(Some(vec![Item { value: other, index: 0 }])),
            other => Err(ModelError::invalid(&self.path_of(name), format!("expected a list, got {}", kind(other)))),
        }
    }

    /// A mandatory list field. In lenient mode an absent list is empty: the simple format has
    /// no way to write an empty list, and the device's own output omits them.
    pub fn req_list(&self, name: &str) -> ModelResult<Vec<Item<'a>>> {
        match self.opt_list(name)? {
            Some(items) => Ok(items),
            None if self.lenient => Ok(Vec::new()),
            None => Err(ModelError::Missing(self.path_of(name))),
        }
    }

    /// Reads one list item of field `name` as an object.
    pub fn item(&self, name: &str, item: Item<'a>) -> ModelResult<Fields<'a>> {
        let path = format!("{}[{}]", self.path_of(name), item.index);
        if item.value.is_null() {
            return Err(ModelError::Missing(path));
        }
        Fields::new(item.value, &path, self.lenient)
    }

    /// Reads one list item of field `name` as text of at most `max_len` characters.
    pub fn item_text(&self, name: &str, item: Item<'a>, max_len: usize) -> ModelResult<String> {
        let path = format!("{}[{}]", self.path_of(name), item.index);
        match item.value {
            Value::Null if self.lenient => Ok(String::new()),
            Value::Null => Err(ModelError::Missing(path)),
            v => text(v, &path, max_len),
        }
    }
}

/// Reads a text value: a JSON string of at most `max_len` characters without control characters.
pub fn text(v: &Value, path: &str, max_len: usize) -> ModelResult<String> {
    let Value::String(s) = v else {
        return Err(ModelError::invalid(path, format!("expected a string, got {}", kind(v))));
    };
    if s.chars().count() > max_len {
        return Err(ModelError::invalid(path, format!("longer than {max_len} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(ModelError::invalid(path, "contains control characters"));
    }
    Ok(s.clone())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_mode_refuses_text_for_booleans_and_integers() {
        let v = json!({"A": "true", "B": "5"});
        let f = Fields::new(&v, "X", false).expect("object");
        assert!(matches!(f.opt_bool("A"), Err(ModelError::Invalid(m)) if m.starts_with("X.A")));
        assert!(f.opt_int("B", 0..=10).is_err());
    }

    #[test]
    fn lenient_mode_reads_text_as_booleans_integers_and_lists() {
        let v = json!({"A": "true", "B": "5", "L": "one"});
        let f = Fields::new(&v, "", true).expect("object");
        assert_eq!(f.opt_bool("A"), Ok(Some(true)));
        assert_eq!(f.opt_int("B", 0..=10), Ok(Some(5)));
        let list = f.req_list("L").expect("list");
        assert_eq!(f.item_text("L", list[0], 10), Ok("one".to_owned()));
    }

    #[test]
    fn missing_and_range_errors_are_distinct() {
        let v = json!({"N": 700});
        let f = Fields::new(&v, "C", false).expect("object");
        assert_eq!(f.req_text("Name"), Err(ModelError::Missing("C.Name".into())));
        assert!(matches!(f.opt_int("N", 1..=600), Err(ModelError::Invalid(_))));
    }

    #[test]
    fn text_refuses_control_characters_and_overlong_values() {
        assert!(text(&json!("a\u{0}b"), "p", 10).is_err());
        assert!(text(&json!("a".repeat(11)), "p", 10).is_err());
        assert_eq!(text(&json!("漢字🚀"), "p", 10), Ok("漢字🚀".to_owned()));
    }
}
