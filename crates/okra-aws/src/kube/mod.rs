//! Kubernetes API access (EKS hub): [`Kube`], the [`crate::ports::HubPort`] adapter, and the EKS
//! token it authenticates with.

pub mod client;
pub mod token;

pub use client::Kube;
pub use token::{TOKEN_PREFIX, TokenError, eks_token};
