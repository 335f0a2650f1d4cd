//! The HTTP side: `/healthz`, `/readyz`, `/metrics` (Prometheus text) and
//! `/api/v1/pipeline` (components, inputs, counters, plugin versions).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::metrics::Metrics;
use crate::pipeline::ComponentInfo;

/// What the HTTP handlers read.
pub struct ApiState {
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Set once plugins are loaded and every component has started.
    pub ready: AtomicBool,
    /// The components, once started.
    pub components: std::sync::RwLock<BTreeMap<String, ComponentInfo>>,
}

impl ApiState {
    /// State with nothing started yet.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            ready: AtomicBool::new(false),
            components: std::sync::RwLock::new(BTreeMap::new()),
        }
    }
}

/// The router, without a socket, so tests can call it directly.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/pipeline", get(pipeline))
        .with_state(state)
}

async fn readyz(State(state): State<Arc<ApiState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
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
    let list: Vec<serde_json::Value> = components
        .iter()
        .map(|(name, info)| {
            let mut value = serde_json::to_value(info).unwrap_or_default();
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("name".into(), name.clone().into());
                map.insert("counters".into(), info.counters());
            }
            value
        })
        .collect();
    Json(serde_json::json!({
        "ready": state.ready.load(Ordering::Acquire),
        "components": list,
    }))
}
