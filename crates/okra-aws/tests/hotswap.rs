//! Issue 26's pieces of okra-aws, in one test binary (one link of the SDK): the dispatcher's
//! lifecycle (Argo CD registration, target-group retirement) over the fakes, and the doctor's
//! `argocd-hub` and `target-group-quota` checks over the fakes and against `aws-smithy-mocks`.

mod common;

#[path = "hotswap/doctor.rs"]
mod doctor;
#[path = "hotswap/doctor_adapters.rs"]
mod doctor_adapters;
#[path = "hotswap/lifecycle.rs"]
mod lifecycle;
