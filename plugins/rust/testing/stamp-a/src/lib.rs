//! Hot-reload test plugin, build "a" (see stamp.rs).

const BUILD: &str = "a";
const TRAP_IN_INIT: bool = false;
include!("stamp.rs");
