//! Reproducers and the conformance matrix: the generated C (snapshot, and
//! compiled when a C compiler is present), the order a schedule implies,
//! unrealisable set-ups, and the comparison of a saved kernel run with the
//! model (the VM itself runs in `.ci/run`, not here).

use std::path::PathBuf;
use std::process::Command as StdCommand;

use assert_cmd::Command;

use freezefuzz::repro::{self, Options, conform};

use crate::support;

fn freezefuzz() -> Command {
    let mut cmd = Command::cargo_bin("freezefuzz").expect("the binary is built");
    cmd.current_dir(support::root());
    cmd
}

fn conformance_workspace() -> freezefuzz::ir::Workspace {
    let mut files = support::shipped_files();
    files.push(support::root().join("conformance/conformance.ff"));
    freezefuzz::dsl::load(&files, &mut |p| std::fs::read(p)).expect("the conformance scenarios load")
}

fn options() -> Options {
    Options {
        policy: "mainline".into(),
        racing_runs: repro::RACING_RUNS_DEFAULT,
        order: Vec::new(),
        source: None,
    }
}

#[test]
fn the_scenario_table_of_a_reproducer_is_stable() {
    let ws = conformance_workspace();
    let mut text = String::new();
    for name in [
        "case1-after-freeze",
        "case4-racing",
        "conf-two-users-racing",
        "conf-delayed-racing",
        "conf-io-error-racing",
    ] {
        let scenario = ws.scenario(name).expect("shipped scenario");
        text.push_str(&repro::scenario_table(scenario, &options()).expect("realisable"));
        text.push('\n');
    }
    insta::assert_snapshot!("repro_scenario_tables", text);
}

fn cc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("cc"))
        .find(|p| p.is_file())
}

