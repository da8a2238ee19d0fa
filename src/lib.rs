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
//! user's pte, PG_dirty, PG_locked, PG_writeback (a write-out in flight,
//! which `sync` and `msync` wait for) and the value in memory and on disk.
//! What is not: the journal's contents, metadata blocks, inodes, `write(2)`,
//! private mappings, and real time (an I/O completes when its writeback
//! ends).
//!
//! # Using the library
//!
//! Load a policy and a scenario, compile the cell, and explore it:
//!
//! ```
//! use freezefuzz::engine::{explore, program};
//! use freezefuzz::oracle::{OracleSet, Outcome};
//!
//! let text = "
//!     policy no-block {
//!         body journal_start { wait_unfrozen fs; }
//!         freeze { lock umount write; set_level write; sync; set_level fs;
//!                  set_level complete; unlock umount; }
//!         page_mkwrite { if buffers == unmapped { journal_start; allocate; } lock_page; }
//!     }
//!     scenario case3-after-freeze {
//!         page a { cached; buffers = mapped; pte = readonly; }
//!         thread user { await frozen; store a 2; munmap a; }
//!         thread freezer { freeze; thaw; }
//!         flusher;
//!     }";
//! let workspace = freezefuzz::dsl::load_str("example.ff", text).expect("checks clean");
//! let cell = program::compile(
//!     workspace.policy("no-block").unwrap(),
//!     workspace.scenario("case3-after-freeze").unwrap(),
//! )
//! .unwrap();
//! let result = explore::explore(&cell, &OracleSet::standard(), &Default::default());
//! // The seed thread's case 3: a store after the freeze reaches the disk while frozen.
//! assert!(result.outcomes.contains(Outcome::FrozenWrite));
//! let witness = &result.shortest[Outcome::FrozenWrite as usize].as_ref().unwrap();
//! println!("{}", freezefuzz::engine::schedule::format(&cell, &witness.choices));
//! ```

pub mod corpus;
pub mod dsl;
pub mod engine;
pub mod fault;
pub mod ir;
pub mod model;
pub mod oracle;
pub mod report;
pub mod repro;
pub mod shipped;
