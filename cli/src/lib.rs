//! The `okra` command line, as a library: the commands (`cli`), the rollout view shared by
//! `okra rollout status|watch` and the demo (`view`), and the HTML report (`report`). The local
//! rollout story behind `make demo` is the `okra-demo` crate, apart from the shipped binary.
//!
//! Everything runs in-process over okra-aws's adapters and handlers (the API handler answers the
//! cell and rollout commands, as the `api` function would), against AWS through the standard
//! credential chain, or against the local emulator.

pub mod cli;
pub mod ctx;
pub mod error;
pub mod report;
pub mod view;

pub use error::{CliError, exit};
