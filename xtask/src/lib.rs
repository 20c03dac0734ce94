//! The project's own tasks (`cargo xtask <task>`), apart from the product.

pub mod asl;
