//! The JSON format: one object with one `axcall:<Command>` key whose value holds the parameters.

use serde_json::Value;

use super::Request;
use crate::vapix::fault::Fault;

/// Decodes a JSON request body.
pub fn decode(body: &[u8]) -> Result<Request, Fault> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Fault::invalid_args(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Fault::invalid_args("the body must be a JSON object {\"axcall:<Command>\": {...}}"));
    };
    let mut entries = map.into_iter();
    let (Some((action, params)), None) = (entries.next(), entries.next()) else {
        return Err(Fault::invalid_args("the body must hold exactly one \"axcall:<Command>\" key"));
    };
    match params {
        Value::Object(_) | Value::Null => Ok(Request { action, params }),
        _ => Err(Fault::invalid_args(format!("the parameters of {action:?} must be a JSON object"))),
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
}
