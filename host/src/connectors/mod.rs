//! Sources and sinks, one module per system, each with its config struct in
//! [`crate::config`] and registered by `type` in one match below.

mod codec;
mod file_sink;
mod file_source;
mod generator;
mod http_sink;
mod http_source;
pub mod kafka;
pub mod nats;
mod sink;
mod source;
mod stdin;

pub use codec::{decode, decode_with, encode, encode_batch, envelope_json};
pub use file_sink::{FileWriter, NullWriter, StdoutWriter};
pub use file_source::FilePosition;
pub use generator::GeneratorTemplate;
pub use http_sink::HttpWriter;
pub use http_source::{IngestHandle, IngestRequest, decode_body, ingest_channel};
pub use kafka::{KafkaFamilies, TransactionLink};
pub use nats::NatsFamilies;
pub use sink::{BatchWriter, SinkContext};
pub use source::{SourceContext, SourceError};

use std::future::Future;
use std::pin::Pin;

use crate::config::{SinkConfig, SourceConfig};
use crate::metrics::Metrics;

/// A running source or sink.
pub type ConnectorTask = Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>>;

/// Whether a source ends by itself (a file read once, a generator with a count, stdin).
pub fn source_is_finite(config: &SourceConfig) -> bool {
    match config {
        SourceConfig::Generator(g) => g.count.is_some(),
        SourceConfig::File(f) => !f.follow,
        SourceConfig::Stdin(_) => true,
        SourceConfig::Http(_)
        | SourceConfig::Kafka(_)
        | SourceConfig::Nats(_)
        | SourceConfig::Jetstream(_) => false,
    }
}

/// The task of a source; http sources also give the handle the HTTP side feeds them by.
/// `transactions` joins an exactly-once Kafka source to its transactional sink.
pub fn source_task(
    config: SourceConfig,
    ctx: SourceContext,
    metrics: &Metrics,
    transactions: Option<TransactionLink>,
) -> (ConnectorTask, Option<IngestHandle>) {
    match config {
        SourceConfig::Generator(c) => (Box::pin(generator::run(c, ctx)), None),
        SourceConfig::File(c) => (Box::pin(file_source::run(c, ctx)), None),
        SourceConfig::Stdin(c) => (Box::pin(stdin::run(c, ctx)), None),
        SourceConfig::Http(c) => {
            let (handle, requests) = ingest_channel(&c);
            (Box::pin(http_source::run(requests, ctx)), Some(handle))
        }
        SourceConfig::Nats(c) => (Box::pin(nats::core_source::run(c, ctx)), None),
        SourceConfig::Jetstream(c) => {
            let js = metrics.nats().source(&ctx.name);
            (Box::pin(nats::js_source::run(*c, ctx, js)), None)
        }
        SourceConfig::Kafka(c) => {
            let kafka = metrics.kafka().source(&ctx.name);
            (
                Box::pin(kafka::source::run(c, ctx, kafka, transactions)),
                None,
            )
        }
    }
}

/// The task of a sink; `transactions` makes a Kafka sink the transactional half of an
/// exactly-once pipeline.
pub fn sink_task(
    config: &SinkConfig,
    ctx: SinkContext,
    metrics: &Metrics,
    transactions: Option<TransactionLink>,
) -> ConnectorTask {
    match config {
        SinkConfig::Kafka(c) => {
            let errors = metrics.kafka().produce_errors(&ctx.name);
            let c = c.clone();
            Box::pin(async move {
                kafka::sink::run(c, ctx, transactions, errors).await;
                Ok(())
            })
        }
        SinkConfig::Nats(c) => {
            let publish = metrics.nats().sink(&ctx.name);
            let c = c.clone();
            Box::pin(async move {
                nats::core_sink::run(c, ctx, publish).await;
                Ok(())
            })
        }
        SinkConfig::Jetstream(c) => {
            let publish = metrics.nats().sink(&ctx.name);
            let c = c.clone();
            Box::pin(async move {
                nats::js_sink::run(c, ctx, publish).await;
                Ok(())
            })
        }
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
