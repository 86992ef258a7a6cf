//! Project tasks:
//! - `cargo xtask test`: every test — `cargo test --workspace` (native, GPU on lavapipe, UI
//!   snapshots), then the web build, the browser test (headless Chromium through Playwright,
//!   with and without WebGPU, every WGSL entry point through Chromium's compiler) the desktop
//!   smoke test (Xvfb) and the cluster test (Slurm);
//! - `cargo xtask cluster-test`: sweeps as Slurm job arrays on a one-node cluster it starts
//!   (munged, slurmctld, slurmd must be installed; see cluster.rs);
//! - `cargo xtask web`: build the browser bundle into `dist/` (size-optimised: the `web`
//!   profile, then `wasm-opt -Oz`; prints raw and gzip -9 sizes and fails above
//!   `WASM_GZIP_LIMIT`);
//! - `cargo xtask soak [--minutes N]`: the lab under a scripted user for N minutes (release);
//! - `cargo xtask serve [PORT]`: serve `dist/` on 127.0.0.1 (default port 8080).
//!
//! `SAMLAB_SKIP_CLUSTER=1` / `SAMLAB_SKIP_BROWSER=1` / `SAMLAB_SKIP_DESKTOP=1` skip the cluster /
//! browser / desktop parts of `test` (with a printed notice; CI sets none). `UPDATE_SCREENSHOTS=1` copies the screenshots the
//! tests took into docs/screenshots/ for the README.

mod cluster;

use anyhow::{Context, Result, bail};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("cluster-test") => cluster_test(),
        Some("web") => web(),
        Some("soak") => soak(&args[1..]),
        Some("serve") => {
            let port = args.get(1).map(|p| p.parse::<u16>().context("the port must be a number")).transpose()?.unwrap_or(8080);
            serve(port)
        }
        _ => {
            eprintln!("usage: cargo xtask test | cluster-test | soak [--minutes N] | web | serve [PORT]");
            std::process::exit(2);
        }
    }
}

/// The lab soak (tests/soak.rs) for `--minutes N` (default 10), in the release profile.
fn soak(args: &[String]) -> Result<()> {
    let minutes: f64 = match args {
        [] => 10.0,
        [flag, n] if flag == "--minutes" => {
            n.parse().ok().filter(|m: &f64| m.is_finite() && *m > 0.0).with_context(|| format!("--minutes {n:?}: a positive number of minutes"))?
        }
        other => bail!("usage: cargo xtask soak [--minutes N]; got {other:?}"),
    };
    run(cargo().args(["test", "--release", "--test", "soak", "--", "--nocapture"]).env("SAMLAB_SOAK_SECONDS", (60.0 * minutes).to_string()))
}

fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

fn test(_args: &[String]) -> Result<()> {
    // GPU tests without an adapter leave a file each here (GpuContext::for_tests): counted below.
    let skips = root().join("target/gpu-skipped");
    let _ = std::fs::remove_dir_all(&skips);
    run(cargo().args(["test", "--workspace"]).env("SAMLAB_SKIP_DIR", &skips))?;
    let skipped: Vec<String> =
        std::fs::read_dir(&skips).map(|d| d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect()).unwrap_or_default();
    if skipped.is_empty() {
        eprintln!("xtask: every GPU test ran (none skipped)");
    } else {
        eprintln!("xtask: {} GPU test groups SKIPPED for want of an adapter: {}", skipped.len(), skipped.join(", "));
    }
    if flag("SAMLAB_SKIP_BROWSER") {
        eprintln!("xtask: SAMLAB_SKIP_BROWSER=1: skipping the web build and the browser test");
    } else {
        web()?;
        browser_test()?;
    }
    if flag("SAMLAB_SKIP_DESKTOP") {
        eprintln!("xtask: SAMLAB_SKIP_DESKTOP=1: skipping the desktop smoke test");
    } else {
        desktop_smoke()?;
    }
    if flag("SAMLAB_SKIP_CLUSTER") {
        eprintln!("xtask: SAMLAB_SKIP_CLUSTER=1: skipping the Slurm cluster test");
    } else {
        cluster_test()?;
    }
    if flag("UPDATE_SCREENSHOTS") {
        update_screenshots()?;
    }
    eprintln!("xtask: every test passed");
    Ok(())
}

/// Builds samlab and runs the sweep flow on a one-node Slurm cluster (cluster.rs).
fn cluster_test() -> Result<()> {
    run(cargo().args(["build", "--bin", "samlab"]))?;
    let root = root();
    let target_dir = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    cluster::cluster_test(&root, &target_dir.join("debug/samlab"))
}

