//! The checkpoint store: one redb file holding the latest checkpoint, written whole in
//! one transaction, so a crash leaves either the previous checkpoint or the new one and
//! never a mix of a stage's state with positions it does not reflect.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

/// Stage state by name (`STAGE` or `STAGE/WORKER`), as the stage serialized it.
const OPERATORS: TableDefinition<&str, &[u8]> = TableDefinition::new("operators");
/// Source positions by name (`SOURCE` or `SOURCE/PARTITION`), as the source encoded them.
const POSITIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("positions");
/// The checkpoint's number and time.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// One checkpoint: every stage's state and the source positions it reflects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Counts up from 1 with each checkpoint written.
    pub id: u64,
    /// When it was written, ms since the Unix epoch.
    pub written_at: u64,
    /// Stage state by name.
    pub operators: BTreeMap<String, Vec<u8>>,
    /// Source positions by name.
    pub positions: BTreeMap<String, Vec<u8>>,
}

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

    /// Replaces the stored checkpoint with `operators` and `positions`, in one durable
    /// transaction; returns the new checkpoint's id.
    ///
    /// # Errors
    /// `PATH: reason` when the transaction fails; the previous checkpoint stays.
    pub fn write(
        &self,
        operators: &BTreeMap<String, Vec<u8>>,
        positions: &BTreeMap<String, Vec<u8>>,
    ) -> Result<u64, String> {
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", self.path.display());
        let txn = self.db.begin_write().map_err(|e| fail(&e))?;
        let id = {
            let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
            let id = meta
                .get("id")
                .map_err(|e| fail(&e))?
                .map_or(0, |v| v.value())
                + 1;
            meta.insert("id", id).map_err(|e| fail(&e))?;
            meta.insert("written_at", crate::event::now_ms().max(0) as u64)
                .map_err(|e| fail(&e))?;
            id
        };
        for (table, entries) in [(OPERATORS, operators), (POSITIONS, positions)] {
            // What the previous checkpoint held and this one does not must go.
            txn.delete_table(table).map_err(|e| fail(&e))?;
            let mut table = txn.open_table(table).map_err(|e| fail(&e))?;
            for (name, bytes) in entries {
                table
                    .insert(name.as_str(), bytes.as_slice())
                    .map_err(|e| fail(&e))?;
            }
        }
        txn.commit().map_err(|e| fail(&e))?;
        Ok(id)
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
            let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
            meta.insert("written_at", crate::event::now_ms().max(0) as u64)
                .map_err(|e| fail(&e))?;
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

    /// The stored checkpoint, if one was written.
    ///
    /// # Errors
    /// `PATH: reason` when the store cannot be read.
    pub fn latest(&self) -> Result<Option<Checkpoint>, String> {
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", self.path.display());
        let txn = self.db.begin_read().map_err(|e| fail(&e))?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(fail(&e)),
        };
        let value = |key: &str| -> Result<u64, String> {
            Ok(meta
                .get(key)
                .map_err(|e| fail(&e))?
                .map_or(0, |v| v.value()))
        };
        let mut checkpoint = Checkpoint {
            id: value("id")?,
            written_at: value("written_at")?,
            ..Checkpoint::default()
        };
        for (table, into) in [
            (OPERATORS, &mut checkpoint.operators),
            (POSITIONS, &mut checkpoint.positions),
        ] {
            let table = match txn.open_table(table) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => continue,
                Err(e) => return Err(fail(&e)),
            };
            for entry in table.iter().map_err(|e| fail(&e))? {
                let (name, bytes) = entry.map_err(|e| fail(&e))?;
                into.insert(name.value().to_owned(), bytes.value().to_vec());
            }
        }
        Ok(Some(checkpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect()
    }

    #[test]
    fn a_checkpoint_survives_reopening_and_the_next_one_replaces_it_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state/checkpoints.redb");
        let store = CheckpointStore::open(&path).expect("opens");
        assert_eq!(store.latest().expect("reads"), None);
        let first = store
            .write(
                &map(&[("win/0", b"state-a"), ("win/1", b"state-b")]),
                &map(&[("orders/0", b"41")]),
            )
            .expect("writes");
        assert_eq!(first, 1);
        drop(store);

        let store = CheckpointStore::open(&path).expect("reopens");
        let latest = store.latest().expect("reads").expect("one checkpoint");
        assert_eq!(latest.id, 1);
        assert!(latest.written_at > 0);
        assert_eq!(
            latest.operators,
            map(&[("win/0", b"state-a"), ("win/1", b"state-b")])
        );
        assert_eq!(latest.positions, map(&[("orders/0", b"41")]));

        // Worker 1 holds nothing now: its old state must not come back.
        let second = store
            .write(&map(&[("win/0", b"state-c")]), &map(&[("orders/0", b"97")]))
            .expect("writes");
        assert_eq!(second, 2);
        let latest = store.latest().expect("reads").expect("checkpoint");
        assert_eq!(latest.operators, map(&[("win/0", b"state-c")]));
        assert_eq!(latest.positions, map(&[("orders/0", b"97")]));
    }

    #[test]
    fn one_workers_state_is_replaced_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = CheckpointStore::open(&dir.path().join("c.redb")).expect("opens");
        assert_eq!(store.get("win/0").expect("reads"), None);
        store.put("win/0", b"a").expect("writes");
        store.put("win/1", b"b").expect("writes");
        store.put("win/0", b"c").expect("writes");
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
