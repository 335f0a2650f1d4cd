//! The HTTP side: `/healthz`, `/readyz`, `/metrics` (Prometheus text),
//! `/` (the dashboard), `/api/v1/pipeline` (components, inputs, counters, plugin versions) and
//! `POST /ingest/NAME` for http sources, and the admin endpoints `GET /api/v1/plugins` and
//! `POST /api/v1/plugins/NAME/reload` (bearer token when `[server] admin_token` is set), and
//! the live feed (`/api/v1/events/stream`, `/api/v1/events/history`, `/api/v1/connections`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

mod dashboard;
mod feed;
mod stats;

use crate::config::FeedConfig;
use crate::connectors::{IngestHandle, IngestRequest, decode_body};
use crate::feed::{Clients, Feeds};
use crate::metrics::Metrics;
use crate::pipeline::ComponentInfo;
use crate::plugins::{ReloadOutcome, Reloader};

/// What the HTTP handlers read.
pub struct ApiState {
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Set once plugins are loaded and every component has started.
    pub ready: AtomicBool,
    /// The components, once started.
    pub components: std::sync::RwLock<BTreeMap<String, ComponentInfo>>,
    /// Http sources by name, once started.
    pub ingest: std::sync::RwLock<HashMap<String, IngestHandle>>,
    /// Plugin versions and reloads.
    pub reloader: Arc<Reloader>,
    /// Token the admin endpoints require, when set.
    pub admin_token: Option<String>,
    /// The taps the live feed reads.
    pub feeds: Arc<Feeds>,
    /// The live feed's clients.
    pub clients: Arc<Clients>,
    /// Recent latency readings, for the dashboard's figures.
    recent: stats::Recent,
}

impl ApiState {
    /// State with nothing started yet.
    pub fn new(
        metrics: Arc<Metrics>,
        reloader: Arc<Reloader>,
        admin_token: Option<String>,
        feed: FeedConfig,
    ) -> Self {
        metrics
            .feeds()
            .configure(feed.history, feed.linger.0.as_millis() as i64);
        Self {
            feeds: Arc::clone(metrics.feeds()),
            clients: Arc::new(Clients::new(feed)),
            recent: stats::Recent::default(),
            metrics,
            reloader,
            admin_token,
            ready: AtomicBool::new(false),
            components: std::sync::RwLock::new(BTreeMap::new()),
            ingest: std::sync::RwLock::new(HashMap::new()),
        }
    }
}

/// The router, without a socket, so tests can call it directly.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/assets/{*path}", get(dashboard::asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/pipeline", get(pipeline))
        .route("/ingest/{name}", post(ingest))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/plugins/{name}/reload", post(reload))
        .route("/api/v1/events/stream", get(feed::stream))
        .route("/api/v1/events/history", get(feed::history))
        .route("/api/v1/connections", get(feed::connections))
        // Each http source checks its own limit; this only caps what axum buffers.
        .layer(DefaultBodyLimit::max(MAX_INGEST_BODY_BYTES))
        .with_state(state)
}

/// The most any http source may take in one request, whatever its own setting.
pub const MAX_INGEST_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Seconds a client is told to wait when the pipeline is full.
const RETRY_AFTER_SECONDS: &str = "1";

async fn ingest(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let handle = match state.ingest.read() {
        Ok(map) => map.get(&name).cloned(),
        Err(poisoned) => poisoned.into_inner().get(&name).cloned(),
    };
    let Some(handle) = handle else {
        return (
            StatusCode::NOT_FOUND,
            format!("no http source named {name:?}\n"),
        )
            .into_response();
    };
    if body.len() > handle.max_body_bytes {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body of {} bytes is over this source's max_body_bytes of {}\n",
                body.len(),
                handle.max_body_bytes
            ),
        )
            .into_response();
    }
    let events = match decode_body(handle.format, &body) {
        Ok(events) => events,
        Err(reason) => return (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response(),
    };
    let count = events.len();
    let (accepted, answer) = tokio::sync::oneshot::channel();
    match handle.requests.try_send(IngestRequest { events, accepted }) {
        Ok(()) => {}
        Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)],
                "the pipeline is full: retry later\n",
            )
                .into_response();
        }
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "the source has stopped\n").into_response();
        }
    }
    match answer.await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "accepted": count })),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the source stopped before taking the events\n",
        )
            .into_response(),
    }
}

/// Whether the request carries the admin token (always, when none is set).
fn authorized(state: &ApiState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.admin_token else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compared in full whatever the first difference, so timing tells nothing of the token.
    given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "admin endpoints need `Authorization: Bearer <[server] admin_token>`\n",
    )
        .into_response()
}

async fn plugins(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    Json(serde_json::json!({ "plugins": state.reloader.registry().statuses() })).into_response()
}

async fn reload(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    if state.reloader.registry().slot(&name).is_none() {
        return (
            StatusCode::NOT_FOUND,
            format!("no stage uses a plugin named {name:?}\n"),
        )
            .into_response();
    }
    match state.reloader.reload(&name).await {
        Ok(ReloadOutcome::Swapped { version }) => {
            Json(serde_json::json!({ "result": "swapped", "version": version })).into_response()
        }
        Ok(ReloadOutcome::Unchanged) => {
            Json(serde_json::json!({ "result": "unchanged" })).into_response()
        }
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "result": "rejected", "error": error })),
        )
            .into_response(),
    }
}

/// Ready once started and while no component reports a problem (a broker it cannot
/// reach); otherwise 503 with one line per problem.
async fn readyz(State(state): State<Arc<ApiState>>) -> Response {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    }
    let problems = state.metrics.health().problems();
    if problems.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let text: String = problems
        .iter()
        .map(|(component, reason)| format!("{component}: {reason}\n"))
        .collect();
    (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn pipeline(State(state): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let components = match state.components.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let figures = state.recent.figures(&state.metrics.encode());
    let list: Vec<serde_json::Value> = components
        .iter()
        .map(|(name, info)| {
            let mut value = serde_json::to_value(info).unwrap_or_default();
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("name".into(), name.clone().into());
                map.insert("counters".into(), info.counters());
                let latency = figures.latency.get(name).map(
                    |[p50, p95, p99]| serde_json::json!({ "p50": p50, "p95": p95, "p99": p99 }),
                );
                map.insert("latency_seconds".into(), latency.into());
                map.insert("lag".into(), figures.lag.get(name).copied().into());
            }
            value
        })
        .collect();
    Json(serde_json::json!({
        "ready": state.ready.load(Ordering::Acquire),
        "problems": state.metrics.health().problems(),
        "components": list,
    }))
}