/// Copies the screenshots the tests took into docs/screenshots/ (for the README).
fn update_screenshots() -> Result<()> {
    let root = root();
    let (shots, docs) = (root.join("target/screenshots"), root.join("docs/screenshots"));
    std::fs::create_dir_all(&docs)?;
    for (from, to) in [("desktop.png", "desktop.png"), ("web-link.png", "browser.png"), ("own-csv.png", "own-csv.png")] {
        if shots.join(from).exists() {
            std::fs::copy(shots.join(from), docs.join(to)).with_context(|| format!("copying {from}"))?;
            eprintln!("xtask: docs/screenshots/{to} updated");
        }
    }
    Ok(())
}

/// The most samlab_bg.wasm may weigh compressed with gzip -9 (what a visitor downloads from a
/// host that compresses): `cargo xtask web` and the browser test fail above it.
const WASM_GZIP_LIMIT: u64 = 2_000_000;

/// The static files of the page, copied from web/ into dist/ as they are.
const WEB_FILES: [&str; 4] = ["index.html", "bench.html", "loader.js", "favicon.svg"];

/// The browser bundle: the library for wasm32 (`web` profile, without the embedded MNIST file,
/// which the page downloads beside it), its JS bindings, `wasm-opt -Oz`, the static page.
/// Writes dist/size.json and fails when the module is over `WASM_GZIP_LIMIT` gzipped.
fn web() -> Result<()> {
    let root = root();
    run(cargo().args(["build", "--profile", "web", "--lib", "--target", "wasm32-unknown-unknown", "--no-default-features"]))?;
    let dist = root.join("dist");
    std::fs::create_dir_all(&dist)?;
    let target_dir = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let wasm = target_dir.join("wasm32-unknown-unknown/web/samlab.wasm");
    run(Command::new("wasm-bindgen").args(["--target", "web", "--no-typescript", "--out-dir"]).arg(&dist).arg(&wasm).current_dir(&root))
        .context("wasm-bindgen failed; install it with `cargo install wasm-bindgen-cli --version =0.2.130` (the version in Cargo.lock)")?;
    let module = dist.join("samlab_bg.wasm");
    let bound = file_size(&module)?;
    wasm_opt(&module)?;
    for f in WEB_FILES {
        std::fs::copy(root.join("web").join(f), dist.join(f)).with_context(|| format!("copying web/{f}"))?;
    }
    std::fs::copy(root.join("assets/mnist_5k.csv.gz"), dist.join("mnist_5k.csv.gz")).context("copying assets/mnist_5k.csv.gz")?;
    let (raw, gz) = (file_size(&module)?, gzip9_size(&module)?);
    let js = gzip9_size(&dist.join("samlab.js"))?;
    std::fs::write(
        dist.join("size.json"),
        format!("{{\"wasm_raw\": {raw}, \"wasm_gzip9\": {gz}, \"wasm_gzip9_limit\": {WASM_GZIP_LIMIT}, \"js_gzip9\": {js}}}\n"),
    )?;
    let mb = |b: u64| b as f64 / 1e6;
    eprintln!(
        "xtask: web bundle in {}: samlab_bg.wasm {:.2} MB raw ({:.2} MB before wasm-opt), {:.2} MB gzip -9 (limit {:.2}); samlab.js {:.0} kB gzip -9",
        dist.display(),
        mb(raw),
        mb(bound),
        mb(gz),
        mb(WASM_GZIP_LIMIT),
        js as f64 / 1e3
    );
    if gz > WASM_GZIP_LIMIT {
        bail!("samlab_bg.wasm is {:.2} MB gzip -9, over the {:.2} MB limit", mb(gz), mb(WASM_GZIP_LIMIT));
    }
    eprintln!("xtask: serve it with `cargo xtask serve`");
    Ok(())
}

fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path).with_context(|| format!("{} is missing", path.display()))?.len())
}

/// Bytes of `gzip -9` of the file.
fn gzip9_size(path: &Path) -> Result<u64> {
    let out = Command::new("gzip").args(["-9", "-c"]).arg(path).output().context("cannot run gzip")?;
    if !out.status.success() {
        bail!("gzip -9 {} failed", path.display());
    }
    Ok(out.stdout.len() as u64)
}

