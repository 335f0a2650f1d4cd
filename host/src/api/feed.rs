//! The live feed's endpoints: `GET /api/v1/events/stream` (SSE), `GET
//! /api/v1/events/history` and `GET /api/v1/connections`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::Json;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::ExtensionRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiState, authorized, unauthorized};
use crate::expr::Condition;
use crate::feed::{FeedStream, Peer, Refusal, Request, Resume, StreamSettings};

/// `?stage=NAME&filter=EXPR&token=T` of the stream.
#[derive(Deserialize)]
pub(super) struct StreamQuery {
    stage: String,
    filter: Option<String>,
    token: Option<String>,
    /// For clients that cannot set `Last-Event-ID`.
    last_event_id: Option<String>,
}

/// `?stage=NAME&limit=N&since=ID&token=T` of the history.
#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    stage: String,
    limit: Option<usize>,
    since: Option<u64>,
    token: Option<String>,
}

fn text(status: StatusCode, message: String) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// The feed's token check: the header, or `?token=` (a browser's `EventSource` cannot
/// set headers).
fn feed_authorized(state: &ApiState, headers: &HeaderMap, token: Option<&str>) -> bool {
    if !state.clients.config().require_token {
        return true;
    }
    if authorized(state, headers) {
        return true;
    }
    let mut with_token = HeaderMap::new();
    if let Some(value) = token.and_then(|t| format!("Bearer {t}").parse().ok()) {
        with_token.insert(header::AUTHORIZATION, value);
    }
    token.is_some() && authorized(state, &with_token)
}

fn no_such_output(state: &ApiState, stage: &str) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!(
            "no output named {stage:?}; outputs: {}",
            state.feeds.names().join(", ")
        ),
    )
}

fn refused(refusal: &Refusal) -> Response {
    match refusal {
        Refusal::TooFast(seconds) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, seconds.to_string())],
            format!("{refusal}\n"),
        )
            .into_response(),
        Refusal::Full(_) | Refusal::FullForIp(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5".to_owned())],
            format!("{refusal}\n"),
        )
            .into_response(),
    }
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// The answer to a feed request that may not go on: over its address's rate (counted
/// first, so guessing tokens is rate-limited too) or without the token.
fn gate(
    state: &ApiState,
    headers: &HeaderMap,
    token: Option<&str>,
    ip: IpAddr,
) -> Option<Response> {
    if let Err(refusal) = state.clients.admit(ip) {
        return Some(refused(&refusal));
    }
    (!feed_authorized(state, headers, token)).then(unauthorized)
}

fn peer_ip(peer: &Result<ConnectInfo<Peer>, ExtensionRejection>) -> IpAddr {
    peer.as_ref()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |p| p.0.addr.ip())
}

pub(super) async fn stream(
    State(state): State<Arc<ApiState>>,
    peer: Result<ConnectInfo<Peer>, ExtensionRejection>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Response {
    let ip = peer_ip(&peer);
    if let Some(refusal) = gate(&state, &headers, query.token.as_deref(), ip) {
        return refusal;
    }
    let Some(tap) = state.feeds.get(&query.stage) else {
        return no_such_output(&state, &query.stage);
    };
    let filter = match query.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(text_) => match Condition::parse(text_) {
            Ok(condition) => Some(condition),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("filter {text_:?}: {e}")),
        },
    };
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .or(query.last_event_id);
    let resume = last_event_id.map_or(Resume::Now, |id| Resume::parse(&id, tap.run()));
    let gzip = accepts_gzip(&headers);
    let request = Request {
        ip,
        tap,
        filter: filter.as_ref().map(|f| f.source().to_owned()),
        gzip,
        switch: peer.as_ref().ok().map(|p| Arc::clone(&p.0.switch)),
    };
    let membership = match state.clients.join(request) {
        Ok(membership) => membership,
        Err(refusal) => return refused(&refusal),
    };
    let gzipped = membership.client.gzip;
    let config = state.clients.config();
    let stream = FeedStream::new(
        membership,
        StreamSettings {
            filter,
            resume,
            heartbeat: config.heartbeat.0,
            slow_clients: config.slow_clients,
            client_buffer: config.client_buffer,
        },
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        stream.into_body(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::VARY,
        header::HeaderValue::from_static("accept-encoding"),
    );
    if gzipped {
        headers.insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    response
}

pub(super) async fn history(
    State(state): State<Arc<ApiState>>,
    peer: Result<ConnectInfo<Peer>, ExtensionRejection>,
    headers: HeaderMap,
    Query(query): Query<HistoryQuery>,
) -> Response {
    if let Some(refusal) = gate(&state, &headers, query.token.as_deref(), peer_ip(&peer)) {
        return refusal;
    }
    let Some(tap) = state.feeds.get(&query.stage) else {
        return no_such_output(&state, &query.stage);
    };
    let limit = query.limit.unwrap_or(100).min(10_000);
    // After `since`: the first `limit`, to page forward; without it, the newest `limit`.
    let events = tap.history(query.since, limit);
    let name = tap.name().to_owned();
    let list: Vec<serde_json::Value> = events.iter().map(|e| e.json(&name)).collect();
    Json(serde_json::json!({
        "stage": name,
        "run": tap.run(),
        "latest": tap.latest(),
        "oldest": tap.oldest(),
        "events": list,
    }))
    .into_response()
}

pub(super) async fn connections(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let outputs: Vec<serde_json::Value> = state
        .feeds
        .names()
        .iter()
        .filter_map(|name| state.feeds.get(name))
        .map(|tap| {
            serde_json::json!({
                "name": tap.name(),
                "watchers": tap.watchers(),
                "latest": tap.latest(),
            })
        })
        .collect();
    Json(serde_json::json!({
        "clients": state.clients.list(),
        "outputs": outputs,
    }))
    .into_response()
}
