//! The simplified key-value format (spec: "JSON and simplified key-value requests").
//!
//! Requests: `action=axcall:<Command>` plus one `Key=value` pair per leaf, nested levels joined
//! by `_`, list items by `_<index>_`. Values are URL-encoded, may be quoted, `null` is null.
//! Every other value stays text: the model's lenient reader turns `true` or `5` into a boolean
//! or an integer where the field wants one, so a user id such as `007` is never mangled.
//!
//! Responses: one `Key=Value` line per leaf in the same flattening; strings quoted and
//! URL-encoded (an empty string is written `null`, as the spec's examples do), booleans and
//! numbers bare, empty lists and objects omitted.
//!
//! Written by hand: no crate implements this Axis-specific flattening.

use std::collections::BTreeMap;
use std::fmt::Write;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::Request;
use crate::vapix::fault::Fault;

/// Most key-value pairs one request may carry.
const MAX_PAIRS: usize = 1000;

/// A tree under construction: object keys keep their order, list items are keyed by index.
/// A leaf is `None` until its pair is read.
enum Node {
    Leaf(Option<Value>),
    Object(IndexMap<String, Node>),
    List(BTreeMap<usize, Node>),
}

/// Decodes a simple-format query string.
///
/// ```
/// use doorsim::vapix::format::simple;
/// let r = simple::decode("format=simple&action=axcall:GetSIPAccounts&SIPAccountId_0=a&SIPAccountId_1=%22b%22").unwrap();
/// assert_eq!(r.action, "axcall:GetSIPAccounts");
/// assert_eq!(r.params, serde_json::json!({"SIPAccountId": ["a", "b"]}));
/// ```
pub fn decode(query: &str) -> Result<Request, Fault> {
    let mut action = None;
    let mut root: IndexMap<String, Node> = IndexMap::new();
    for (count, (key, value)) in form_urlencoded::parse(query.as_bytes()).enumerate() {
        if count >= MAX_PAIRS {
            return Err(Fault::invalid_args(format!("more than {MAX_PAIRS} parameters")));
        }
        match key.as_ref() {
            "format" => continue,
            "action" if action.is_none() => action = Some(value.into_owned()),
            "action" => return Err(Fault::invalid_args("action given twice")),
            _ => insert(&mut root, &key, leaf(&value))?,
        }
    }
    let action = action.ok_or_else(|| Fault::invalid_args("missing action=axcall:<Command>"))?;
    Ok(Request { action, params: finish(Node::Object(root), "")? })
}

/// The value of one pair: `null`, a quoted string, or bare text.
fn leaf(raw: &str) -> Value {
    if raw == "null" {
        return Value::Null;
    }
    let unquoted = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw);
    Value::String(unquoted.to_owned())
}

fn insert(root: &mut IndexMap<String, Node>, key: &str, value: Value) -> Result<(), Fault> {
    // The deepest key the spec uses has five levels (SIPAccount_0_SIPProxies_0_Server): a deeper
    // one is refused before the recursive walk, so no key can exhaust the stack.
    if key.bytes().filter(|b| *b == b'_').count() >= MAX_DEPTH {
        return Err(Fault::invalid_args(format!("key nested deeper than {MAX_DEPTH} levels")));
    }
    let segments: Vec<&str> = key.split('_').collect();
    if segments.iter().any(|s| s.is_empty()) || is_index(segments[0]) {
        return Err(malformed(key));
    }
    let slot = root.entry(segments[0].to_owned()).or_insert_with(|| placeholder(segments.get(1)));
    place(slot, &segments[1..], value, key)
}

