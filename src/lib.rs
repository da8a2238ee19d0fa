//! freezefuzz: find bugs in how a filesystem freezes while programs write
//! through `mmap`.
//!
//! A policy file (see `docs/policy-language.md`) says how `freeze`, `thaw`,
//! `page_mkwrite`, `writeback` and the flusher behave. The [`dsl`] lowers it
//! to the checked [`ir`]; the [`engine`] compiles a policy and a scenario into
//! a flat program, runs the exact kernel [`model`] through seeded
//! interleavings (or all of them) and judges every run with the [`oracle`]s.
//!
//! What is modelled: the superblock's freeze level, `s_umount`, the
//! `s_writers` counts, and per page the page-cache state, buffer heads, the
//! user's pte, PG_dirty, PG_locked and the value in memory and on disk. What
//! is not: the journal's contents, metadata blocks, inodes, `write(2)`,
//! private mappings, and real time.

pub mod corpus;
pub mod dsl;
pub mod engine;
pub mod fault;
pub mod ir;
pub mod model;
pub mod oracle;
pub mod report;
