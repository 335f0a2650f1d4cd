//! Drops repeats of an event id seen within a bounded window of recent ids.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use weir_plugin_sdk::msgpack;

/// Remembers the last `window` ids; an event whose id is among them is a repeat.
#[derive(Debug)]
pub struct Dedup {
    field: String,
    window: usize,
    seen: HashSet<Bytes>,
    order: VecDeque<Bytes>,
}

impl Dedup {
    /// Dedup on the payload field `field` (a dotted path) over the last `window` ids.
    pub fn new(field: String, window: usize) -> Self {
        Self {
            field,
            window: window.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `payload` repeats an id in the window; remembers its id when not. Events
    /// without the field are never repeats.
    pub fn is_repeat(&mut self, payload: &[u8]) -> bool {
        let id = match msgpack::lookup(payload, &self.field) {
            Ok(Some(msgpack::Value::Str(s) | msgpack::Value::Bin(s))) => Bytes::copy_from_slice(s),
            Ok(Some(value)) => match value.as_f64() {
                Some(n) => Bytes::copy_from_slice(&n.to_bits().to_le_bytes()),
                None => return false,
            },
            _ => return false,
        };
        if self.seen.contains(&id) {
            return true;
        }
        if self.order.len() == self.window
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(id.clone());
        self.order.push_back(id);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json_to_msgpack;

    #[test]
    fn repeats_within_the_window_are_found_and_older_ones_forgotten() {
        let mut dedup = Dedup::new("id".into(), 2);
        let e = |id: &str| json_to_msgpack(format!(r#"{{"id":{id}}}"#).as_bytes()).unwrap();
        assert!(!dedup.is_repeat(&e("1")));
        assert!(dedup.is_repeat(&e("1")));
        assert!(!dedup.is_repeat(&e("\"a\"")));
        assert!(!dedup.is_repeat(&e("2")));
        assert!(!dedup.is_repeat(&e("1")), "1 left the window of 2");
        assert!(!dedup.is_repeat(&json_to_msgpack(b"{}").unwrap()));
    }
}
