//! Shared helpers for the workspace's acceptance tests (in `tests/tests/`).
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
