//! `type = "file"` as a sink: appends events (JSON lines by default), flushing each batch
//! before acknowledging it, rotating by size or age to `PATH.1`, `PATH.2`, ...

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::codec::encode_batch;
use super::sink::BatchWriter;
use crate::config::{EdgeFormat, FileSinkConfig};
use crate::event::Event;

/// Appends batches to a file.
pub struct FileWriter {
    path: PathBuf,
    format: EdgeFormat,
    envelope: bool,
    rotate_bytes: Option<u64>,
    rotate_interval: Option<Duration>,
    file: Option<File>,
    size: u64,
    opened: Instant,
    buf: Vec<u8>,
}

impl FileWriter {
    /// A writer for `config`; the file is opened on the first write.
    pub fn new(config: &FileSinkConfig) -> Self {
        Self {
            path: config.path.clone(),
            format: config.format,
            envelope: config.envelope,
            rotate_bytes: config.rotate_bytes,
            rotate_interval: config.rotate_interval.map(|d| d.0),
            file: None,
            size: 0,
            opened: Instant::now(),
            buf: Vec::new(),
        }
    }

    fn file(&mut self) -> Result<&mut File, String> {
        let due = self.rotate_bytes.is_some_and(|max| self.size >= max)
            || self
                .rotate_interval
                .is_some_and(|age| self.opened.elapsed() >= age);
        if due && self.file.is_some() {
            self.file = None;
            self.rotate()?;
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
            self.size = file.metadata().map_or(0, |m| m.len());
            self.opened = Instant::now();
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| "the file was just opened".to_owned())
    }

    fn rotate(&self) -> Result<(), String> {
        let mut n = 1;
        let target = loop {
            let candidate = PathBuf::from(format!("{}.{n}", self.path.display()));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        std::fs::rename(&self.path, &target).map_err(|e| {
            format!(
                "cannot rotate {} to {}: {e}",
                self.path.display(),
                target.display()
            )
        })
    }
}

impl BatchWriter for FileWriter {
    fn write(&mut self, events: &[Event]) -> Result<(), String> {
        let mut buf = std::mem::take(&mut self.buf);
        encode_batch(self.format, self.envelope, events, &mut buf);
        let path = self.path.display().to_string();
        let result = self.file().and_then(|file| {
            file.write_all(&buf)
                .and_then(|()| file.flush())
                .map_err(|e| format!("cannot write {path}: {e}"))
        });
        if result.is_err() {
            // Reopen on the next attempt: the handle may be what failed.
            self.file = None;
        } else {
            self.size += buf.len() as u64;
        }
        self.buf = buf;
        result
    }
}

/// Writes batches to standard output.
pub struct StdoutWriter {
    format: EdgeFormat,
    envelope: bool,
    buf: Vec<u8>,
}

impl StdoutWriter {
    /// A writer in `format`.
    pub fn new(format: EdgeFormat, envelope: bool) -> Self {
        Self {
            format,
            envelope,
            buf: Vec::new(),
        }
    }
}

impl BatchWriter for StdoutWriter {
    fn write(&mut self, events: &[Event]) -> Result<(), String> {
        encode_batch(self.format, self.envelope, events, &mut self.buf);
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf)
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))
    }
}

/// Discards batches (the sink's metrics still count them).
pub struct NullWriter;

impl BatchWriter for NullWriter {
    fn write(&mut self, _events: &[Event]) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_into_numbered_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let config: FileSinkConfig = toml::from_str(&format!(
            "path = {:?}\nformat = \"raw\"\nrotate_bytes = 4\n",
            path.display().to_string()
        ))
        .unwrap();
        let mut writer = FileWriter::new(&config);
        for word in ["aaaa", "bbbb", "cc"] {
            writer
                .write(&[Event::new(word.as_bytes().to_vec(), 0)])
                .unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.jsonl.1")).unwrap(),
            "aaaa\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.jsonl.2")).unwrap(),
            "bbbb\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cc\n");
    }
}
