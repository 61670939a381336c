//! Runnable examples of the workspace; see `examples/examples/`.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
