//! Hostile: tries to reach outside its sandbox (a file, the environment, the network) and
//! reports, for each input, what happened as `{"file": .., "env": .., "socket": ..}`.
//! Under Weir every attempt must fail.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct SandboxProbe;

fn outcome<T, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "allowed".to_owned(),
        Err(e) => format!("denied: {e}"),
    }
}

impl Handler for SandboxProbe {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle(&mut self, _event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        let file = outcome(std::fs::read("/etc/passwd"));
        let dir = outcome(std::fs::read_dir("/"));
        let env = std::env::vars().count();
        let socket = outcome(std::net::TcpStream::connect("127.0.0.1:22"));
        let report = std::collections::BTreeMap::from([
            ("file", file),
            ("dir", dir),
            ("env", env.to_string()),
            ("socket", socket),
        ]);
        out.emit_serialized(&report)
    }
}

export_handler!(SandboxProbe);
