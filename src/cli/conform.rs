//! `conform`: every scenario on a real Linux kernel in QEMU, against the
//! model's exhaustive verdicts (see docs/conformance.md). The VM is driven by
//! `scripts/conform-vm.sh`, embedded in the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use freezefuzz::engine::explore::ExploreLimits;
use freezefuzz::engine::program;
use freezefuzz::oracle::OracleSet;
use freezefuzz::repro::conform::{self, Matrix, ModelCell, Observed};
use freezefuzz::repro::{self, Options};

use super::args::{FileArgs, Format, parse_u64};
use super::load::{load, pick};
use super::{EXIT_FAILED, EXIT_USAGE, emit, usage_error};

/// The VM driver (`scripts/conform-vm.sh`).
const VM_SCRIPT: &str = include_str!("../../scripts/conform-vm.sh");
/// The conformance scenarios loaded beside the shipped policies by default.
const CONFORMANCE_FILE: &str = "conformance/conformance.ff";
const FILESYSTEMS: [&str; 4] = ["ext4", "ext4-nodelalloc", "xfs", "btrfs"];

#[derive(clap::Args, Debug)]
pub(super) struct ConformArgs {
    /// The policy whose verdicts the kernel is held against.
    #[arg(long, default_value = "mainline")]
    policy: String,
    /// Only these scenarios (repeatable; default: every loaded scenario).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Filesystems, comma-separated: ext4, ext4-nodelalloc, xfs, btrfs.
    #[arg(long, default_value = "ext4,ext4-nodelalloc,xfs,btrfs")]
    fs: String,
    /// The kernel image to boot (default: the newest /boot/vmlinuz-*).
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// Its modules folder (default: /lib/modules/VERSION of the image's name).
    #[arg(long, value_name = "DIR")]
    modules: Option<PathBuf>,
    /// Runs per racing cell.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    runs: u32,
    /// Seed of the racing cells' start offsets.
    #[arg(long, default_value = "1", value_parser = parse_u64)]
    seed: u64,
    /// Seconds the whole VM run may take before it counts as hung.
    #[arg(long, default_value_t = 280, value_parser = clap::value_parser!(u32).range(10..=86_400))]
    timeout: u32,
    /// Where to keep the probes, the serial log and the results.
    #[arg(long, value_name = "DIR", default_value = "target/conform")]
    out: PathBuf,
    /// Compare a results file of an earlier run instead of booting a VM.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Output format: the grid as a table or Markdown, or the whole comparison as JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    files: FileArgs,
}

