//! The CSeq header (RFC 3261 section 20.16): a sequence number below 2^31 and a method.

use std::fmt;

use super::{malformed, HeaderError};

/// A CSeq value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number.
    pub number: u32,
    /// The method.
    pub method: String,
}

impl CSeq {
    /// A CSeq of `number` and `method`.
    pub fn new(number: u32, method: &str) -> CSeq {
        CSeq { number, method: method.to_owned() }
    }

    /// Reads a CSeq value.
    pub fn parse(text: &str) -> Result<CSeq, HeaderError> {
        let (n, m) = text.trim().split_once(char::is_whitespace).ok_or(malformed("CSeq", "no method"))?;
        let number = n.parse::<u32>().ok().filter(|n| *n < 1 << 31).ok_or(malformed("CSeq", "bad number"))?;
        let method = m.trim();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(malformed("CSeq", "bad method"));
        }
        Ok(CSeq { number, method: method.to_owned() })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_round_trip() {
        for text in ["1 INVITE", "4711 REGISTER", "2147483647 BYE"] {
            assert_eq!(CSeq::parse(text).expect("valid in the test").to_string(), text);
        }
        assert_eq!(CSeq::parse("  7\tACK ").expect("valid in the test"), CSeq::new(7, "ACK"));
        for bad in ["", "INVITE", "x INVITE", "2147483648 INVITE", "1 "] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
    }
}
