//! What the workspace's two attribute-macro crates (`cache-macros`, `agent-cache-macros`)
//! share: one way of parsing `name = value` options with every mistake reported at its own
//! tokens ([`args`]), one analysis of a cached function's signature and key ([`signature`]),
//! and the code both expansions generate the same way ([`tokens`]).
//!
//! A proc-macro crate can export only macros, so this is an ordinary library they depend on.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

pub mod args;
pub mod signature;
pub mod tokens;
