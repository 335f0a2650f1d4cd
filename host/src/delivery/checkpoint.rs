//! Source positions on disk: one small JSON file per source in the state directory, replaced
//! atomically (write, sync, rename) so a crash leaves the old or the new position, never a
//! torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A position that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint {path}: {reason}")]
pub struct CheckpointError {
    /// The checkpoint file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// The directory of source checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// A store in `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("source-{name}.json"))
    }

    /// The saved position of source `name`, if any.
    ///
    /// # Errors
    /// A [`CheckpointError`] when the file exists but cannot be read or parsed.
    pub fn load<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, CheckpointError> {
        let path = self.path(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(&path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| error(&path, e))
    }

    /// Saves the position of source `name`, replacing the previous one atomically.
    ///
    /// # Errors
    /// A [`CheckpointError`] when the directory or file cannot be written.
    pub fn save<T: Serialize>(&self, name: &str, position: &T) -> Result<(), CheckpointError> {
        let path = self.path(name);
        std::fs::create_dir_all(&self.dir).map_err(|e| error(&self.dir, e))?;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(position).map_err(|e| error(&path, e))?;
        let mut file = std::fs::File::create(&tmp).map_err(|e| error(&tmp, e))?;
        file.write_all(&bytes).map_err(|e| error(&tmp, e))?;
        file.sync_data().map_err(|e| error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| error(&path, e))
    }
}

fn error(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_position_is_loaded_back_and_absent_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path().join("state"));
        assert_eq!(store.load::<u64>("in").unwrap(), None);
        store.save("in", &42u64).unwrap();
        store.save("in", &43u64).unwrap();
        assert_eq!(store.load::<u64>("in").unwrap(), Some(43));
        std::fs::write(dir.path().join("state/source-bad.json"), b"{").unwrap();
        let err = store.load::<u64>("bad").unwrap_err().to_string();
        assert!(err.contains("source-bad.json"), "{err}");
    }
}
