//! Who watches the feed: connection limits (in all and per IP address), a per-IP request
//! rate, and each client's counts for `/api/v1/connections`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::listener::KillSwitch;
use super::tap::{Tap, Watch};
use crate::config::{FeedConfig, SlowClients};
use crate::event::now_ms;

/// Why a feed request was turned away.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// `max_clients` are connected.
    Full(usize),
    /// `max_clients_per_ip` are connected from this address.
    FullForIp(usize),
    /// Over `requests_per_second` from this address; retry after this many seconds.
    TooFast(u64),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(n) => write!(f, "the feed has its {n} clients (server.feed.max_clients)"),
            Self::FullForIp(n) => write!(
                f,
                "this address has its {n} feed clients (server.feed.max_clients_per_ip)"
            ),
            Self::TooFast(_) => write!(
                f,
                "too many feed requests from this address (server.feed.requests_per_second)"
            ),
        }
    }
}

/// One connected client.
pub struct Client {
    /// Its number.
    pub id: u64,
    /// Its address.
    pub ip: IpAddr,
    /// The output it watches.
    pub tap: Arc<Tap>,
    /// Its filter, as written.
    pub filter: Option<String>,
    /// Whether it takes gzip.
    pub gzip: bool,
    /// When it connected (ms since the Unix epoch).
    pub connected_at_ms: i64,
    /// Events sent.
    pub sent: AtomicU64,
    /// Events skipped because it fell behind.
    pub skipped: AtomicU64,
    /// The last event number it was given or passed over.
    pub position: AtomicU64,
    /// When its stream last asked for more (ms).
    pub polled_at_ms: AtomicI64,
    /// Its stream waits for events (it is not stuck behind its connection).
    pub waiting: AtomicBool,
    /// Closes its connection, when it has one of its own.
    pub switch: Option<Arc<KillSwitch>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct Table {
    clients: BTreeMap<u64, Arc<Client>>,
    per_ip: HashMap<IpAddr, usize>,
    buckets: HashMap<IpAddr, Bucket>,
    gzip: usize,
    next_id: u64,
}

/// Addresses the request rate remembers; beyond it, buckets start over.
const MAX_BUCKETS: usize = 65_536;

/// The address a rate bucket belongs to: IPv6 by its /64, which one host usually holds.
fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// Every feed client, and the limits they are admitted under.
pub struct Clients {
    config: FeedConfig,
    table: Mutex<Table>,
}

/// A client's place; dropping it (the stream ended) frees the place.
pub struct Membership {
    clients: Arc<Clients>,
    /// The client.
    pub client: Arc<Client>,
    watching: bool,
}

impl Membership {
    /// Starts watching the client's output, resuming after event `after`.
    pub fn watch(&mut self, after: Option<u64>) -> Watch {
        if self.watching {
            self.client.tap.unwatch();
        }
        self.watching = true;
        self.client.tap.watch(after)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut table = self.clients.lock();
        table.clients.remove(&self.client.id);
        if self.client.gzip {
            table.gzip -= 1;
        }
        if let Some(n) = table.per_ip.get_mut(&self.client.ip) {
            *n -= 1;
            if *n == 0 {
                table.per_ip.remove(&self.client.ip);
            }
        }
        drop(table);
        if self.watching {
            self.client.tap.unwatch();
        }
    }
}

/// What a client asks to watch.
pub struct Request {
    /// Its address.
    pub ip: IpAddr,
    /// The output.
    pub tap: Arc<Tap>,
    /// Its filter, as written.
    pub filter: Option<String>,
    /// Whether it takes gzip.
    pub gzip: bool,
    /// Closes its connection.
    pub switch: Option<Arc<KillSwitch>>,
}

impl Clients {
    /// No clients yet, under `config`'s limits.
    pub fn new(config: FeedConfig) -> Self {
        Self {
            config,
            table: Mutex::default(),
        }
    }

    /// The feed's settings.
    pub fn config(&self) -> &FeedConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one request from `ip` out of its rate (a token bucket).
    ///
    /// # Errors
    /// [`Refusal::TooFast`] when its bucket is empty.
    pub fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        let (rate, burst) = (self.config.requests_per_second, self.config.request_burst);
        let now = Instant::now();
        let mut table = self.lock();
        if table.buckets.len() >= MAX_BUCKETS {
            // Addresses seen long ago have full buckets again: forgetting them changes
            // nothing. If all are recent, they start over rather than grow without bound.
            table
                .buckets
                .retain(|_, b| now.duration_since(b.at).as_secs_f64() * rate < burst);
            if table.buckets.len() >= MAX_BUCKETS {
                table.buckets.clear();
            }
        }
        let bucket = table.buckets.entry(rate_key(ip)).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            let wait = ((1.0 - bucket.tokens) / rate.max(f64::MIN_POSITIVE)).ceil();
            return Err(Refusal::TooFast(wait.clamp(1.0, 3600.0) as u64));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    /// Admits a client if there is room, in all and for its address.
    ///
    /// # Errors
    /// [`Refusal::Full`] or [`Refusal::FullForIp`].
    pub fn join(self: &Arc<Self>, request: Request) -> Result<Membership, Refusal> {
        let mut table = self.lock();
        if table.clients.len() >= self.config.max_clients {
            return Err(Refusal::Full(self.config.max_clients));
        }
        let from_ip = table.per_ip.get(&request.ip).copied().unwrap_or(0);
        if from_ip >= self.config.max_clients_per_ip {
            return Err(Refusal::FullForIp(self.config.max_clients_per_ip));
        }
        table.next_id += 1;
        // Each gzip stream has an encoder of its own: past the limit, clients get plain text.
        let gzip = request.gzip && table.gzip < self.config.max_gzip_clients;
        table.gzip += usize::from(gzip);
        let now = now_ms();
        let client = Arc::new(Client {
            id: table.next_id,
            ip: request.ip,
            tap: request.tap,
            filter: request.filter,
            gzip,
            connected_at_ms: now,
            sent: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            position: AtomicU64::new(0),
            polled_at_ms: AtomicI64::new(now),
            waiting: AtomicBool::new(false),
            switch: request.switch,
        });
        table.clients.insert(client.id, Arc::clone(&client));
        *table.per_ip.entry(request.ip).or_default() += 1;
        Ok(Membership {
            clients: Arc::clone(self),
            client,
            watching: false,
        })
    }