/// Walks `rest` down from `node`, creating levels as needed, and stores `value` at the end.
fn place(node: &mut Node, rest: &[&str], value: Value, key: &str) -> Result<(), Fault> {
    let Some((segment, tail)) = rest.split_first() else {
        return match node {
            Node::Leaf(v @ None) => {
                *v = Some(value);
                Ok(())
            }
            _ => Err(Fault::invalid_args(format!("key {key:?} given twice or used as a structure"))),
        };
    };
    let child = match node {
        Node::Object(m) if !is_index(segment) => {
            m.entry((*segment).to_owned()).or_insert_with(|| placeholder(tail.first()))
        }
        Node::List(items) if is_index(segment) => {
            let index: usize = segment.parse().map_err(|_| malformed(key))?;
            if index >= MAX_PAIRS {
                return Err(malformed(key));
            }
            items.entry(index).or_insert_with(|| placeholder(tail.first()))
        }
        _ => return Err(malformed(key)),
    };
    place(child, tail, value, key)
}

/// Levels a key may have at most.
const MAX_DEPTH: usize = 16;

fn malformed(key: &str) -> Fault {
    Fault::invalid_args(format!("malformed key {key:?}"))
}

fn is_index(segment: &str) -> bool {
    segment.bytes().all(|b| b.is_ascii_digit())
}

/// A new, empty node shaped for the segment that follows (a leaf when none follows).
fn placeholder(next: Option<&&str>) -> Node {
    match next {
        None => Node::Leaf(None),
        Some(s) if is_index(s) => Node::List(BTreeMap::new()),
        Some(_) => Node::Object(IndexMap::new()),
    }
}

fn finish(node: Node, path: &str) -> Result<Value, Fault> {
    Ok(match node {
        Node::Leaf(v) => v.unwrap_or(Value::Null),
        Node::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let child = if path.is_empty() { k.clone() } else { format!("{path}_{k}") };
                out.insert(k, finish(v, &child)?);
            }
            Value::Object(out)
        }
        Node::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (expected, (index, v)) in items.into_iter().enumerate() {
                if index != expected {
                    return Err(Fault::invalid_args(format!("list {path} has no item {expected}")));
                }
                out.push(finish(v, &format!("{path}_{index}"))?);
            }
            Value::Array(out)
        }
    })
}

/// Encodes a response value as `Key=Value` lines.
///
/// ```
/// use doorsim::vapix::format::simple;
/// let v = serde_json::json!({"SIPAccountStatus": {"Status": 0, "StatusText": "Does not register", "RegURI": ""}});
/// assert_eq!(simple::encode(&v), "SIPAccountStatus_Status=0\nSIPAccountStatus_StatusText=\"Does+not+register\"\nSIPAccountStatus_RegURI=null\n");
/// ```
pub fn encode(value: &Value) -> String {
    let mut out = String::new();
    flatten(&mut String::new(), value, &mut out);
    out
}

/// Writes the leaves under `value`; `key` is the flattened key so far, restored on return.
fn flatten(key: &mut String, value: &Value, out: &mut String) {
    let mut child = |key: &mut String, segment: &dyn std::fmt::Display, v: &Value| {
        let len = key.len();
        if len > 0 {
            key.push('_');
        }
        let _ = write!(key, "{segment}");
        flatten(key, v, out);
        key.truncate(len);
    };
    match value {
        Value::Object(m) => m.iter().for_each(|(k, v)| child(key, k, v)),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| child(key, &i, v)),
        leaf => {
            out.push_str(key);
            out.push('=');
            match leaf {
                Value::String(s) if !s.is_empty() => {
                    out.push('"');
                    encode_text(s, out);
                    out.push('"');
                }
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                Value::Number(n) => {
                    let _ = write!(out, "{n}");
                }
                _ => out.push_str("null"),
            }
            out.push('\n');
        }
    }
}

