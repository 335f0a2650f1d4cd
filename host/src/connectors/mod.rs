//! Sources and sinks, one module per system, each with its config struct in
//! [`crate::config`] and registered by `type` in one match below.

mod codec;
mod file_sink;
mod file_source;
mod generator;
mod http_sink;
mod http_source;
mod sink;
mod source;
mod stdin;

pub use codec::{decode, encode, encode_batch, envelope_json};
pub use file_sink::{FileWriter, NullWriter, StdoutWriter};
pub use file_source::FilePosition;
pub use generator::GeneratorTemplate;
pub use http_sink::HttpWriter;
pub use http_source::{IngestHandle, IngestRequest, decode_body, ingest_channel};
pub use sink::{BatchWriter, SinkContext};
pub use source::{SourceContext, SourceError};

use std::future::Future;
use std::pin::Pin;

use crate::config::{SinkConfig, SourceConfig};

/// A running source or sink.
pub type ConnectorTask = Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>>;

/// Whether a source ends by itself (a file read once, a generator with a count, stdin).
pub fn source_is_finite(config: &SourceConfig) -> bool {
    match config {
        SourceConfig::Generator(g) => g.count.is_some(),
        SourceConfig::File(f) => !f.follow,
        SourceConfig::Stdin(_) => true,
        SourceConfig::Http(_) => false,
    }
}

/// The task of a source; http sources also give the handle the HTTP side feeds them by.
pub fn source_task(
    config: SourceConfig,
    ctx: SourceContext,
) -> (ConnectorTask, Option<IngestHandle>) {
    match config {
        SourceConfig::Generator(c) => (Box::pin(generator::run(c, ctx)), None),
        SourceConfig::File(c) => (Box::pin(file_source::run(c, ctx)), None),
        SourceConfig::Stdin(c) => (Box::pin(stdin::run(c, ctx)), None),
        SourceConfig::Http(c) => {
            let (handle, requests) = ingest_channel(&c);
            (Box::pin(http_source::run(requests, ctx)), Some(handle))
        }
    }
}

/// The task of a sink.
pub fn sink_task(config: &SinkConfig, ctx: SinkContext) -> ConnectorTask {
    match config {
        SinkConfig::Stdout(c) => {
            let writer = StdoutWriter::new(c.format, c.envelope);
            Box::pin(async move {
                sink::run(writer, ctx).await;
                Ok(())
            })
        }
        SinkConfig::File(c) => {
            let writer = FileWriter::new(c);
            Box::pin(async move {
                sink::run(writer, ctx).await;
                Ok(())
            })
        }
        SinkConfig::Http(c) => {
            let writer = HttpWriter::new(c);
            Box::pin(async move {
                sink::run(writer, ctx).await;
                Ok(())
            })
        }
        SinkConfig::Null(_) => Box::pin(async move {
            sink::run(NullWriter, ctx).await;
            Ok(())
        }),
    }
}
