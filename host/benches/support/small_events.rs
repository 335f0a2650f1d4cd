//! The events the plugin-call benches feed a `threshold`: ~40 bytes each,
//! `{"seq": i, "amount": 0..100, "user": "uNN"}`, so that `amount > 50` keeps about half.

use weir::event::Event;
use weir_plugin_sdk::msgpack;

/// `count` events, event `i` at time `i`.
pub fn small_events(count: usize) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let mut p = Vec::with_capacity(48);
            msgpack::write_map_len(&mut p, 3);
            msgpack::write_str(&mut p, "seq");
            msgpack::write_uint(&mut p, i as u64);
            msgpack::write_str(&mut p, "amount");
            msgpack::write_uint(&mut p, (i as u64 * 7919) % 101);
            msgpack::write_str(&mut p, "user");
            msgpack::write_str(&mut p, &format!("u{}", i % 97));
            Event::new(p, i as i64)
        })
        .collect()
}
