//! The checkpoint store: one redb file holding the latest checkpoint of each stateful stage
//! worker. A worker's state carries the source positions it reflects and is replaced in
//! one durable transaction, so a crash leaves either the previous checkpoint or the new
//! one, never a mix of state with positions it does not reflect.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition, TableError};

/// Stage state by name (`STAGE` or `STAGE/WORKER`), as the stage serialized it.
const OPERATORS: TableDefinition<&str, &[u8]> = TableDefinition::new("operators");

/// The store of a pipeline's checkpoints.
pub struct CheckpointStore {
    path: PathBuf,
    db: Database,
}

impl CheckpointStore {
    /// Opens the store at `path`, making it if it is not there.
    ///
    /// # Errors
    /// `PATH: reason` when the file cannot be opened or is not a checkpoint store.
    pub fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let db = Database::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            db,
        })
    }

    /// Replaces the state stored under `name` (a stage worker, `STAGE/WORKER`) in one
    /// durable transaction. The state carries the source positions it reflects, so the two
    /// can never disagree.
    ///
    /// # Errors
    /// `PATH: reason` when the transaction fails; the previous state stays.
    pub fn put(&self, name: &str, state: &[u8]) -> Result<(), String> {
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", self.path.display());
        let txn = self.db.begin_write().map_err(|e| fail(&e))?;
        {
            let mut table = txn.open_table(OPERATORS).map_err(|e| fail(&e))?;
            table.insert(name, state).map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| fail(&e))
    }

    /// The state stored under `name`, if any.
    ///
    /// # Errors
    /// `PATH: reason` when the store cannot be read.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", self.path.display());
        let txn = self.db.begin_read().map_err(|e| fail(&e))?;
        let table = match txn.open_table(OPERATORS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(fail(&e)),
        };
        Ok(table
            .get(name)
            .map_err(|e| fail(&e))?
            .map(|v| v.value().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_workers_state_is_replaced_alone_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = CheckpointStore::open(&dir.path().join("c.redb")).expect("opens");
        assert_eq!(store.get("win/0").expect("reads"), None);
        store.put("win/0", b"a").expect("writes");
        store.put("win/1", b"b").expect("writes");
        store.put("win/0", b"c").expect("writes");
        drop(store);
        let store = CheckpointStore::open(&dir.path().join("c.redb")).expect("reopens");
        assert_eq!(
            store.get("win/0").expect("reads").as_deref(),
            Some(&b"c"[..])
        );
        assert_eq!(
            store.get("win/1").expect("reads").as_deref(),
            Some(&b"b"[..])
        );
    }

    #[test]
    fn a_file_that_is_not_a_store_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("checkpoints.redb");
        std::fs::write(&path, b"this is not a database at all, just text").expect("writes");
        let error = CheckpointStore::open(&path).err().expect("refused");
        assert!(error.starts_with(&path.display().to_string()), "{error}");
    }
}
