//! `type = "stdin"`: standard input, read to its end.

use super::file_source::{Reader, decode_records};
use super::source::{Emitter, SourceContext, SourceError};
use crate::config::StdinSourceConfig;

/// Reads standard input until it ends or shutdown.
///
/// # Errors
/// When standard input cannot be read or the pipeline stops taking events.
pub async fn run(config: StdinSourceConfig, ctx: SourceContext) -> Result<(), SourceError> {
    let name = ctx.name.clone();
    let shutdown = ctx.shutdown.clone();
    let mut emitter = Emitter::<u64>::new(ctx, false);
    let mut reader = Reader::new(tokio::io::stdin());
    let mut records = Vec::new();
    loop {
        let at_end = tokio::select! {
            filled = reader.fill(&mut records, emitter.ctx().batch_size, config.format, false) => {
                filled.map_err(|e| SourceError::read(&name, e))?
            }
            () = shutdown.cancelled() => break,
        };
        if !records.is_empty() {
            let (events, malformed) = decode_records(&mut records, config.format, None);
            emitter.emit(events, malformed, reader.consumed).await?;
        } else if at_end {
            break;
        }
    }
    emitter.finish().await;
    Ok(())
}
