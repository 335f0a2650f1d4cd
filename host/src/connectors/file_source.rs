//! `type = "file"` as a source: JSON lines, raw lines or a MessagePack stream, read once or
//! followed like `tail -F` (across rotation and truncation), resuming from the last
//! acknowledged byte offset after a restart.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::codec::decode;
use super::source::{Emitter, SourceContext, SourceError};
use crate::config::{EdgeFormat, FileSourceConfig};
use crate::event::{Event, Origin, now_ms};

/// Bytes read per system call.
const READ_CHUNK: usize = 256 * 1024;

/// Longest record kept waiting for its end; a longer "line" is dead-lettered in pieces
/// rather than growing memory without bound.
const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Where a file source resumes: the file (by inode, so a rotated file is not mistaken for
/// its successor) and the byte offset after the last acknowledged record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// The path as configured.
    pub path: String,
    /// Inode of the file read.
    pub inode: u64,
    /// Offset after the last acknowledged record.
    pub offset: u64,
    /// Counts the times the source started the file over (truncated, rotated, or not the
    /// one saved): offsets of one generation are never those of another.
    #[serde(default)]
    pub generation: u32,
}

/// Reads `config.path` until its end (or for ever, following).
///
/// # Errors
/// When the file cannot be opened or read, or the pipeline stops taking events.
pub async fn run(config: FileSourceConfig, ctx: SourceContext) -> Result<(), SourceError> {
    let name = ctx.name.clone();
    let shutdown = ctx.shutdown.clone();
    let saved: Option<FilePosition> = ctx
        .checkpoints
        .load(&name)
        .map_err(|e| SourceError::read(&name, e))?;
    let mut emitter = Emitter::new(ctx, true);
    let path_text = config.path.display().to_string();
    let mut reader = Reader::open(&config.path, &name).await?;
    let mut generation = 0;
    if let Some(saved) = saved {
        if saved.path == path_text
            && saved.inode == reader.inode
            && saved.offset <= reader.len().await
        {
            generation = saved.generation;
            reader
                .seek(saved.offset)
                .await
                .map_err(|e| SourceError::read(&name, e))?;
            tracing::info!(source = %name, offset = saved.offset, "resuming from the acknowledged position");
        } else {
            generation = saved.generation.wrapping_add(1);
            tracing::info!(source = %name, "saved position is for another file; reading from the start");
        }
    }
    let mut records = Vec::new();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let at_end = reader
            .fill(
                &mut records,
                emitter.ctx().batch_size,
                config.format,
                config.follow,
            )
            .await
            .map_err(|e| SourceError::read(&name, e))?;
        if !records.is_empty() {
            let partition = Some((
                emitter.ctx().origin_id,
                partition_id(reader.inode, generation),
            ));
            let (events, malformed) = decode_records(&mut records, config.format, partition);
            let position = FilePosition {
                path: path_text.clone(),
                inode: reader.inode,
                offset: reader.consumed,
                generation,
            };
            tokio::select! {
                sent = emitter.emit(events, malformed, position) => sent?,
                () = shutdown.cancelled() => break,
            }
            continue;
        }
        if !at_end {
            continue;
        }
        if !config.follow {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(config.poll_interval.0) => {}
            () = shutdown.cancelled() => break,
        }
        if reader.replaced(&config.path).await {
            tracing::info!(source = %name, "file was rotated or truncated; reading the new one from the start");
            reader = Reader::open(&config.path, &name).await?;
            generation = generation.wrapping_add(1);
        }
    }
    emitter.finish().await;
    Ok(())
}

/// The partition of a file's records in their [`Origin`]: the file (a rotated file is
/// another inode) and how many times the source started over (a truncated file keeps its
/// inode and starts its offsets again).
fn partition_id(inode: u64, generation: u32) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = crate::operators::window::StableHasher.build_hasher();
    hasher.write(&inode.to_le_bytes());
    hasher.write(&generation.to_le_bytes());
    hasher.finish() as u32
}

/// Decodes records (each with the byte offset after it) into events; `partition` is the
/// source's index and partition when its offsets can be read again after a restart.
pub(super) fn decode_records(
    records: &mut Vec<(Bytes, u64)>,
    format: EdgeFormat,
    partition: Option<(u16, u32)>,
) -> (Vec<Event>, Vec<(Event, String)>) {
    let now = now_ms();
    let mut events = Vec::with_capacity(records.len());
    let mut malformed = Vec::new();
    for (record, end) in records.drain(..) {
        let origin = partition.map(|(source, partition)| Origin {
            source,
            partition,
            offset: end,
        });
        match decode(format, &record) {
            Ok(payload) => events.push(Event {
                origin,
                ..Event::new(payload, now)
            }),
            Err(reason) => malformed.push((
                Event {
                    origin,
                    ..Event::new(record, now)
                },
                reason,
            )),
        }
    }
    (events, malformed)
}

