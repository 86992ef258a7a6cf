//! `cargo xtask cluster-test`: sweeps on a real one-node Slurm cluster. Starts munged, slurmctld
//! and slurmd (installed beforehand, as .ci/run does) with a generated config in a temporary
//! directory, then through scripts/slurm/submit.sh:
//! 1. `m-sweep --quick --seeds 2` as a job array plus its collect job; the collected results
//!    must equal `samlab experiment m-sweep --quick --seeds 2` in one process (timings excluded);
//! 2. `m-sweep --seeds 1` (full size, so that its m = 1 trial runs for seconds): that trial's
//!    array task is cancelled with `scancel` while samlab runs it; `--collect` must report it
//!    missing (exit 1), and submitting the plan again must run that trial only.
//!
//! The daemons it started are stopped by their pids when it ends, passed or failed (a Drop guard),
//! after cancelling the jobs it submitted.

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The whole test may not take longer than this (CI's budget); each wait has its own limit below.
const TIME_LIMIT: Duration = Duration::from_secs(300);

/// The cluster this test started: daemons (foreground children) and submitted jobs.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
    jobs: Vec<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.jobs.is_empty() {
            let _ = self.command("scancel").args(&self.jobs).stderr(Stdio::null()).status();
        }
        // slurmd first, munged last (the others authenticate through it).
        while let Some((name, mut child)) = self.daemons.pop() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Ok(None) = child.try_wait() {
                eprintln!("xtask: {name} (pid {pid}) ignored SIGTERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        eprintln!("xtask: stopped the cluster's daemons (logs in {})", self.dir.display());
    }
}

impl Cluster {
    /// A Slurm client command against this cluster.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn output(&self, program: &str, args: &[&str]) -> Result<Output> {
        let out = self.command(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
        Ok(out)
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) -> Result<()> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.out")))?;
        let child = cmd.stdout(log.try_clone()?).stderr(log).spawn().with_context(|| format!("cannot start {name}"))?;
        eprintln!("xtask: started {name} (pid {})", child.id());
        self.daemons.push((name, child));
        Ok(())
    }

    /// Job ids (array or single) still known to the controller among `jobs`.
    fn queued(&self, jobs: &[&str]) -> Result<Vec<String>> {
        let out = self.output("squeue", &["-h", "-r", "-o", "%i %T", "-j", &jobs.join(",")])?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect())
    }

    fn wait_gone(&self, jobs: &[&str], limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let q = self.queued(jobs)?;
            if q.is_empty() {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!("jobs still queued after {limit:?}: {q:?} (logs in {})", self.dir.display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// scripts/slurm/submit.sh NAME PLAN FLAGS…; returns (array job, collect job, ids).
    fn submit(&mut self, root: &Path, samlab: &Path, name: &str, plan: &Path, flags: &[&str]) -> Result<(String, String, String)> {
        let mut cmd = self.command("bash");
        cmd.arg(root.join("scripts/slurm/submit.sh")).args(["--max-running", "2", name]).arg(plan).args(flags).env("SAMLAB", samlab);
        eprintln!("xtask: running {cmd:?}");
        let out = cmd.output()?;
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        ensure!(out.status.success(), "submit.sh failed with {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let parts: Vec<&str> = text.split_whitespace().collect();
        ensure!(parts.len() == 3, "submit.sh printed {text:?}, expected \"<array job> <collect job> <ids>\"");
        for job in &parts[..2] {
            if *job != "-" {
                self.jobs.push(job.to_string());
            }
        }
        Ok((parts[0].to_string(), parts[1].to_string(), parts[2].to_string()))
    }
}

fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn hostname() -> Result<String> {
    let out = Command::new("hostname").arg("-s").output().context("hostname -s")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn memory_mb() -> Result<u64> {
    let info = std::fs::read_to_string("/proc/meminfo")?;
    let kb: u64 =
        info.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).context("MemTotal")?;
    Ok((kb / 1024).saturating_sub(1024).max(512))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} not ready after {limit:?}")
}

/// Starts munged, slurmctld and slurmd in `dir` with their own socket, ports and state.
fn start(dir: &Path) -> Result<Cluster> {
    let munge = dir.join("munge");
    std::fs::create_dir_all(&munge)?;
    let key = munge.join("munge.key");
    let mut bytes = vec![0u8; 1024];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    std::fs::write(&key, &bytes)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400))?;
    std::fs::set_permissions(&munge, std::fs::Permissions::from_mode(0o711))?;
    let socket = munge.join("munge.socket");
    let (host, cpus) = (hostname()?, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let conf = dir.join("slurm.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "# Generated by cargo xtask cluster-test: one node, root, no cgroups, no accounting.
ClusterName=samlabtest
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
# Start batch jobs at once (the default delays them up to 3 s: most of a quick trial's time).
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
KillWait=2
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
NodeName={host} CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
",
            ctld_port = free_port()?,
            d_port = free_port()?,
            socket = socket.display(),
            mem = memory_mb()?,
        ),
    )?;
    for sub in ["state", "spool"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let mut cluster = Cluster { dir: dir.to_path_buf(), conf: conf.clone(), daemons: Vec::new(), jobs: Vec::new() };
    // munged as root needs --force; its own key, socket, pid, log and seed files.
    let mut munged = Command::new("munged");
    munged.arg("-F").arg("--force").arg(format!("--key-file={}", key.display())).arg(format!("--socket={}", socket.display()));
    munged.arg(format!("--pid-file={}", munge.join("munged.pid").display())).arg(format!("--log-file={}", munge.join("munged.log").display()));
    munged.arg(format!("--seed-file={}", munge.join("munged.seed").display()));
    cluster.spawn("munged", &mut munged)?;
    wait_for("munged's socket", Duration::from_secs(10), || Ok(socket.exists()))?;
    let mut ctld = cluster.command("slurmctld");
    ctld.arg("-D");
    cluster.spawn("slurmctld", &mut ctld)?;
    wait_for("slurmctld", Duration::from_secs(20), || Ok(cluster.output("sinfo", &["-h"])?.status.success()))?;
    let mut slurmd = cluster.command("slurmd");
    slurmd.arg("-D");
    cluster.spawn("slurmd", &mut slurmd)?;
    wait_for("the node (sinfo: idle)", Duration::from_secs(30), || {
        Ok(String::from_utf8_lossy(&cluster.output("sinfo", &["-h", "-o", "%T"])?.stdout).trim() == "idle")
    })?;
    Ok(cluster)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// An experiment JSON's trials and results without what depends on the clock.
fn untimed(doc: &Value) -> (Value, Value) {
    let mut results = doc["results"].clone();
    for r in results.as_array_mut().into_iter().flatten() {
        if let Some(r) = r.as_object_mut() {
            r.remove("ms_per_step");
            r.remove("seconds_to_target");
        }
    }
    (doc["trials"].clone(), results)
}

fn mtime(path: &Path) -> Result<SystemTime> {
    Ok(std::fs::metadata(path).with_context(|| format!("{}", path.display()))?.modified()?)
}

/// Whether a process of samlab runs `trial_file` now (its command line names it).
fn samlab_running(trial_file: &Path) -> bool {
    let needle = trial_file.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
            let args: Vec<String> = c.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).to_string()).collect();
            args.iter().any(|a| a.ends_with("samlab")) && args.iter().any(|a| a == "trial") && args.contains(&needle)
        })
    })
}

