//! `cargo xtask asl [--check]`: writes statemachine/rollout.asl.json from xtask/src/asl.rs, or
//! (`--check`) fails when the checked-in file differs from what the generator writes.

use std::path::PathBuf;
use std::process::ExitCode;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the workspace")
        .to_path_buf()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["asl"] => {
            let path = root().join(xtask::asl::PATH);
            if let Err(e) = std::fs::write(&path, xtask::asl::text()) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", xtask::asl::PATH);
            ExitCode::SUCCESS
        }
        ["asl", "--check"] => {
            let path = root().join(xtask::asl::PATH);
            match std::fs::read_to_string(&path) {
                Ok(t) if t == xtask::asl::text() => ExitCode::SUCCESS,
                Ok(_) => {
                    eprintln!("{} is stale: run `cargo xtask asl`", xtask::asl::PATH);
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("cannot read {}: {e}", path.display());
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: cargo xtask asl [--check]");
            ExitCode::from(2)
        }
    }
}
