//! Entry points only: the desktop app (no arguments), the headless CLI (a subcommand), and
//! nothing for wasm (the browser starts through `samlab::web::start`).

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = samlab::cli::parse_args();
    if cli.command.is_none() {
        std::process::exit(desktop());
    }
    std::process::exit(samlab::cli::main_with(cli));
}

/// The desktop app (eframe, wgpu renderer); returns the exit status.
#[cfg(not(target_arch = "wasm32"))]
fn desktop() -> i32 {
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default().with_title("SAM lab").with_app_id("samlab").with_inner_size([1280.0, 800.0]),
        ..Default::default()
    };
    match eframe::run_native("SAM lab", options, Box::new(|cc| Ok(Box::new(samlab::app::SamLabApp::new(cc))))) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: cannot open the SAM lab window: {e}");
            eprintln!("(the headless commands work without a display: `samlab --help`)");
            1
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