/// `freezefuzz conform`.
pub(super) fn run(args: ConformArgs) -> ExitCode {
    let mut files = args.files.clone();
    if files.files.is_empty() {
        files.files = default_files();
    }
    let workspace = match load(&files) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let filesystems: Vec<String> = args.fs.split(',').map(|s| s.trim().to_string()).collect();
    if let Some(bad) = filesystems.iter().find(|f| !FILESYSTEMS.contains(&f.as_str())) {
        return usage_error(format!(
            "unknown filesystem `{bad}` in --fs; expected some of {}",
            FILESYSTEMS.join(", ")
        ));
    }
    let Some(policy) = workspace.policy(&args.policy) else {
        return usage_error(format!("unknown policy `{}`", args.policy));
    };
    let scenarios = match pick("scenario", &args.scenarios, &workspace.scenarios, |s| &s.name) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // The model's side, and which scenarios the probe can perform.
    let oracles = OracleSet::standard();
    let limits = ExploreLimits {
        steps_max: 1000,
        ..ExploreLimits::default()
    };
    let mut models: Vec<ModelCell> = Vec::new();
    let mut unrealisable: Vec<(String, String)> = Vec::new();
    let mut tables: Vec<(String, repro::Repro)> = Vec::new();
    let mut needs_delalloc: Vec<String> = Vec::new();
    let mut io_errors: Vec<String> = Vec::new();
    for scenario in &scenarios {
        let program = match program::compile(policy, scenario) {
            Ok(p) => p,
            Err(e) => return usage_error(e),
        };
        let users: Vec<usize> = repro::probe_threads(scenario)
            .iter()
            .filter(|(_, _, actions)| {
                !actions.iter().any(|a| {
                    matches!(
                        a.kind,
                        freezefuzz::ir::ActionKind::Freeze | freezefuzz::ir::ActionKind::Thaw
                    )
                })
            })
            .map(|(i, _, _)| *i)
            .collect();
        models.push(conform::model_cell(&program, &oracles, &limits, &users));
        let options = Options {
            policy: policy.name.clone(),
            racing_runs: args.runs,
            order: Vec::new(),
            source: None,
        };
        match repro::realisable(scenario) {
            Err(e) => unrealisable.push((scenario.name.clone(), e.what.clone())),
            Ok(needs) => {
                if needs == repro::Needs::Delalloc {
                    needs_delalloc.push(scenario.name.clone());
                }
                if repro::injects_io_error(scenario) {
                    io_errors.push(scenario.name.clone());
                }
                match repro::generate(scenario, &options) {
                    Ok(r) => tables.push((scenario.name.clone(), r)),
                    Err(e) => unrealisable.push((scenario.name.clone(), e.what)),
                }
            }
        }
    }
    let observed = match &args.results {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => match conform::parse_results(&text) {
                Ok(o) => o,
                Err(e) => return usage_error(format!("{}: {e}", path.display())),
            },
            Err(e) => return usage_error(format!("cannot read {}: {e}", path.display())),
        },
        None => match run_vm(&args, &filesystems, &tables) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    let mut cells = Vec::new();
    for model in &models {
        for fs in &filesystems {
            let reason = unrealisable
                .iter()
                .find(|(s, _)| s == &model.scenario)
                .map(|(_, why)| why.clone())
                .or_else(|| {
                    (fs == "ext4-nodelalloc" && needs_delalloc.contains(&model.scenario))
                        .then(|| "`buffers = delayed` needs a delalloc filesystem".to_string())
                })
                .or_else(|| {
                    (fs == "btrfs" && io_errors.contains(&model.scenario)).then(|| {
                        "btrfs writes a page's new data to a new block (copy on write): the write errors cannot be aimed at it"
                            .to_string()
                    })
                });
            cells.push(conform::compare(model, fs, &observed, reason.as_deref()));
        }
    }
    let matrix = Matrix {
        schema: "freezefuzz-conform/1".into(),
        policy: policy.name.clone(),
        kernel: observed.kernel.clone(),
        filesystems,
        seed: args.seed,
        racing_runs: args.runs,
        cells,
    };
    let text = match args.format {
        Format::Table => matrix.table(),
        Format::Markdown => matrix.markdown(),
        Format::Json => matrix.json(),
    };
    let code = emit(&text);
    if code != ExitCode::SUCCESS {
        return code;
    }
    if matrix.agrees() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// The shipped policies and scenarios are always loaded; by default the
/// conformance scenarios join them when run from the project directory.
fn default_files() -> Vec<PathBuf> {
    if Path::new(CONFORMANCE_FILE).exists() {
        vec![PathBuf::from(CONFORMANCE_FILE)]
    } else {
        Vec::new()
    }
}

/// Compiles the probes, boots the VM and reads what it reported.
fn run_vm(
    args: &ConformArgs,
    filesystems: &[String],
    tables: &[(String, repro::Repro)],
) -> Result<Observed, String> {
    let out = &args.out;
    let probes = out.join("probes");
    let _ = std::fs::remove_dir_all(&probes);
    std::fs::create_dir_all(&probes).map_err(|e| format!("cannot create {}: {e}", probes.display()))?;
    let cc = which("cc").or_else(|| which("gcc")).ok_or(
        "no C compiler to build the probes: install one with apt-get install gcc libc6-dev".to_string(),
    )?;
    for (name, files) in tables {
        let source = probes.join(format!("probe-{name}.c"));
        std::fs::write(&source, &files.probe_c)
            .map_err(|e| format!("cannot write {}: {e}", source.display()))?;
        let binary = probes.join(format!("probe-{name}"));
        let status = Command::new(&cc)
            .args(["-O2", "-static", "-pthread", "-o"])
            .arg(&binary)
            .arg(&source)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", cc.display()))?;
        if !status.success() {
            return Err(format!(
                "the probe for `{name}` did not compile (static glibc missing? apt-get install libc6-dev)"
            ));
        }
        let _ = std::fs::remove_file(&source);
    }
    std::fs::write(probes.join("run.sh"), repro::RUN_SH).map_err(|e| e.to_string())?;
    let script = out.join("conform-vm.sh");
    std::fs::write(&script, VM_SCRIPT).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--probes")
        .arg(&probes)
        .arg("--out")
        .arg(out)
        .args(["--fs", &filesystems.join(" ")])
        .args(["--seed", &args.seed.to_string()])
        .args(["--timeout", &args.timeout.to_string()]);
    if let Some(kernel) = &args.kernel {
        cmd.arg("--kernel").arg(kernel);
    }
    if let Some(modules) = &args.modules {
        cmd.arg("--modules").arg(modules);
    }
    let status = cmd.status().map_err(|e| format!("cannot run bash: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the VM run failed (see the message above; serial log in {})",
            out.join("serial.log").display()
        ));
    }
    let results = out.join("results.jsonl");
    let text =
        std::fs::read_to_string(&results).map_err(|e| format!("cannot read {}: {e}", results.display()))?;
    conform::parse_results(&text).map_err(|e| format!("{}: {e}", results.display()))
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
