//! `--state PATH`: a device's configuration kept in a file across restarts. This module only
//! reads and writes the file; what goes in it, and the checks on the way back, belong to its
//! owners: the store (`DeviceState::to_file`/`from_file`: the Call service configuration), the
//! I/O ports (`IOPorts`: names, usage, normal states) and the door actions (`DTMFActions`). Each
//! owns top-level sections of one JSON object and replaces them with [`StateFile::save`]. A file
//! that does not parse or breaks a rule is refused with the reason and left as it is.
//!
//! A write is durable before it is acknowledged: the new document goes to a temporary file beside
//! the real one, which is flushed to disk (`fsync`), renamed over it, and the directory is
//! flushed too; `kill -9` at any moment leaves either the old file or the new one, whole.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};
use thiserror::Error;

/// Why a state file could not be used.
#[derive(Debug, Error)]
pub enum StateError {
    /// It could not be read or written.
    #[error("state file {0}: {1}")]
    Io(String, std::io::Error),
    /// It is not a JSON object.
    #[error("state file {0} is not a valid JSON object ({1}); fix or remove it, it was left as it is")]
    Syntax(String, String),
    /// A value or a rule is broken.
    #[error("state file {0} is refused ({1}); fix or remove it, it was left as it is")]
    Invalid(String, String),
}

/// The file of one device's state, shared by the parts that keep sections in it.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// The document as last written (or loaded). Held while a write is in progress, so writes
    /// of different sections never interleave and the file always holds each one's latest.
    document: Mutex<Map<String, Value>>,
    /// Whether there was no file at start.
    fresh: bool,
}

impl StateFile {
    /// The state file at `path`, read if it exists (its directory must exist or be creatable).
    pub fn open(path: &Path) -> Result<StateFile, StateError> {
        let name = path.display().to_string();
        let (document, fresh) = match std::fs::read_to_string(path) {
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => (map, false),
                Ok(_) => return Err(StateError::Syntax(name, "the top level is not an object".into())),
                Err(e) => return Err(StateError::Syntax(name, e.to_string())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Map::new(), true),
            Err(e) => return Err(StateError::Io(name, e)),
        };
        Ok(StateFile { path: path.to_owned(), document: Mutex::new(document), fresh })
    }

    /// The file's name, for messages.
    pub fn display(&self) -> String {
        self.path.display().to_string()
    }

    /// Whether there was no file at start (the owners write their initial sections).
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map<String, Value>> {
        // A write replaces the map only after it succeeded, so a poisoned lock is consistent.
        self.document.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The whole document as loaded or last written.
    pub fn document(&self) -> Value {
        Value::Object(self.lock().clone())
    }

    /// A refusal of what the file holds, for its owners' checks at start.
    pub fn refused(&self, why: impl std::fmt::Display) -> StateError {
        StateError::Invalid(self.display(), why.to_string())
    }

    /// Replaces the top-level `sections` and writes the document durably (temporary file,
    /// fsync, rename, fsync of the directory). A failed write leaves the document as it was.
    pub fn save(&self, sections: Map<String, Value>) -> Result<(), StateError> {
        let mut document = self.lock();
        let mut next = document.clone();
        next.extend(sections);
        self.write(&Value::Object(next.clone()))?;
        *document = next;
        Ok(())
    }

    fn write(&self, value: &Value) -> Result<(), StateError> {
        let io = |e| StateError::Io(self.display(), e);
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }
}

/// `value`'s top-level object as sections for [`StateFile::save`] (empty if it is not one).
pub fn sections(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_sections_load_back_and_a_missing_file_is_fresh() {
        let dir = std::env::temp_dir().join(format!("doorsim-persist-{}", std::process::id()));
        let path = dir.join("device.json");
        let file = StateFile::open(&path).expect("no file");
        assert!(file.is_fresh() && file.document() == serde_json::json!({}));
        file.save(sections(serde_json::json!({"a": [1, 2], "b": 1}))).expect("save");
        file.save(sections(serde_json::json!({"b": 2}))).expect("save a section");
        let again = StateFile::open(&path).expect("load");
        assert!(!again.is_fresh());
        assert_eq!(again.document(), serde_json::json!({"a": [1, 2], "b": 2}), "sections are kept apart");
        std::fs::write(&path, "{nope").expect("write");
        assert!(matches!(StateFile::open(&path), Err(StateError::Syntax(..))));
        std::fs::write(&path, "[1]").expect("write");
        assert!(matches!(StateFile::open(&path), Err(StateError::Syntax(..))));
        let _ = std::fs::remove_dir_all(dir);
    }
}
