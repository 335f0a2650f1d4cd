//! The live event feed: taps on component outputs ([`Tap`], [`Feeds`]), the clients that
//! watch them ([`Clients`]) and each client's SSE stream ([`FeedStream`]), over
//! connections the server can close ([`KillableListener`]).

mod clients;
mod listener;
mod stream;
mod tap;

pub use clients::{Client, Clients, Membership, Refusal, Request};
pub use listener::{KillSwitch, KillableListener, KillableStream, Peer};
pub use stream::{FeedStream, StreamSettings};
pub use tap::{Batch, FeedEvent, Feeds, Published, Resume, Tap, Watch};

/// The output name of `component`'s `port` ("" for its main output).
pub fn output_name(component: &str, port: &str) -> String {
    if port.is_empty() {
        component.to_owned()
    } else {
        format!("{component}.{port}")
    }
}