    /// Every client, as `/api/v1/connections` shows them.
    pub fn list(&self) -> Vec<serde_json::Value> {
        let clients: Vec<Arc<Client>> = self.lock().clients.values().cloned().collect();
        clients
            .iter()
            .map(|c| {
                let position = c.position.load(Ordering::Relaxed);
                serde_json::json!({
                    "id": c.id,
                    "ip": c.ip.to_string(),
                    "stage": c.tap.name(),
                    "filter": c.filter,
                    "gzip": c.gzip,
                    "connected_at_ms": c.connected_at_ms,
                    "sent": c.sent.load(Ordering::Relaxed),
                    "skipped": c.skipped.load(Ordering::Relaxed),
                    "behind": c.tap.latest().saturating_sub(position),
                })
            })
            .collect()
    }

    /// Clients connected now.
    pub fn len(&self) -> usize {
        self.lock().clients.len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the connections of clients that stopped reading: after `stall_timeout`
    /// whatever the policy (a stuck client holds its place and what was published for
    /// it), and at once when it is also more than `client_buffer` events behind and slow
    /// clients are to be disconnected. A client waiting for events is never stalled.
    pub fn sweep(&self) {
        let now = now_ms();
        let stall_ms = self.config.stall_timeout.0.as_millis() as i64;
        let disconnect = self.config.slow_clients == SlowClients::Disconnect;
        let clients: Vec<Arc<Client>> = self.lock().clients.values().cloned().collect();
        for client in clients {
            let Some(switch) = &client.switch else {
                continue;
            };
            if client.waiting.load(Ordering::Relaxed) {
                continue;
            }
            let stalled_ms = now - client.polled_at_ms.load(Ordering::Relaxed);
            let behind = client
                .tap
                .latest()
                .saturating_sub(client.position.load(Ordering::Relaxed));
            if stalled_ms > stall_ms {
                tracing::warn!(client = client.id, ip = %client.ip, output = client.tap.name(), stalled_ms, "feed client stopped reading: disconnected (server.feed.stall_timeout)");
                switch.kill();
            } else if disconnect && behind > self.config.client_buffer && stalled_ms > 1_000 {
                tracing::warn!(client = client.id, ip = %client.ip, output = client.tap.name(), behind, "feed client stopped reading and fell behind server.feed.client_buffer: disconnected (server.feed.slow_clients = \"disconnect\")");
                switch.kill();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Feeds;

    fn request(ip: [u8; 4], feeds: &Feeds) -> Request {
        Request {
            ip: IpAddr::from(ip),
            tap: feeds.tap("s"),
            filter: None,
            gzip: false,
            switch: None,
        }
    }

    #[test]
    fn limits_clients_in_all_and_per_address_and_frees_places() {
        let feeds = Feeds::default();
        let clients = Arc::new(Clients::new(FeedConfig {
            max_clients: 3,
            max_clients_per_ip: 2,
            ..FeedConfig::default()
        }));
        let a1 = clients.join(request([10, 0, 0, 1], &feeds)).expect("room");
        let _a2 = clients.join(request([10, 0, 0, 1], &feeds)).expect("room");
        assert_eq!(
            clients.join(request([10, 0, 0, 1], &feeds)).err(),
            Some(Refusal::FullForIp(2))
        );
        let _b1 = clients.join(request([10, 0, 0, 2], &feeds)).expect("room");
        assert_eq!(
            clients.join(request([10, 0, 0, 3], &feeds)).err(),
            Some(Refusal::Full(3))
        );
        drop(a1);
        assert_eq!(clients.len(), 2);
        clients
            .join(request([10, 0, 0, 1], &feeds))
            .expect("a place was freed");
    }

    #[test]
    fn a_burst_then_the_rate() {
        let clients = Clients::new(FeedConfig {
            requests_per_second: 0.001,
            request_burst: 3.0,
            ..FeedConfig::default()
        });
        let ip = IpAddr::from([10, 0, 0, 9]);
        for _ in 0..3 {
            clients.admit(ip).expect("within the burst");
        }
        assert!(matches!(clients.admit(ip), Err(Refusal::TooFast(_))));
        clients
            .admit(IpAddr::from([10, 0, 0, 8]))
            .expect("another address has its own bucket");
    }
}
