//! Connecting to NATS the way every Weir NATS component does: named after the component,
//! reconnecting for ever, retrying the first connection in the background, and reporting
//! reachability to readiness. Also the mapping between NATS headers and event headers.

use async_nats::{Client, ConnectOptions, HeaderMap, ServerAddr};
use bytes::Bytes;

use crate::config::NatsAuth;
use crate::event::Header;
use crate::health::Health;

/// Messages the client holds per subscription before it drops them (a slow consumer).
const SUBSCRIPTION_CAPACITY: usize = 64 * 1024;

/// Connects `component` to `servers`. The connection is made in the background: until it
/// is up (and whenever it drops), `health` holds a problem for the component.
///
/// # Errors
/// Servers that are not URLs, or a credentials file that cannot be read.
pub async fn connect(
    component: &str,
    servers: &str,
    auth: &NatsAuth,
    health: &Health,
) -> Result<Client, String> {
    let addresses = servers
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<ServerAddr>()
                .map_err(|e| format!("server {s:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    health.problem(component, &format!("connecting to NATS at {servers}"));
    let events_health = health.clone();
    let name = component.to_owned();
    let mut options = ConnectOptions::new()
        .name(format!("weir-{component}"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .event_callback(move |event| {
            let health = events_health.clone();
            let name = name.clone();
            async move { on_event(&name, &health, event) }
        });
    if let Some(token) = &auth.token {
        options = options.token(token.clone());
    }
    if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(path) = &auth.creds_file {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| format!("credentials file {}: {e}", path.display()))?;
    }
    options
        .connect(addresses)
        .await
        .map_err(|e| format!("cannot connect to NATS at {servers}: {e}"))
}

fn on_event(component: &str, health: &Health, event: async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => {
            health.recovered(component);
            tracing::info!(component, "connected to NATS");
        }
        Event::Disconnected => {
            health.problem(component, "NATS server unreachable; reconnecting");
            tracing::warn!(component, "lost the NATS connection; reconnecting");
        }
        Event::SlowConsumer(_) => {
            tracing::warn!(
                component,
                "NATS dropped messages: this subscriber fell behind"
            )
        }
        Event::LameDuckMode => {
            tracing::warn!(
                component,
                "the NATS server is shutting down (lame duck mode)"
            )
        }
        Event::ServerError(e) => tracing::warn!(component, error = %e, "NATS server error"),
        Event::ClientError(e) => tracing::warn!(component, error = %e, "NATS client error"),
        other => tracing::debug!(component, event = %other, "NATS connection event"),
    }
}

/// NATS headers as event headers (a name with several values gives several headers).
pub fn event_headers(map: Option<&HeaderMap>) -> Vec<Header> {
    let Some(map) = map else {
        return Vec::new();
    };
    let mut headers = Vec::with_capacity(map.len());
    for (name, values) in map.iter() {
        let name: &str = name.as_ref();
        for value in values {
            headers.push(Header {
                name: name.to_owned(),
                value: Bytes::copy_from_slice(value.as_str().as_bytes()),
            });
        }
    }
    headers
}

/// Event headers as NATS headers; values that are not UTF-8 are written lossily, as NATS
/// headers are text. The `weir-nats-*` headers a NATS source added describe the message
/// the event came from, not the one published now, so they are left out.
pub fn nats_headers(headers: &[Header]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for h in headers {
        if h.name.starts_with(super::SOURCE_HEADER_PREFIX) {
            continue;
        }
        map.append(h.name.as_str(), String::from_utf8_lossy(&h.value).as_ref());
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &[u8]) -> Header {
        Header {
            name: name.to_owned(),
            value: Bytes::copy_from_slice(value),
        }
    }

    #[test]
    fn user_headers_are_published_and_source_metadata_is_not() {
        let map = nats_headers(&[
            header("trace-id", b"abc"),
            header(super::super::HEADER_SUBJECT, b"orders.eu"),
            header(super::super::HEADER_DELIVERED, b"2"),
            header("tag", b"x"),
            header("tag", b"y"),
        ]);
        assert_eq!(map.get("trace-id").map(|v| v.as_str()), Some("abc"));
        assert_eq!(
            map.get_all("tag").map(|v| v.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert!(map.get(super::super::HEADER_SUBJECT).is_none());
        assert!(map.get(super::super::HEADER_DELIVERED).is_none());
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn nats_headers_become_event_headers_with_every_value() {
        let mut map = HeaderMap::new();
        map.append("tag", "x");
        map.append("tag", "y");
        let headers = event_headers(Some(&map));
        let values: Vec<&[u8]> = headers.iter().map(|h| &h.value[..]).collect();
        assert_eq!(values, [&b"x"[..], &b"y"[..]]);
        assert!(event_headers(None).is_empty());
    }
}
