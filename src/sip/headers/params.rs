//! Generic parameters (`;name=value;flag`), in order, names compared case-insensitively.

use std::fmt;

/// An ordered parameter list; a name without `=` has no value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// Reads `;a=b;c` (the text after the first `;`, without it).
    pub(crate) fn parse(text: &str) -> Params {
        Params(
            split_outside_quotes(text, ';')
                .into_iter()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((n, v)) => (n.trim().to_owned(), Some(v.trim().to_owned())),
                    None => (p.to_owned(), None),
                })
                .collect(),
        )
    }

    /// The value of `name`: `Some("")` for a flag, `None` when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Whether `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Sets `name` (replacing it in place, or appending); `None` writes a flag.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(entry) => entry.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

/// Splits `text` at `separator` where it is not inside double quotes or angle brackets.
pub(crate) fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut angle, mut escaped) = (Vec::new(), 0, false, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            c if c == separator && !quoted && !angle => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_round_trip() {
        for text in [";transport=tcp;lr", ";tag=abc", ";q=0.5;expires=60", ""] {
            let p = Params::parse(text.strip_prefix(';').unwrap_or(text));
            assert_eq!(p.to_string(), text);
        }
        let p = Params::parse("Transport=TCP;lr;x=\"a;b\"");
        assert_eq!(p.get("transport"), Some("TCP"));
        assert_eq!(p.get("lr"), Some(""));
        assert_eq!(p.get("x"), Some("\"a;b\""));
        assert_eq!(p.get("maddr"), None);
    }
}
