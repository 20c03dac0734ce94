//! `okra-demo`: the local rollout story behind `make demo` (see the `okra_demo` library).

#[tokio::main]
async fn main() {
    let code = match okra_demo::run(&okra_demo::Options::from_args()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
