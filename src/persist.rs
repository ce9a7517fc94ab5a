//! `--state PATH`: a device's configuration kept in a file across restarts. This module only
//! reads and writes the file; what goes in it, and the checks on the way back, are the store's
//! (`DeviceState::to_file`, `DeviceState::from_file`). A file that does not parse or breaks a
//! rule is refused with the reason and left as it is.
//!
//! A write is durable before it is acknowledged: the new state goes to a temporary file beside
//! the real one, which is flushed to disk (`fsync`), renamed over it, and the directory is
//! flushed too; `kill -9` at any moment leaves either the old file or the new one, whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

/// Why a state file could not be used.
#[derive(Debug, Error)]
pub enum StateError {
    /// It could not be read or written.
    #[error("state file {0}: {1}")]
    Io(String, std::io::Error),
    /// It is not JSON.
    #[error("state file {0} is not valid JSON ({1}); fix or remove it, it was left as it is")]
    Syntax(String, String),
    /// A value or a rule is broken.
    #[error("state file {0} is refused ({1}); fix or remove it, it was left as it is")]
    Invalid(String, String),
}

/// The file of one device's state.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file at `path` (its directory must exist or be creatable).
    pub fn new(path: &Path) -> StateFile {
        StateFile { path: path.to_owned() }
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// The file's name, for messages.
    pub fn display(&self) -> String {
        self.name()
    }

    /// What the file holds, or `None` when there is no file yet.
    pub fn load(&self) -> Result<Option<Value>, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::Io(self.name(), e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| StateError::Syntax(self.name(), e.to_string()))
    }

    /// Writes `value` durably (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, value: &Value) -> Result<(), StateError> {
        let io = |e| StateError::Io(self.name(), e);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_value_loads_back_and_a_missing_file_is_none() {
        let dir = std::env::temp_dir().join(format!("doorsim-persist-{}", std::process::id()));
        let file = StateFile::new(&dir.join("device.json"));
        assert!(file.load().expect("no file").is_none());
        let v = serde_json::json!({"a": [1, 2]});
        file.save(&v).expect("save");
        assert_eq!(file.load().expect("load"), Some(v));
        std::fs::write(dir.join("device.json"), "{nope").expect("write");
        assert!(matches!(file.load(), Err(StateError::Syntax(..))));
        let _ = std::fs::remove_dir_all(dir);
    }
}
