//! The one integration test binary: `cargo test --test it`.

mod cli;
mod engine;
mod faults;
mod fuzz;
mod language;
mod replay;
mod repro;
mod review;
mod robust;
mod support;
mod swarm;
mod writeback;
