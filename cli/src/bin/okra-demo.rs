//! `okra-demo`: the local rollout story behind `make demo` (see `okra_cli::demo`).

#[tokio::main]
async fn main() {
    let code = match okra_cli::demo::run(&okra_cli::demo::Options::from_args()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
