//! The `okra` command line, as a library: the commands (`cli`), the rollout view shared by
//! `okra rollout status|watch` and the demo (`view`), the HTML report (`report`), and the local
//! rollout story behind `make demo` (`demo`).
//!
//! Everything runs in-process over okra-aws's adapters and handlers (the API handler answers the
//! cell and rollout commands, as the `api` function would), against AWS through the standard
//! credential chain, or against the local emulator.

pub mod cli;
pub mod ctx;
pub mod demo;
pub mod error;
pub mod report;
pub mod view;

pub use error::{CliError, exit};
