//! The JSON format: one object with one `axcall:<Command>` key whose value holds the parameters.

use serde_json::Value;

use super::Request;
use crate::vapix::fault::Fault;

/// Decodes a JSON request body.
pub fn decode(body: &[u8]) -> Result<Request, Fault> {
    let top: TopLevel =
        serde_json::from_slice(body).map_err(|e| Fault::invalid_args(format!("the body is not valid JSON: {e}")))?;
    let TopLevel::Object(entry) = top else {
        return Err(Fault::invalid_args("the body must be a JSON object {\"axcall:<Command>\": {...}}"));
    };
    let Some((action, params)) = entry else {
        return Err(Fault::invalid_args("the body must hold exactly one \"axcall:<Command>\" key"));
    };
    match params {
        Value::Object(_) | Value::Null => Ok(Request { action, params }),
        _ => Err(Fault::invalid_args(format!("the parameters of {action:?} must be a JSON object"))),
    }
}

/// A body's top level, read in one pass without building the outer object (every request
/// would allocate and hash a one-entry map only to take it apart).
enum TopLevel {
    NotAnObject,
    /// The object's one key and value; `None` when it has none or several. A repeated key
    /// counts once with its last value, as when the object is read into a map.
    Object(Option<(String, Value)>),
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> serde::de::Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let Some((key, mut value)) = map.next_entry::<String, Value>()? else { return Ok(TopLevel::Object(None)) };
        let mut several = false;
        // The rest is read too (it must be valid JSON); only a repeat of the key is kept.
        while let Some(other) = map.next_key::<String>()? {
            if other == key {
                value = map.next_value()?;
            } else {
                several = true;
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(TopLevel::Object((!several).then_some((key, value))))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(TopLevel::NotAnObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
        Ok(TopLevel::NotAnObject)
    }

    fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
        Ok(TopLevel::NotAnObject)
    }

    fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
        Ok(TopLevel::NotAnObject)
    }

    fn visit_f64<E>(self, _: f64) -> Result<TopLevel, E> {
        Ok(TopLevel::NotAnObject)
    }

    fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
        Ok(TopLevel::NotAnObject)
    }

    fn visit_unit<E>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::NotAnObject)
    }
}

/// Encodes a response value as pretty JSON, as the device does.
pub fn encode(value: &Value) -> String {
    encode_typed(value)
}

/// Encodes any serializable answer as [`encode`] encodes its `Value`, without building one.
pub fn encode_typed<T: serde::Serialize + ?Sized>(answer: &T) -> String {
    // Room for a typical answer up front, so the writer rarely grows the buffer.
    let mut out = Vec::with_capacity(1024);
    if serde_json::to_writer_pretty(&mut out, answer).is_err() {
        return "{}\n".to_owned();
    }
    out.push(b'\n');
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_else(|_| "{}\n".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_command_per_body() {
        let r = decode(br#"{"axcall:GetSIPConfiguration":{}}"#).expect("valid");
        assert_eq!(r.action, "axcall:GetSIPConfiguration");
        assert!(decode(b"{}").is_err());
        assert!(decode(br#"{"a":{},"b":{}}"#).is_err());
        assert!(decode(br#"{"axcall:X":[1]}"#).is_err());
        assert!(decode(b"not json").is_err());
        assert!(decode(br#"{"axcall:X": {"SIPEnabled": -Infinity}}"#).is_err());
    }

    /// The one-pass read gives what reading the body into a map gives.
    #[test]
    fn the_top_level_reads_as_a_map_would() {
        let fault = |body: &[u8]| decode(body).err().and_then(|f| f.msg).unwrap_or_default();
        for body in [&b"[1, {}]"[..], b"\"axcall:X\"", b"3", b"null", b"true"] {
            assert!(fault(body).contains("must be a JSON object"), "{}", String::from_utf8_lossy(body));
        }
        assert!(fault(br#"{"a":{},"b":-Infinity}"#).contains("not valid JSON"), "the rest must parse");
        assert!(fault(br#"{"a":{},"b":[]} x"#).contains("not valid JSON"), "nothing may follow");
        assert!(fault(br#"{"a":{},"b":{}}"#).contains("exactly one"));
        let repeated = decode(br#"{"axcall:X":{},"axcall:X":{"A":1}}"#).expect("a repeated key counts once");
        assert_eq!((repeated.action.as_str(), repeated.params), ("axcall:X", serde_json::json!({"A": 1})));
        let null = decode(br#"{"axcall:GetSIPAccounts":null}"#).expect("null parameters");
        assert_eq!(null.params, Value::Null);
    }
}
