//! `type = "http"` as a sink: one POST per batch; any 2xx acknowledges it.

use std::time::Duration;

use super::codec::encode_batch;
use super::sink::BatchWriter;
use crate::config::{EdgeFormat, HttpSinkConfig};
use crate::event::Event;

/// POSTs batches to a URL.
pub struct HttpWriter {
    agent: ureq::Agent,
    url: String,
    format: EdgeFormat,
    envelope: bool,
    headers: Vec<(String, String)>,
    buf: Vec<u8>,
}

impl HttpWriter {
    /// A writer for `config`.
    pub fn new(config: &HttpSinkConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout.0.max(Duration::from_millis(1))))
            // A failed status is a failed write, handled by the retry loop with its text.
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            url: config.url.clone(),
            format: config.format,
            envelope: config.envelope,
            headers: config.headers.clone().into_iter().collect(),
            buf: Vec::new(),
        }
    }
}

impl BatchWriter for HttpWriter {
    fn write(&mut self, events: &[Event]) -> Result<(), String> {
        encode_batch(self.format, self.envelope, events, &mut self.buf);
        let content_type = match self.format {
            EdgeFormat::Json => "application/x-ndjson",
            EdgeFormat::Msgpack => "application/msgpack",
            EdgeFormat::Raw => "application/octet-stream",
        };
        let mut request = self
            .agent
            .post(&self.url)
            .header("content-type", content_type);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request
            .send(&self.buf[..])
            .map_err(|e| format!("POST {}: {e}", self.url))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("POST {}: answered {status}", self.url))
        }
    }
}
