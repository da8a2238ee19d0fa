//! The engine: compiles a policy and a scenario, runs them under schedulers,
//! explores them exhaustively, and runs campaigns. No IO and no formatting for
//! people (schedule strings aside, which are data).

pub mod campaign;
pub mod exec;
pub mod explore;
pub mod pack;
pub mod por;
pub mod program;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod seeds;
pub mod shrink;
pub mod swarm;
pub mod symmetry;
