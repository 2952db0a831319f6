//! coldkeep's data path: a repository — its store of immutable, sealed objects, its catalog,
//! keys and journal — and what is done with it: backup, restore, read, check, reclaim (the
//! space half of garbage collection) and the file index.
//!
//! **Not an API boundary.** Programs use the `coldkeep` facade, which re-exports what they
//! need; this crate's `pub` items serve the control plane (`coldkeep-protect`) and the facade,
//! and change whenever they need to. It knows nothing of policies, groups, runs or retention:
//! its dependencies point down only (store, catalog, chunker, model), never up.

pub mod archive;
pub mod backup;
pub mod beneath;
pub mod check;
pub mod config;
pub mod control;
mod direct;
pub mod error;
mod fsmeta;
pub mod gc;
mod journal;
pub mod keys;
pub mod progress;
mod reach;
pub mod read;
pub mod rebuild;
pub mod remote;
pub mod repo;
pub mod restore;
pub mod search;
pub mod store_lock;
pub mod tree;

pub use error::{Error, ErrorKind, HasErrorKind};