/// Every standard and conformance scenario's probe compiles without a
/// warning (skipped, and said so, without a C compiler).
#[test]
fn every_probe_compiles_cleanly() {
    let Some(cc) = cc() else {
        eprintln!("no cc on PATH: the probes' C was not compiled");
        return;
    };
    let ws = conformance_workspace();
    let dir = tempfile::tempdir().expect("temp dir");
    for scenario in &ws.scenarios {
        let files = repro::generate(scenario, &options()).expect("realisable");
        let source = dir.path().join(format!("{}.c", scenario.name));
        std::fs::write(&source, &files.probe_c).expect("write");
        let out = StdCommand::new(&cc)
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-c", "-o"])
            .arg(dir.path().join(format!("{}.o", scenario.name)))
            .arg(&source)
            .output()
            .expect("cc runs");
        assert!(
            out.status.success(),
            "the probe of {} does not compile:\n{}",
            scenario.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn repro_writes_a_program_a_driver_and_a_readme() {
    let dir = tempfile::tempdir().expect("temp dir");
    freezefuzz()
        .args(["repro", "mainline", "case3-racing", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let probe = std::fs::read_to_string(dir.path().join("probe.c")).expect("probe.c");
    assert!(probe.contains("#define FF_SCENARIO \"case3-racing\""));
    assert!(probe.contains("FIFREEZE") && probe.contains("FITHAW"));
    let readme = std::fs::read_to_string(dir.path().join("README.md")).expect("README.md");
    assert!(readme.contains("racing"), "{readme}");
    assert!(dir.path().join("run.sh").is_file());
}

/// A corpus witness keeps its order of user-visible actions: in the 2011
/// delalloc deadlock the freeze begins before the user's first action.
#[test]
fn a_corpus_witness_keeps_its_order_of_actions() {
    let dir = tempfile::tempdir().expect("temp dir");
    freezefuzz()
        .args([
            "repro",
            "--corpus",
            "corpus/block-on-mapped--case3-after-freeze--deadlock.toml",
            "--out",
        ])
        .arg(dir.path())
        .assert()
        .success();
    let probe = std::fs::read_to_string(dir.path().join("probe.c")).expect("probe.c");
    let order = probe
        .split("ff_order[] = {")
        .nth(1)
        .and_then(|rest| rest.split("};").next())
        .expect("an order table");
    // Probe threads: 0 = user, 1 = freezer. The freezer's freeze (1, 0)
    // comes first, then the user's await frozen (0, 0) and store (0, 1).
    let pairs: Vec<&str> = order
        .split("},")
        .map(|p| p.trim().trim_start_matches('{'))
        .collect();
    assert_eq!(&pairs[..3], &["1, 0", "0, 0", "0, 1"], "{order}");
}

#[test]
fn an_unrealisable_page_state_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = freezefuzz()
        .args([
            "repro",
            "mainline",
            "dirty-hole",
            "-f",
            "policies/mainline.ff",
            "-f",
            "policies/wait-in-mkwrite.ff",
        ])
        .args(["-f", "tests/data/conform/unrealisable.ff", "--out"])
        .arg(dir.path())
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dirty-hole") && stderr.contains("a dirty page with `buffers = unmapped`"),
        "{stderr}"
    );
    // Faults: io-error needs allocated blocks to aim at; no other fault is injected.
    for (scenario, says) in [
        (
            "io-error-hole",
            "`io-error` needs every page's block allocated before the freeze",
        ),
        ("evict-fault", "the probe cannot: it injects only `io-error`"),
    ] {
        let out = freezefuzz()
            .args([
                "repro",
                "mainline",
                scenario,
                "-f",
                "tests/data/conform/unrealisable.ff",
                "--out",
            ])
            .arg(dir.path())
            .assert()
            .code(2)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{scenario}: {stderr}");
    }
}

#[test]
fn kernel_stacks_map_to_model_statements() {
    let mkwrite = "[<0>] percpu_rwsem_wait+0x116/0x140\n[<0>] ext4_page_mkwrite+0x59d/0x6b0 [ext4]\n[<0>] do_page_mkwrite+0x4e/0xb0\n";
    let xfs = "[<0>] percpu_rwsem_wait+0x116/0x140\n[<0>] __xfs_filemap_fault+0x2bf/0x2e0 [xfs]\n";
    let lock = "[<0>] folio_wait_bit_common+0x12/0x30\n[<0>] __folio_lock+0x17/0x20\n";
    assert_eq!(
        conform::stack_class(mkwrite).as_deref(),
        Some("sb_start pagefault")
    );
    assert_eq!(conform::stack_class(xfs).as_deref(), Some("sb_start pagefault"));
    assert_eq!(conform::stack_class(lock).as_deref(), Some("lock_page"));
    assert_eq!(conform::stack_class(""), None);
    assert_eq!(
        conform::statement_class("sb_start pagefault"),
        "sb_start pagefault"
    );
    assert_eq!(conform::statement_class("msync a: test dirty"), "wait writeback");
}

const RESULTS: &str = "tests/data/conform/results.jsonl";

/// The deterministic part of the conformance matrix: a committed kernel run
/// (Debian's 6.1 in QEMU) compared with the model's exhaustive verdicts.
#[test]
fn the_conformance_matrix_of_a_saved_kernel_run() {
    let out = freezefuzz()
        .args(["conform", "--results", RESULTS, "--format", "markdown"])
        .output()
        .expect("runs");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    insta::assert_snapshot!("conform_saved_run", text);
}

/// A frozen write the model never reaches is a disagreement, with the
/// kernel's evidence, and exit 1.
#[test]
fn an_observed_outcome_outside_the_model_is_a_disagreement() {
    let text = std::fs::read_to_string(support::root().join(RESULTS)).expect("saved results");
    let line = text
        .lines()
        .position(|l| {
            l.contains("\"scenario\":\"case3-after-freeze\"")
                && l.contains("\"fs\":\"ext4\"")
                && l.contains("\"frozen_write\"")
        })
        .expect("a case3 run on ext4");
    let tampered: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                l.replace(
                    "\"frozen_write\":false,\"changed_blocks\":[]",
                    "\"frozen_write\":true,\"changed_blocks\":[4242]",
                )
            } else {
                l.to_string()
            }
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("results.jsonl");
    std::fs::write(&path, tampered.join("\n")).expect("write");
    let out = freezefuzz()
        .args(["conform", "--scenario", "case3-after-freeze", "--results"])
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("DISAGREE")
            && stdout.contains("frozen-write, which the model never reaches")
            && stdout.contains("4242"),
        "{stdout}"
    );
}

#[test]
fn conform_rejects_an_unknown_filesystem() {
    let out = freezefuzz()
        .args(["conform", "--fs", "ext4,zfs", "--results", RESULTS])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("zfs"));
}

