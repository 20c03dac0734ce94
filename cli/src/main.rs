//! `okra`: see `okra --help`.

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = okra_cli::cli::Cli::parse();
    let code = okra_cli::cli::run(cli).await;
    std::process::exit(code);
}
