//! The fleet tier: caches that stay coherent across every process of a service, on Redis.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod fleet;
mod keys;
mod link;
mod outbox;
mod shared;
mod status;

pub use fleet::{Fleet, FleetBuilder, FleetCache, FleetError};
pub use status::{FleetStatus, Link};