/// The wasm-opt to use: `SAMLAB_WASM_OPT`, else npm's binaryen in web/tests (`npm install`
/// there when it is missing), else the one on the PATH (Debian's binaryen 108 produces a
/// module Chromium rejects: a warning says so).
fn wasm_opt_program() -> PathBuf {
    if let Ok(p) = std::env::var("SAMLAB_WASM_OPT") {
        return PathBuf::from(p);
    }
    let tests = root().join("web/tests");
    let npm = tests.join("node_modules/.bin/wasm-opt");
    if !npm.exists() {
        let _ = run(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--silent"]).current_dir(&tests));
    }
    if npm.exists() {
        return npm;
    }
    eprintln!("xtask: warning: npm's binaryen is missing from web/tests; using the wasm-opt on the PATH (binaryen 108 breaks the module)");
    PathBuf::from("wasm-opt")
}

/// `wasm-opt -Oz` in place, with the features rustc's wasm32 target emits (SIMD included).
fn wasm_opt(module: &Path) -> Result<()> {
    let opt = module.with_extension("opt.wasm");
    let features = [
        "--enable-simd",
        "--enable-bulk-memory",
        "--enable-nontrapping-float-to-int",
        "--enable-sign-ext",
        "--enable-mutable-globals",
        "--enable-reference-types",
        "--enable-multivalue",
    ];
    run(Command::new(wasm_opt_program()).arg("-Oz").args(features).arg(module).arg("-o").arg(&opt))
        .context("wasm-opt failed; install binaryen (`apt-get install binaryen`, or `npm install` in web/tests)")?;
    std::fs::rename(&opt, module)?;
    Ok(())
}

fn serve(port: u16) -> Result<()> {
    let dist = root().join("dist");
    if !dist.join("index.html").exists() {
        bail!("{} has no index.html: run `cargo xtask web` first", dist.display());
    }
    eprintln!("xtask: serving {} on http://127.0.0.1:{port}/ (Ctrl-C stops)", dist.display());
    run(Command::new("python3").args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "-d"]).arg(&dist))
}

/// Kills the child (and waits) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listens on 127.0.0.1:{port} after {timeout:?}")
}

/// Serves dist/ and runs web/tests/browser.mjs (Playwright + headless Chromium).
fn browser_test() -> Result<()> {
    let root = root();
    let tests = root.join("web/tests");
    if !tests.join("node_modules/playwright-core").exists() {
        run(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--silent"]).current_dir(&tests))?;
    }
    let port = free_port()?;
    let server = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "-d"])
        .arg(root.join("dist"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start python3 -m http.server")?;
    let _server = Guard(server);
    wait_for_port(port, Duration::from_secs(20))?;
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots)?;
    run(Command::new("node").arg("browser.mjs").env("SAMLAB_URL", format!("http://127.0.0.1:{port}/")).env("SAMLAB_SHOTS", &shots).current_dir(&tests))?;
    // Every WGSL entry point through the browser's own compiler (stricter than naga).
    run(Command::new("node").arg("wgsl.mjs").env("SAMLAB_URL", format!("http://127.0.0.1:{port}/")).current_dir(&tests))
}

/// Starts the desktop app under Xvfb, lets it train, checks it is still alive, and saves a
/// screenshot of the screen (target/screenshots/desktop.png).
fn desktop_smoke() -> Result<()> {
    let root = root();
    run(cargo().args(["build", "--bin", "samlab"]))?;
    let target_dir = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let bin = target_dir.join("debug/samlab");
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots)?;
    let shot = shots.join("desktop.png");
    let _ = std::fs::remove_file(&shot);
    // A fresh storage directory: the smoke test opens the default preset, not a stored session.
    let data_home = root.join("target/smoke-data");
    let _ = std::fs::remove_dir_all(&data_home);
    std::fs::create_dir_all(&data_home)?;
    let script = format!(
        r#"set -u
"{bin}" > "{log}" 2>&1 &
app=$!
sleep "${{SAMLAB_SMOKE_SECONDS:-12}}"
if ! kill -0 $app 2>/dev/null; then echo "the app exited early:"; cat "{log}"; exit 1; fi
import -window root "{shot}"
kill $app; wait $app 2>/dev/null
last=$(grep -o 'steps=[0-9]*' "{log}" | tail -1 | cut -d= -f2)
echo "desktop app: $(grep 'samlab::status' "{log}" | tail -1)"
if [ -z "$last" ] || [ "$last" -eq 0 ]; then echo "training did not advance:"; cat "{log}"; exit 1; fi
exit 0"#,
        bin = bin.display(),
        log = shots.join("desktop.log").display(),
        shot = shot.display()
    );
    run(Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24", "bash", "-c", &script])
        .env("XDG_DATA_HOME", &data_home)
        .env("RUST_LOG", "warn,samlab::status=info")
        .current_dir(&root))?;
    check_not_blank(&shot)?;
    eprintln!("xtask: desktop smoke test passed; screenshot {}", shot.display());
    Ok(())
}

/// Fails when the screenshot has (almost) a single colour: the window drew nothing.
fn check_not_blank(png: &Path) -> Result<()> {
    let out = Command::new("identify").args(["-format", "%[fx:standard_deviation]"]).arg(png).output().context("imagemagick's identify")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let sd: f64 = text.trim().parse().with_context(|| format!("identify printed {text:?} for {}", png.display()))?;
    if sd < 0.02 {
        bail!("{} is blank (standard deviation {sd:.4})", png.display());
    }
    Ok(())
}
