//! Hot-reload test plugin, build "b" (see ../stamp-a/src/stamp.rs).

const BUILD: &str = "b";
const TRAP_IN_INIT: bool = false;
include!("../../stamp-a/src/stamp.rs");