pub fn cluster_test(root: &Path, samlab_built: &Path) -> Result<()> {
    let missing: Vec<&str> = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"].into_iter().filter(|p| !have(p)).collect();
    if !missing.is_empty() {
        bail!("{} not installed: apt-get install slurmctld slurmd slurm-client munge (as .ci/run does), or SAMLAB_SKIP_CLUSTER=1", missing.join(", "));
    }
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("samlab-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin"))?;
    // A copy of the binary: the build directory's may be rebuilt while the jobs run.
    let samlab = dir.join("bin/samlab");
    std::fs::copy(samlab_built, &samlab).with_context(|| format!("copying {}", samlab_built.display()))?;
    let mut cluster = start(&dir)?;
    eprintln!("xtask: one-node Slurm cluster up in {:.1} s ({})", started.elapsed().as_secs_f64(), dir.display());

    // 1. The quick m-sweep as an array, collected by its dependent job, against one process.
    let quick = ["--quick", "--seeds", "2"];
    let plan = dir.join("quick");
    let t = Instant::now();
    let (array, collect, ids) = cluster.submit(root, &samlab, "m-sweep", &plan, &quick)?;
    let n_quick = planned(&plan)?;
    ensure!(ids == format!("0-{}", n_quick - 1), "the quick plan should have {n_quick} trials to run, submit.sh says {ids}");
    cluster.wait_gone(&[&array, &collect], TIME_LIMIT.saturating_sub(started.elapsed()))?;
    let array_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let one = dir.join("one-process");
    let out = Command::new(&samlab).args(["experiment", "m-sweep", "--quiet", "--out"]).arg(&one).args(quick).output()?;
    ensure!(out.status.success(), "the in-process experiment failed: {}", String::from_utf8_lossy(&out.stderr));
    let one_s = t.elapsed().as_secs_f64();
    let collected = read_json(&plan.join("m-sweep.json")).context("the collect job wrote no report")?;
    ensure!(
        collected["missing"] == serde_json::json!([]) && collected["results"].as_array().map_or(0, Vec::len) == n_quick,
        "the collect job's report is incomplete"
    );
    ensure!(untimed(&collected) == untimed(&read_json(&one.join("m-sweep.json"))?), "the array's results differ from the in-process experiment's");
    eprintln!("xtask: quick m-sweep: {n_quick} trials as a Slurm array + collect job in {array_s:.1} s, the same numbers as in one process ({one_s:.1} s)");

    // 2. A task killed mid-trial is missing; submitting the plan again runs it only.
    let plan = dir.join("full");
    let full = ["--seeds", "1"];
    let (array, collect, ids) = cluster.submit(root, &samlab, "m-sweep", &plan, &full)?;
    let n_full = planned(&plan)?;
    ensure!(ids == format!("0-{}", n_full - 1), "the full m-sweep at one seed should have {n_full} trials, submit.sh says {ids}");
    let victim = 6; // m-SAM at m = 1: among the slowest trials (seconds)
    let trial = read_json(&plan.join(format!("trials/{victim:04}.json")))?;
    ensure!(trial["trial"]["series"] == "m-SAM" && trial["trial"]["x"] == 1.0, "trial {victim} is not m-SAM at m = 1: {}", trial["trial"]["series"]);
    let trial_file = plan.join(format!("trials/{victim:04}.json"));
    let result_file = plan.join(format!("results/{victim:04}.json"));
    wait_for("samlab running trial 6", TIME_LIMIT.saturating_sub(started.elapsed()), || Ok(samlab_running(&trial_file)))?;
    std::thread::sleep(Duration::from_millis(300));
    ensure!(!result_file.exists(), "trial {victim} finished before it could be cancelled");
    let task = format!("{array}_{victim}");
    let out = cluster.output("scancel", &[&task])?;
    ensure!(out.status.success(), "scancel {task}: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("xtask: cancelled array task {task} while samlab ran trial {victim}");
    cluster.wait_gone(&[&array, &collect], TIME_LIMIT.saturating_sub(started.elapsed()))?;
    ensure!(!result_file.exists(), "the cancelled trial left a result");
    let out = Command::new(&samlab).args(["experiment", "m-sweep", "--collect"]).arg(&plan).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(1) && err.contains("(ids 6)"), "--collect should report trial 6 missing with status 1; it said ({}) {err}", out.status);
    let before: Vec<SystemTime> = (0..victim).map(|id| mtime(&plan.join(format!("results/{id:04}.json")))).collect::<Result<_>>()?;
    let (array, collect, ids) = cluster.submit(root, &samlab, "m-sweep", &plan, &full)?;
    ensure!(ids == "6", "submitting the plan again should run trial 6 only, submit.sh says {ids}");
    cluster.wait_gone(&[&array, &collect], TIME_LIMIT.saturating_sub(started.elapsed()))?;
    let after: Vec<SystemTime> = (0..victim).map(|id| mtime(&plan.join(format!("results/{id:04}.json")))).collect::<Result<_>>()?;
    ensure!(before == after, "submitting again rewrote results that existed");
    let report = read_json(&plan.join("m-sweep.json"))?;
    ensure!(
        report["missing"] == serde_json::json!([]) && report["results"].as_array().map_or(0, Vec::len) == n_full,
        "after the resubmission the report is incomplete"
    );
    eprintln!("xtask: cluster test passed in {:.1} s", started.elapsed().as_secs_f64());
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// How many trials the plan in `dir` holds (its manifest).
fn planned(dir: &Path) -> Result<usize> {
    let manifest = read_json(&dir.join("manifest.json"))?;
    manifest["trials"].as_u64().map(|n| n as usize).filter(|&n| n > 0).context("the plan's manifest names no trials")
}
