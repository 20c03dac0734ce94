//! The Lambda handlers, written over the ports so that tests can run them on fakes.
//! Each `functions/<name>/src/main.rs` builds the adapters once and calls one of these.

pub mod api;
pub mod background;
pub mod check;
pub mod discover;
pub mod dispatch;
pub mod doctor;
pub mod ensure;
pub mod lifecycle;
pub mod shift;
pub mod state;
