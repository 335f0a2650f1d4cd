//! Operator state that outlives the process: checkpoints of stage state together with the
//! source positions that state reflects, in an embedded store.

mod checkpoint;

pub use checkpoint::CheckpointStore;
