//! `make unit` (okra-core, okra-aws, xtask) runs without the local AWS: none of these crates
//! depends on okra-testkit, the crate that starts moto, cargo lambda watch and Step Functions.
//! The adapters' tests against moto live in the e2e package (tests/e2e/state_table.rs).

use std::path::Path;

#[test]
fn the_unit_crates_do_not_start_the_local_aws() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for manifest in [
        "crates/okra-core/Cargo.toml",
        "crates/okra-aws/Cargo.toml",
        "xtask/Cargo.toml",
    ] {
        let text = std::fs::read_to_string(root.join(manifest)).expect("reads the manifest");
        let deps: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("okra-testkit") || l.starts_with("okra-demo"))
            .collect();
        assert!(deps.is_empty(), "{manifest} depends on {deps:?}");
    }
}
