//! The `okra` command line, as a library: the commands (`cli`), the rollout view shared by
//! `okra rollout status|watch` and the demo (`view`), and the HTML report (`report`). The local
//! rollout story behind `make demo` is the `okra-demo` crate, apart from the shipped binary.
//!
//! The commands reach okra one of two ways ([`client::Client`]): through okra's API, SigV4-signed
//! with the caller's credentials (`--api-url`; [`api`]), or in process over okra-aws's
//! application layer (the code the `api` function runs), against AWS through the standard
//! credential chain or against the local emulator.

pub mod api;
pub mod cli;
pub mod client;
pub mod ctx;
pub mod error;
pub mod report;
pub mod view;

pub use error::{CliError, exit};
