//! Host tools xtask needs: cargo, QEMU, defmt-print, a C compiler for the QEMU plugin, and
//! objcopy (replaced by [`crate::elf::Elf::to_binary`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Ctx;

/// Runs `cmd`, echoing it; error if it fails.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("+ {}", show(cmd));
    let st = cmd
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", show(cmd)))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({st})", show(cmd)))
    }
}

/// The command line of `cmd`, for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Whether `program` starts (`--version` or `-V`).
fn works(program: &Path, flag: &str) -> bool {
    Command::new(program)
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure `qemu-system-arm` / `qemu-system-aarch64` exists: as root on Debian it installs
/// Debian's `qemu-system-arm` package (which has both); otherwise it says what to install.
pub fn ensure_qemu(binary: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(binary);
    if works(&p, "--version") {
        return Ok(p);
    }
    let debian = Path::new("/etc/debian_version").exists();
    if debian && is_root() {
        eprintln!("{binary} not found: installing Debian's qemu-system-arm (has qemu-system-arm and qemu-system-aarch64)");
        let install = || {
            run(Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "qemu-system-arm",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        if install().is_err() {
            run(Command::new("apt-get").arg("update"))?;
            install()?;
        }
        if works(&p, "--version") {
            return Ok(p);
        }
    }
    Err(format!(
        "{binary} is not installed. Install QEMU's Arm system emulators (7.2 or newer), e.g.\n  \
         Debian/Ubuntu: sudo apt-get install qemu-system-arm\n  \
         Fedora: sudo dnf install qemu-system-arm qemu-system-aarch64\n  \
         macOS (Homebrew): brew install qemu"
    ))
}

/// Finds `defmt-print`, installing it with `cargo install defmt-print --locked` if absent.
pub fn ensure_defmt_print(ctx: &Ctx) -> Result<PathBuf, String> {
    let mut candidates = vec![PathBuf::from("defmt-print")];
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(PathBuf::from(home).join("bin/defmt-print"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/defmt-print"));
    }
    for c in &candidates {
        if works(c, "-V") {
            return Ok(c.clone());
        }
    }
    eprintln!("defmt-print not found: installing it (cargo install defmt-print --locked; about 2 minutes)");
    run(Command::new(&ctx.cargo).args(["install", "defmt-print", "--locked"])).map_err(|e| {
        format!("{e}\ninstall it yourself with: cargo install defmt-print --locked")
    })?;
    for c in &candidates {
        if works(c, "-V") {
            return Ok(c.clone());
        }
    }
    Err("defmt-print was installed but is not on PATH: add ~/.cargo/bin to PATH".into())
}

/// Builds `tools/qemu-insn/insn_mark.c` into `target/xtask/libinsn_mark.so` (once). `None`
/// (with a warning) when there is no C compiler: runs then have no exact instruction counts on
/// the Cortex-M boards.
pub fn insn_plugin(ctx: &Ctx) -> Option<PathBuf> {
    let src = ctx.root.join("tools/qemu-insn/insn_mark.c");
    let out = ctx.work_dir().join("libinsn_mark.so");
    let fresh = |o: &Path| -> bool {
        match (std::fs::metadata(o), std::fs::metadata(&src)) {
            (Ok(o), Ok(s)) => match (o.modified(), s.modified()) {
                (Ok(om), Ok(sm)) => om >= sm,
                _ => false,
            },
            _ => false,
        }
    };
    if fresh(&out) {
        return Some(out);
    }
    let _ = std::fs::create_dir_all(ctx.work_dir());
    for cc in [
        std::env::var("CC").unwrap_or_default().as_str(),
        "cc",
        "gcc",
        "clang",
    ] {
        if cc.is_empty() {
            continue;
        }
        let ok = Command::new(cc)
            .args(["-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(out);
        }
    }
    eprintln!(
        "warning: no C compiler (cc/gcc/clang) to build the QEMU instruction-count plugin \
         {}; Cortex-M RESULT lines will report instructions=0. Install gcc to get exact counts.",
        src.display()
    );
    None
}
