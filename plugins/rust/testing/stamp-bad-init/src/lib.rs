//! Hot-reload test plugin whose init traps: a version that must never serve.

const BUILD: &str = "bad-init";
const TRAP_IN_INIT: bool = true;
include!("../../stamp-a/src/stamp.rs");
