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
    let mut out = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_owned());
    out.push('\n');
    out
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
