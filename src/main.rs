//! Entry points only: the desktop app (no arguments), the headless CLI (a subcommand), and
//! nothing for wasm (the browser starts through `samlab::web::start`).

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use clap::Parser;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = samlab::cli::Cli::parse();
    if cli.command.is_none() {
        use clap::CommandFactory;
        samlab::cli::Cli::command().print_help().ok();
        return;
    }
    std::process::exit(samlab::cli::main_with(cli));
}

#[cfg(target_arch = "wasm32")]
fn main() {}
