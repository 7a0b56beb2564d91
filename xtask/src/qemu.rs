//! Running a firmware ELF in QEMU, decoding its defmt log and reading its RESULT lines.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::boards::{Board, Kind};
use crate::tools;

/// One `RESULT` line, parsed.
#[derive(Clone)]
pub struct ResultLine {
    pub fields: Vec<(String, String)>,
}

/// The field order of the RESULT line (the format scripts rely on).
pub const RESULT_KEYS: [&str; 8] = [
    "board",
    "arch",
    "dtype",
    "ok",
    "instructions",
    "arena_bytes",
    "stack_bytes",
    "flash_bytes",
];

/// `key=value` pairs of a line from its first token on.
pub fn parse_kv(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl ResultLine {
    pub fn parse(line: &str) -> Option<ResultLine> {
        let at = line.find("RESULT board=")?;
        let fields = parse_kv(&line[at + "RESULT".len()..]);
        let has_all = RESULT_KEYS
            .iter()
            .all(|k| fields.iter().any(|(f, _)| f == k));
        has_all.then_some(ResultLine { fields })
    }
    pub fn get(&self, k: &str) -> &str {
        self.fields
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    pub fn num(&self, k: &str) -> u64 {
        self.get(k).parse().unwrap_or(0)
    }
    pub fn set(&mut self, k: &str, v: String) {
        if let Some(f) = self.fields.iter_mut().find(|(f, _)| f == k) {
            f.1 = v;
        }
    }
    pub fn ok(&self) -> bool {
        self.get("ok") == "true"
    }
    /// The line, exactly in the firmware's format.
    pub fn render(&self) -> String {
        let mut s = String::from("RESULT");
        for k in RESULT_KEYS {
            s.push_str(&format!(" {k}={}", self.get(k)));
        }
        s
    }
}

/// Everything a QEMU run produced.
pub struct Run {
    /// QEMU's exit status (`None`: killed by the timeout or a signal).
    pub status: Option<i32>,
    pub timed_out: bool,
    pub wall: Duration,
    /// Decoded log lines (`LEVEL message`, or the bare text of `println!`).
    pub log: Vec<String>,
    /// RESULT lines, with `instructions` from the plugin where available.
    pub results: Vec<ResultLine>,
    /// `SKIP` lines (models the board could not run), from `SKIP` on.
    pub skips: Vec<String>,
    /// `METRIC` lines, as key/value maps, in order.
    pub metrics: Vec<BTreeMap<String, String>>,
    /// QEMU's stderr and defmt-print's complaints.
    pub stderr: String,
    /// Problems found while reading the run (missing markers, ...).
    pub problems: Vec<String>,
    /// Notes (e.g. the in-guest PMU count next to the plugin's).
    pub notes: Vec<String>,
}

impl Run {
    /// QEMU exited 0, at least one RESULT, all ok=true, nothing odd.
    pub fn passed(&self) -> bool {
        self.status == Some(0)
            && !self.results.is_empty()
            && self.results.iter().all(ResultLine::ok)
            && self.problems.is_empty()
    }
}

/// Runs `elf` for `board` in QEMU (with the `insn_mark` plugin if given) and decodes its log.
pub fn run(
    board: &Board,
    elf: &Path,
    work: &Path,
    timeout: Duration,
    defmt_print: &Path,
    plugin: Option<&Path>,
) -> Result<Run, String> {
    let Kind::Qemu { binary, machine } = board.kind else {
        return Err(format!("board {} does not run in QEMU", board.name));
    };
    let qemu = tools::ensure_qemu(binary)?;
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let frames = work.join("defmt.bin");
    let marks = work.join("marks.log");
    let _ = std::fs::remove_file(&marks);
    let mut cmd = Command::new(qemu);
    cmd.args(machine)
        .args([
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
        ])
        // One instruction = 1 ns of virtual time: deterministic, and the A53's PMU counts
        // INST_RETIRED exactly.
        .args(["-icount", "shift=0,align=off,sleep=off"]);
    if let Some(p) = plugin {
        cmd.arg("-plugin")
            .arg(p)
            .args(["-d", "plugin", "-D"])
            .arg(&marks);
    }
    cmd.arg("-kernel").arg(elf);
    let out = File::create(&frames).map_err(|e| format!("{}: {e}", frames.display()))?;
    let err_path = work.join("qemu.stderr");
    let err = File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
    eprintln!("+ {}", tools::show(&cmd));
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) if start.elapsed() > timeout => {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for QEMU: {e}")),
        }
    };
    let wall = start.elapsed();
    let mut stderr = std::fs::read_to_string(&err_path).unwrap_or_default();

    // Decode the defmt frames.
    let decoded = Command::new(defmt_print)
        .arg("-e")
        .arg(elf)
        .args(["--log-format", "{L} {s}"])
        .stdin(File::open(&frames).map_err(|e| format!("{}: {e}", frames.display()))?)
        .output()
        .map_err(|e| format!("cannot run defmt-print: {e}"))?;
    stderr.push_str(&String::from_utf8_lossy(&decoded.stderr));
    let log: Vec<String> = String::from_utf8_lossy(&decoded.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect();

    let mut results: Vec<ResultLine> = log.iter().filter_map(|l| ResultLine::parse(l)).collect();
    let skips = log
        .iter()
        .filter_map(|l| l.find("SKIP board=").map(|at| l[at..].to_string()))
        .collect();
    let metrics = log
        .iter()
        .filter_map(|l| l.find("METRIC ").map(|at| &l[at + 7..]))
        .map(|l| parse_kv(l).into_iter().collect())
        .collect();

    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if plugin.is_some() {
        let deltas = read_marks(&marks);
        if deltas.len() != 2 * results.len() {
            problems.push(format!(
                "{} instruction markers for {} RESULT lines (expected two per RESULT)",
                deltas.len(),
                results.len()
            ));
        } else {
            let mut worst: Option<i64> = None;
            for (k, r) in results.iter_mut().enumerate() {
                let exact = deltas[2 * k + 1];
                let guest = r.num("instructions");
                if guest != 0 {
                    // In-guest PMU count (AArch64): a cross-check of the plugin.
                    let d = exact as i64 - guest as i64;
                    if worst.is_none_or(|w| d.abs() > w.abs()) {
                        worst = Some(d);
                    }
                }
                r.set("instructions", exact.to_string());
            }
            if let Some(d) = worst {
                if d.abs() <= 16 {
                    notes.push(format!(
                        "in-guest PMU instruction counts agree with the plugin's (largest difference {d}: the counter reads)"
                    ));
                } else {
                    problems.push(format!(
                        "in-guest PMU count and plugin count differ by up to {d} instructions"
                    ));
                }
            }
        }
    }
    Ok(Run {
        status,
        timed_out,
        wall,
        log,
        results,
        skips,
        metrics,
        stderr,
        problems,
        notes,
    })
}

/// The `delta=` of every `insn-mark` line of the plugin log.
fn read_marks(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("insn-mark "))
        .filter_map(|l| {
            parse_kv(l)
                .into_iter()
                .find(|(k, _)| k == "delta")
                .and_then(|(_, v)| v.parse().ok())
        })
        .collect()
}

/// The path of the log directory of `board` under `work`.
pub fn work_dir(base: &Path, board: &Board) -> PathBuf {
    base.join("qemu").join(board.name)
}
