//! `Attribute` and `AttributeInfo`: extra settings for SIP accounts and the SIP configuration.
//!
//! The supported attributes are one table; an attribute that is not in it is silently dropped,
//! as the spec says, and a supported one must hold a value of its declared type.

use serde::Serialize;

use super::error::{ModelError, ModelResult};
use super::fields::{Fields, MAX_TEXT_LEN};

/// One `{Name, Value}` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attribute {
    /// The attribute's name, one of [`SUPPORTED_ATTRIBUTES`].
    pub name: String,
    /// The attribute's value as text.
    pub value: String,
}

/// The declaration of a supported attribute, as GetSupported*Attributes returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeInfo {
    /// Attribute name.
    pub name: &'static str,
    /// `bool`, `int` or `string`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// Default value as text.
    pub default: &'static str,
}

/// The attributes this device implements, for accounts and the SIP configuration alike.
pub const SUPPORTED_ATTRIBUTES: [AttributeInfo; 3] = [
    AttributeInfo { name: "DisableTCPSwitch", kind: "bool", default: "false" },
    AttributeInfo { name: "MaxCallDuration", kind: "int", default: "0" },
    AttributeInfo { name: "RegistrationInterval", kind: "int", default: "3600" },
];

/// Integer range of each `int` attribute: MaxCallDuration 0 (unlimited) to a day,
/// RegistrationInterval 60 s to a day.
fn int_range(name: &str) -> std::ops::RangeInclusive<i64> {
    match name {
        "RegistrationInterval" => 60..=86_400,
        _ => 0..=86_400,
    }
}

/// Reads the `Attribute` list of `f`: supported ones are checked, the rest dropped.
pub fn read_attributes(f: &Fields<'_>) -> ModelResult<Vec<Attribute>> {
    let mut out: Vec<Attribute> = Vec::new();
    for item in f.opt_list("Attribute")?.unwrap_or_default() {
        let a = f.item("Attribute", item)?;
        let name = a.req_text("Name")?;
        let value = a.req_text("Value")?;
        let Some(info) = SUPPORTED_ATTRIBUTES.iter().find(|i| i.name == name) else {
            tracing::debug!(%name, "ignoring unsupported attribute");
            continue;
        };
        let path = a.path_of("Value");
        let ok = match info.kind {
            "bool" => value == "true" || value == "false",
            "int" => value.parse::<i64>().is_ok_and(|n| int_range(&name).contains(&n)),
            _ => value.len() <= MAX_TEXT_LEN,
        };
        if !ok {
            return Err(ModelError::invalid(&path, format!("not a valid {} for {name}", info.kind)));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(ModelError::invalid(&path, format!("attribute {name} given twice")));
        }
        out.push(Attribute { name, value });
    }
    Ok(out)
}

/// The integer value of attribute `name`, or its declared default.
pub fn int_attribute(attributes: &[Attribute], name: &str) -> i64 {
    attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
        .or_else(|| SUPPORTED_ATTRIBUTES.iter().find(|i| i.name == name).map(|i| i.default))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsupported_attributes_are_dropped_and_supported_ones_typed() {
        let v = json!({"Attribute": [{"Name": "Foo", "Value": "x"}, {"Name": "MaxCallDuration", "Value": "120"}]});
        let f = Fields::new(&v, "", false).expect("object");
        let attrs = read_attributes(&f).expect("valid");
        assert_eq!(attrs, vec![Attribute { name: "MaxCallDuration".into(), value: "120".into() }]);
        assert_eq!(int_attribute(&attrs, "MaxCallDuration"), 120);
        assert_eq!(int_attribute(&attrs, "RegistrationInterval"), 3600);
    }

    #[test]
    fn badly_typed_attribute_values_are_refused() {
        let v = json!({"Attribute": [{"Name": "DisableTCPSwitch", "Value": "yes"}]});
        let f = Fields::new(&v, "", false).expect("object");
        assert!(matches!(read_attributes(&f), Err(ModelError::Invalid(_))));
        let v = json!({"Attribute": [{"Name": "RegistrationInterval", "Value": "5"}]});
        let f = Fields::new(&v, "", false).expect("object");
        assert!(read_attributes(&f).is_err());
    }
}
