//! `AudioCodec` and the codec priority list (spec: "Audio codecs"; DESIGN.md decision 11).

use serde::Serialize;

use super::error::{ModelError, ModelResult};
use super::fields::{Fields, MAX_TEXT_LEN};

/// One codec of a priority list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AudioCodec {
    /// Codec name as SDP writes it (`PCMU`, `PCMA`, `telephone-event`).
    pub name: String,
    /// Extra codec parameters (SDP `fmtp`).
    pub options: String,
    /// Clock rate in Hz.
    pub sample_rate: u32,
}

/// What the emulator really encodes and decodes: name, clock rate, default options.
const SUPPORTED: [(&str, u32, &str); 3] = [("PCMU", 8000, ""), ("PCMA", 8000, ""), ("telephone-event", 8000, "0-15")];

/// The supported codecs, which are also the default priority list.
pub fn supported_codecs() -> Vec<AudioCodec> {
    SUPPORTED
        .iter()
        .map(|(name, rate, options)| AudioCodec {
            name: (*name).to_owned(),
            options: (*options).to_owned(),
            sample_rate: *rate,
        })
        .collect()
}

/// Reads the `AudioCodec` priority list of a SetAudioCodecs request: every codec supported,
/// none twice, at least one.
pub fn read_priority_list(f: &Fields<'_>) -> ModelResult<Vec<AudioCodec>> {
    let items = f.req_list("AudioCodec")?;
    if items.is_empty() {
        return Err(ModelError::invalid(&f.path_of("AudioCodec"), "the priority list needs at least one codec"));
    }
    let mut out: Vec<AudioCodec> = Vec::new();
    for item in items {
        let c = f.item("AudioCodec", item)?;
        let name = c.req_text("Name")?;
        let rate = c.opt_int("SampleRate", 1..=192_000)?;
        let Some((canonical, supported_rate, default_options)) = SUPPORTED
            .iter()
            .find(|(n, r, _)| n.eq_ignore_ascii_case(&name) && rate.is_none_or(|rate| rate == i64::from(*r)))
        else {
            return Err(ModelError::invalid(&c.path_of("Name"), format!("{name:?} is not a supported codec")));
        };
        if out.iter().any(|o| o.name == *canonical) {
            return Err(ModelError::invalid(&c.path_of("Name"), format!("{canonical} listed twice")));
        }
        // Absent options take the codec's default; `null` (how the simple format writes "") is empty.
        let options = match c.opt_text("Options")? {
            Some(o) => o,
            None if c.is_null("Options") => String::new(),
            None => (*default_options).to_owned(),
        };
        if options.len() > MAX_TEXT_LEN {
            return Err(ModelError::invalid(&c.path_of("Options"), "too long"));
        }
        out.push(AudioCodec { name: (*canonical).to_owned(), options, sample_rate: *supported_rate });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: serde_json::Value) -> ModelResult<Vec<AudioCodec>> {
        read_priority_list(&Fields::new(&v, "", false)?)
    }

    #[test]
    fn a_reordered_list_reads_with_canonical_names() {
        let l = read(json!({"AudioCodec": [{"Name": "pcma"}, {"Name": "PCMU", "SampleRate": 8000}]})).expect("valid");
        assert_eq!(l.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["PCMA", "PCMU"]);
    }

    #[test]
    fn unsupported_duplicate_and_empty_lists_are_refused() {
        assert!(read(json!({"AudioCodec": [{"Name": "opus"}]})).is_err());
        assert!(read(json!({"AudioCodec": [{"Name": "PCMU", "SampleRate": 16000}]})).is_err());
        assert!(read(json!({"AudioCodec": [{"Name": "PCMU"}, {"Name": "PCMU"}]})).is_err());
        assert!(read(json!({"AudioCodec": []})).is_err());
        assert!(matches!(read(json!({})), Err(ModelError::Missing(_))));
    }
}
