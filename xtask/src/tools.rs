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
        eprintln!("setup: {binary} not found: installing Debian's qemu-system-arm (has qemu-system-arm and qemu-system-aarch64; runs the QEMU boards)");
        apt_install(&["qemu-system-arm"])?;
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

/// The embedded targets `rust-toolchain.toml` lists (its `targets = [ … ]` array).
fn toolchain_targets(root: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(root.join("rust-toolchain.toml")) else {
        return Vec::new();
    };
    let Some(start) = text.find("targets") else {
        return Vec::new();
    };
    let rest = &text[start..];
    let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else {
        return Vec::new();
    };
    if close < open {
        return Vec::new();
    }
    rest[open + 1..close]
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `rustc` of the toolchain xtask's `cargo` belongs to (beside it), else `rustc`.
fn toolchain_rustc(ctx: &Ctx) -> PathBuf {
    let beside = Path::new(&ctx.cargo).with_file_name("rustc");
    if beside.is_file() {
        beside
    } else {
        PathBuf::from("rustc")
    }
}

/// The sysroot of that toolchain (`rustc --print sysroot`).
fn sysroot(ctx: &Ctx) -> Option<PathBuf> {
    let out = Command::new(toolchain_rustc(ctx))
        .args(["--print", "sysroot"])
        .current_dir(&ctx.root)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// Makes sure every target of `rust-toolchain.toml` is installed for the toolchain that runs
/// xtask: current rustup does not add them to a toolchain that is already installed, so xtask
/// does (`rustup target add`), or says the exact command when it cannot.
pub fn ensure_targets(ctx: &Ctx) -> Result<(), String> {
    let wanted = toolchain_targets(&ctx.root);
    let Some(sysroot) = sysroot(ctx) else {
        return Err(
            "cannot run `rustc --print sysroot`: is Rust installed (https://rustup.rs)?".into(),
        );
    };
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|t| !sysroot.join("lib/rustlib").join(t).join("lib").is_dir())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // The toolchain's name is its sysroot folder under rustup's `toolchains/`.
    let toolchain = sysroot
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
    let command = format!(
        "rustup target add --toolchain {toolchain} {}",
        names.join(" ")
    );
    eprintln!(
        "setup: installing the embedded Rust targets of rust-toolchain.toml that are missing ({}): {command}",
        names.join(", ")
    );
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", "--toolchain", &toolchain])
        .args(&names)
        .current_dir(&ctx.root);
    run(&mut cmd).map_err(|e| format!("{e}\ninstall them yourself with: {command}"))?;
    let still: Vec<&str> = names
        .iter()
        .copied()
        .filter(|t| !sysroot.join("lib/rustlib").join(t).join("lib").is_dir())
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "targets still missing after rustup target add: {}\nrun: {command}",
            still.join(", ")
        ))
    }
}

/// Makes sure `cargo fmt` and `cargo clippy` work (rustup components `rustfmt`, `clippy`).
pub fn ensure_components(ctx: &Ctx) -> Result<(), String> {
    let mut missing = Vec::new();
    for (sub, comp) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        let ok = Command::new(&ctx.cargo)
            .args([sub, "--version"])
            .current_dir(&ctx.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing.push(comp);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("rustup component add {}", missing.join(" "));
    eprintln!("setup: installing missing Rust components for fmt/clippy: {command}");
    run(Command::new("rustup")
        .args(["component", "add"])
        .args(&missing)
        .current_dir(&ctx.root))
    .map_err(|e| format!("{e}\ninstall them yourself with: {command}"))
}

/// Whether a C compiler is on PATH (for the QEMU instruction-count plugin); as root on Debian
/// it installs `gcc`, otherwise it warns with the command (counts are then reported as 0).
pub fn ensure_cc() {
    let have = ["cc", "gcc", "clang"]
        .iter()
        .any(|c| works(Path::new(c), "--version"));
    if have {
        return;
    }
    if Path::new("/etc/debian_version").exists() && is_root() {
        eprintln!("setup: no C compiler: installing Debian's gcc (builds the QEMU instruction-count plugin)");
        if apt_install(&["gcc", "libc6-dev"]).is_ok() {
            return;
        }
    }
    eprintln!(
        "warning: no C compiler for the QEMU instruction-count plugin; install one \
         (Debian/Ubuntu: sudo apt-get install gcc) to get exact instruction counts"
    );
}

/// `apt-get install -y --no-install-recommends PKGS`, with an `apt-get update` first when the
/// package lists are empty or the install fails.
fn apt_install(pkgs: &[&str]) -> Result<(), String> {
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        run(Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        install()?;
    }
    Ok(())
}

/// Everything the commands need from outside the repository, checked before the first build:
/// Rust components and embedded targets, and (for the QEMU commands) QEMU, a C compiler and
/// `defmt-print`. Installs what is missing, one line each saying what and why.
pub fn setup(ctx: &Ctx, qemu: bool) -> Result<(), String> {
    ensure_components(ctx)?;
    ensure_targets(ctx)?;
    if qemu {
        ensure_qemu("qemu-system-arm")?;
        ensure_qemu("qemu-system-aarch64")?;
        ensure_cc();
        ensure_defmt_print(ctx)?;
    }
    Ok(())
}