/// A freeze or thaw failing with anything but the nesting rule's EBUSY /
/// EINVAL or a failed freeze's EIO is a disagreement; so is a freeze that
/// fails with EIO where the model's never does.
#[test]
fn an_ioctl_error_outside_the_nesting_rule_is_a_disagreement() {
    let text = std::fs::read_to_string(support::root().join(RESULTS)).expect("saved results");
    for (errno, says) in [
        (
            1,
            "conf-nesting on xfs: run 0: freeze failed with errno 1, outside the nesting rule",
        ),
        (
            5,
            "conf-nesting on xfs: run 0: freeze refused (EBUSY) false, freeze failed (EIO) true, thaw refused (EINVAL) true, which no run of the model ends with",
        ),
    ] {
        let tampered: Vec<String> = text
            .lines()
            .map(|l| {
                if l.contains("\"scenario\":\"conf-nesting\"") && l.contains("\"fs\":\"xfs\"") {
                    l.replace("\"errno\":16", &format!("\"errno\":{errno}"))
                } else {
                    l.to_string()
                }
            })
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("results.jsonl");
        std::fs::write(&path, tampered.join("\n")).expect("write");
        let out = freezefuzz()
            .args(["conform", "--scenario", "conf-nesting", "--results"])
            .arg(&path)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(says), "errno {errno}: {stdout}");
    }
}

/// The probe's safety check: it refuses a folder without the driver's
/// marker, and a marked folder that is not a loop-mounted image, before it
/// could freeze anything (skipped, and said so, without a C compiler).
#[test]
fn the_probe_refuses_anything_but_its_own_scratch_filesystem() {
    let Some(cc) = cc() else {
        eprintln!("no cc on PATH: the probe's safety check was not run");
        return;
    };
    let ws = conformance_workspace();
    let files =
        repro::generate(ws.scenario("case3-after-freeze").expect("shipped"), &options()).expect("realisable");
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("probe.c");
    std::fs::write(&source, &files.probe_c).expect("write");
    let probe = dir.path().join("probe");
    let built = StdCommand::new(&cc)
        .args(["-O2", "-pthread", "-o"])
        .arg(&probe)
        .arg(&source)
        .status()
        .expect("cc runs");
    assert!(built.success());
    let scratch = dir.path().join("mnt");
    std::fs::create_dir(&scratch).expect("mkdir");
    let image = dir.path().join("image");
    std::fs::write(&image, b"").expect("image");
    let run = || {
        let out = StdCommand::new(&probe)
            .arg("--mount")
            .arg(&scratch)
            .arg("--image")
            .arg(&image)
            .output()
            .expect("the probe runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no .freezefuzz-scratch marker"), "{stderr}");
    std::fs::write(scratch.join(".freezefuzz-scratch"), b"").expect("marker");
    let (code, stderr) = run();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not mounted from a loop device"), "{stderr}");
    // An io-error probe says it needs a device-mapper device, refuses to
    // run without one, and accepts only /dev/mapper/NAME over the loop device.
    let io = repro::generate(
        ws.scenario("conf-io-error-racing").expect("conformance"),
        &options(),
    )
    .expect("realisable");
    std::fs::write(&source, &io.probe_c).expect("write");
    let io_probe = dir.path().join("probe-io");
    let built = StdCommand::new(&cc)
        .args(["-O2", "-pthread", "-o"])
        .arg(&io_probe)
        .arg(&source)
        .status()
        .expect("cc runs");
    assert!(built.success());
    let needs_dm = |p: &PathBuf| {
        StdCommand::new(p)
            .arg("--needs-dm")
            .status()
            .expect("runs")
            .code()
    };
    assert_eq!((needs_dm(&io_probe), needs_dm(&probe)), (Some(0), Some(1)));
    for (dm, says) in [
        (None, "run it on a filesystem on a device-mapper device"),
        (Some("ff-test"), "is not mounted from /dev/mapper/ff-test"),
    ] {
        let mut cmd = StdCommand::new(&io_probe);
        cmd.arg("--mount").arg(&scratch).arg("--image").arg(&image);
        if let Some(name) = dm {
            cmd.args(["--dm", name]);
        }
        let out = cmd.output().expect("the probe runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
