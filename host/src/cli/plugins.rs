//! `weir plugins --server URL`: the plugins of a running service and how they stand.

use clap::Args;

use super::{EXIT_OK, fail};

/// Arguments of `weir plugins`.
#[derive(Debug, Args)]
pub(super) struct PluginsArgs {
    /// The service's HTTP address, e.g. http://127.0.0.1:9464.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9464")]
    server: String,

    /// The admin token ([server] admin_token), if the service has one.
    #[arg(long, env = "WEIR_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Print the service's JSON as it is.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: &PluginsArgs) -> u8 {
    let url = format!("{}/api/v1/plugins", args.server.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(&url);
    if let Some(token) = &args.token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = match request.call() {
        Ok(response) => response,
        Err(e) => return fail(format!("GET {url}: {e}")),
    };
    let status = response.status();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    if !status.is_success() {
        return fail(format!("GET {url}: {status}: {}", body.trim()));
    }
    if args.json {
        println!("{}", body.trim());
        return EXIT_OK;
    }
    let parsed: serde_json::Value = match serde_json::from_str(&body) {
        Ok(value) => value,
        Err(e) => return fail(format!("GET {url}: not the plugin list: {e}")),
    };
    println!(
        "{:<20} {:<11} {:<13} {:<12} {:>7} {:>7}  LAST ERROR",
        "PLUGIN", "WORLD", "VERSION", "STATE", "RELOADS", "FAILED"
    );
    for p in parsed["plugins"].as_array().into_iter().flatten() {
        let text = |key: &str| p[key].as_str().unwrap_or("-").to_owned();
        println!(
            "{:<20} {:<11} {:<13} {:<12} {:>7} {:>7}  {}",
            text("name"),
            text("kind"),
            text("version"),
            text("state"),
            p["reloads"].as_u64().unwrap_or(0),
            p["failed_reloads"].as_u64().unwrap_or(0),
            p["last_error"].as_str().unwrap_or("")
        );
    }
    EXIT_OK
}