/// Splits a byte stream into records, remembering how far records were taken.
pub(super) struct Reader<R> {
    input: R,
    inode: u64,
    buf: Vec<u8>,
    /// Offset of the first byte of `buf` that is not yet a record.
    pub(super) consumed: u64,
    eof: bool,
}

impl Reader<tokio::fs::File> {
    async fn open(path: &Path, source: &str) -> Result<Self, SourceError> {
        let file = tokio::fs::File::open(path).await.map_err(|e| {
            SourceError::read(source, format!("cannot open {}: {e}", path.display()))
        })?;
        let inode = file
            .metadata()
            .await
            .map_err(|e| SourceError::read(source, e))?
            .ino();
        let mut reader = Reader::new(file);
        reader.inode = inode;
        Ok(reader)
    }

    async fn len(&self) -> u64 {
        self.input.metadata().await.map_or(0, |m| m.len())
    }

    async fn seek(&mut self, offset: u64) -> std::io::Result<()> {
        self.input.seek(std::io::SeekFrom::Start(offset)).await?;
        self.consumed = offset;
        self.buf.clear();
        Ok(())
    }

    /// Whether the path now names another file, or this one shrank below what was read.
    async fn replaced(&self, path: &Path) -> bool {
        match tokio::fs::metadata(path).await {
            Ok(meta) => {
                meta.ino() != self.inode || meta.len() < self.consumed + self.buf.len() as u64
            }
            Err(_) => false,
        }
    }
}

impl<R: tokio::io::AsyncRead + Unpin> Reader<R> {
    /// A reader of `input` from its start.
    pub(super) fn new(input: R) -> Self {
        Self {
            input,
            inode: 0,
            buf: Vec::with_capacity(READ_CHUNK),
            consumed: 0,
            eof: false,
        }
    }

    /// Moves up to `max` complete records into `records`; returns whether the end of the
    /// file was reached with nothing more to take.
    pub(super) async fn fill(
        &mut self,
        records: &mut Vec<(Bytes, u64)>,
        max: usize,
        format: EdgeFormat,
        follow: bool,
    ) -> std::io::Result<bool> {
        loop {
            self.split(records, max, format, follow)?;
            if records.len() >= max {
                return Ok(false);
            }
            if self.eof && !records.is_empty() {
                // Send what there is rather than wait at the end of a followed file.
                self.eof = false;
                return Ok(false);
            }
            let start = self.buf.len();
            self.buf.resize(start + READ_CHUNK, 0);
            let n = self.input.read(&mut self.buf[start..]).await?;
            self.buf.truncate(start + n);
            if n == 0 {
                self.eof = true;
                self.split(records, max, format, follow)?;
                if records.is_empty() {
                    self.eof = false;
                    return Ok(true);
                }
                return Ok(false);
            }
        }
    }

    fn split(
        &mut self,
        records: &mut Vec<(Bytes, u64)>,
        max: usize,
        format: EdgeFormat,
        follow: bool,
    ) -> std::io::Result<()> {
        let mut at = 0;
        while records.len() < max && at < self.buf.len() {
            let rest = &self.buf[at..];
            let (record, used) = match format {
                EdgeFormat::Msgpack => match weir_plugin_sdk::msgpack::skip(rest) {
                    Ok(n) => (&rest[..n], n),
                    Err(_) if !self.eof && rest.len() < MAX_RECORD_BYTES => break,
                    Err(_) if follow && rest.len() < MAX_RECORD_BYTES => break,
                    // An incomplete value at the end of a finished file: it is malformed.
                    Err(_) => (rest, rest.len()),
                },
                EdgeFormat::Json | EdgeFormat::Raw => match rest.iter().position(|&b| b == b'\n') {
                    Some(n) => (&rest[..n], n + 1),
                    None if self.eof && !follow => (rest, rest.len()),
                    None if rest.len() >= MAX_RECORD_BYTES => (rest, rest.len()),
                    None => break,
                },
            };
            at += used;
            let record = record.strip_suffix(b"\r").unwrap_or(record);
            if format != EdgeFormat::Msgpack && record.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            records.push((Bytes::copy_from_slice(record), self.consumed + at as u64));
        }
        self.buf.drain(..at);
        self.consumed += at as u64;
        Ok(())
    }
}
