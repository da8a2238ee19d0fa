//! The one integration test binary: `cargo test --test it`.

mod cli;
mod engine;
mod faults;
mod language;
mod replay;
mod repro;
mod review;
mod support;
mod writeback;