/// URL-encodes text the way the device writes it: space as `+`, URI punctuation such as
/// `:`, `/`, `@`, `[` and `]` kept (the spec shows `sip:192.168.0.90:5060` unescaped), the rest
/// of the reserved and non-ASCII bytes as `%XX`.
fn encode_text(s: &str, out: &mut String) {
    const KEEP: &[u8] = b"-._~:/@!$'()*,;[]";
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || KEEP.contains(&b) => out.push(b as char),
            b => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_spec_set_account_request_decodes() {
        let r = decode("format=simple&action=axcall:SetSIPAccount&SIPAccount_UserId=peer-to-peer").expect("valid");
        assert_eq!(r.action, "axcall:SetSIPAccount");
        assert_eq!(r.params, json!({"SIPAccount": {"UserId": "peer-to-peer"}}));
    }

    #[test]
    fn lists_quotes_nulls_and_escapes_decode() {
        let r = decode(
            "action=a&SIPAccount_0_UserId=%22a+b%22&SIPAccount_0_Password=null&SIPAccount_1_UserId=007\
             &SIPAccount_1_SIPProxies_0_Server=x&Ids_0=p&Ids_1=q",
        )
        .expect("valid");
        assert_eq!(
            r.params,
            json!({"SIPAccount": [{"UserId": "a b", "Password": null},
                                  {"UserId": "007", "SIPProxies": [{"Server": "x"}]}],
                   "Ids": ["p", "q"]})
        );
    }

    #[test]
    fn deeply_nested_keys_fault_instead_of_exhausting_the_stack() {
        let deep = format!("action=axcall:SetDTMFEvent&DTMFEvent{}=x", "_a".repeat(3000));
        assert!(decode(&deep).is_err());
        let indices = format!("action=axcall:RemoveDTMFEvents&DTMFEventId{}=x", "_0".repeat(5000));
        assert!(decode(&indices).is_err());
        let spec_deepest = "action=axcall:SetSIPAccount&SIPAccount_SIPProxies_0_Server=10.0.0.1";
        assert!(decode(spec_deepest).is_ok());
    }

    #[test]
    fn malformed_queries_fault_invalid_args() {
        for q in [
            "SIPAccount_UserId=x",               // no action
            "action=a&action=b",                 // two actions
            "action=a&K=1&K=2",                  // duplicate key
            "action=a&K=1&K_Sub=2",              // leaf used as a structure
            "action=a&K__x=1",                   // empty segment
            "action=a&L_1=x",                    // list with a gap
            "action=a&L_0=x&L_Sub=y",            // list used as an object
            "action=a&0=x",                      // index at the root
            "action=a&L_99999999999999999999=x", // index overflow
        ] {
            let f = decode(q).expect_err(q);
            assert_eq!(f.code, "ter:InvalidArgs", "{q}");
        }
    }

    #[test]
    fn responses_flatten_as_the_spec_shows() {
        let v = json!({"SIPAccountStatus": {"SIPAccountId": "sip_account_0", "SIPURI": "sip:192.168.0.90:5060",
            "RegURI": "", "Status": 0, "StatusText": "Does not register", "IsDefault": true, "L": []}});
        assert_eq!(
            encode(&v),
            "SIPAccountStatus_SIPAccountId=\"sip_account_0\"\nSIPAccountStatus_SIPURI=\"sip:192.168.0.90:5060\"\n\
             SIPAccountStatus_RegURI=null\nSIPAccountStatus_Status=0\nSIPAccountStatus_StatusText=\"Does+not+register\"\n\
             SIPAccountStatus_IsDefault=true\n"
        );
        assert_eq!(encode(&json!({"A": [{"B": "x&y=\"z\"%"}]})), "A_0_B=\"x%26y%3D%22z%22%25\"\n");
    }

    #[test]
    fn encoded_text_decodes_back() {
        for s in ["a b", "x&y=z", "\"q\"", "漢字🚀", "100%", "sip:[::1]:5060", "+"] {
            let mut encoded = String::new();
            encode_text(s, &mut encoded);
            let q = format!("action=a&K=\"{encoded}\"");
            assert_eq!(decode(&q).expect("valid").params, json!({"K": s}), "{s}");
        }
    }
}
