//! A Server-Sent Events client over plain HTTP/1.0 (the response is the rest of the
//! connection, no chunked framing), for the feed tests.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One thing the stream said.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An event: its number (the `N` of its id `RUN-N`) and its `data` line.
    Event { id: u64, data: String },
    /// A named event (`skipped`, `gap`, `error`, `end`) and its data.
    Notice { name: String, data: String },
    /// A comment (`connected`, `heartbeat`).
    Comment(String),
}

/// A connected stream.
pub struct Sse {
    reader: BufReader<TcpStream>,
    /// The response's status code.
    pub status: u16,
    /// The response's head.
    pub head: String,
}

impl Sse {
    /// `GET path` with `headers` (each ending `\r\n`).
    pub async fn connect(address: &str, path: &str, headers: &str) -> Self {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(
                format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n{headers}\r\n").as_bytes(),
            )
            .await
            .expect("request");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.expect("head") == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        Self {
            reader,
            status,
            head,
        }
    }

    /// The rest of the body, as it is, until `timeout` passes or the server closes.
    pub async fn body(mut self, timeout: Duration) -> Vec<u8> {
        let mut body = Vec::new();
        let _ = tokio::time::timeout(timeout, self.reader.read_to_end(&mut body)).await;
        body
    }

    /// The next item; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<Item> {
        let (mut id, mut name, mut data, mut comment) = (None, None, None, None);
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if let Some(data) = data.take() {
                    return Some(match name.take() {
                        Some(name) => Item::Notice { name, data },
                        None => Item::Event {
                            id: id.take().expect("an event has an id"),
                            data,
                        },
                    });
                }
                if let Some(comment) = comment.take() {
                    return Some(Item::Comment(comment));
                }
                continue;
            }
            if let Some(text) = line.strip_prefix(": ") {
                comment = Some(text.to_owned());
            } else if let Some(text) = line.strip_prefix("id: ") {
                // `RUN-N`: the number within the run.
                id = text.rsplit('-').next().and_then(|n| n.parse().ok());
            } else if let Some(text) = line.strip_prefix("event: ") {
                name = Some(text.to_owned());
            } else if let Some(text) = line.strip_prefix("data: ") {
                data = Some(text.to_owned());
            }
        }
    }
}

/// The event time in an event's `data`, without parsing the whole of it.
pub fn event_time(data: &str) -> Option<i64> {
    let at = data.find("\"time\":")? + "\"time\":".len();
    let rest = &data[at..];
    let end = rest.find(|c: char| !c.is_ascii_digit() && c != '-')?;
    rest[..end].parse().ok()
}
