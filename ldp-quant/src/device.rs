//! The board as a device in the loop: the host side of the serve firmware's protocol
//! (`firmware/src/serve.rs`, `firmware/README.md` "Serve mode").
//!
//! A [`Device`] is a byte link to a board running the serve firmware: a QEMU board started here
//! (its UART on a Unix socket) or a serial port (`serial:/dev/ttyACM0[@115200]`). On it:
//! [`Device::hello`] (capabilities), [`Device::upload`] (a blob, validated on the device),
//! [`Device::run`] (one input → output, instruction count, RAM). [`run_cli`] is
//! `ldp-quant run --device`.
//!
//! Frames, both ways: `"LDPF"`, type u8, flags u8 (0), seq u16 LE, payload length u32 LE,
//! CRC-32 of these 12 bytes (u32 LE), payload, CRC-32 of the payload (u32 LE). CRC-32 is
//! zlib's. A reply echoes the request's seq; [`SEQ_NONE`] marks an error the device could not
//! attribute (a garbled header).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use ldp_core::stream::crc32_update;
use ldp_core::Model;

/// Protocol version this client speaks.
pub const VERSION: u16 = 1;
/// Frame magic.
pub const MAGIC: [u8; 4] = *b"LDPF";
/// Header bytes.
pub const HEADER: usize = 16;
/// The seq of replies the device cannot attribute to a request.
pub const SEQ_NONE: u16 = 0xFFFF;

/// Frame types.
pub mod ty {
    /// Request: capabilities.
    pub const HELLO: u8 = 0x01;
    /// Request: store a model blob.
    pub const UPLOAD: u8 = 0x02;
    /// Request: run the stored model on one input (f32 LE, channels-last).
    pub const RUN: u8 = 0x03;
    /// Reply to HELLO.
    pub const HELLO_OK: u8 = 0x81;
    /// Reply to UPLOAD.
    pub const UPLOAD_OK: u8 = 0x82;
    /// Reply to RUN: metrics and the output.
    pub const OUTPUT: u8 = 0x83;
    /// Reply: error code and message.
    pub const ERROR: u8 = 0xEE;
}

/// Error codes of ERROR frames.
pub mod code {
    /// The header's CRC is wrong.
    pub const HEADER_CRC: u16 = 1;
    /// The payload's CRC is wrong.
    pub const PAYLOAD_CRC: u16 = 2;
    /// Unknown frame type.
    pub const UNKNOWN_TYPE: u16 = 3;
    /// Does not fit the device's memory.
    pub const TOO_LARGE: u16 = 4;
    /// The frame's bytes stopped coming.
    pub const TRUNCATED: u16 = 5;
    /// `Model::parse` refused the blob.
    pub const BAD_BLOB: u16 = 6;
    /// RUN before a successful UPLOAD.
    pub const NO_MODEL: u16 = 7;
    /// Wrong payload length for the type (or the model's input).
    pub const BAD_LENGTH: u16 = 8;
    /// The forward pass returned an error.
    pub const FORWARD: u16 = 9;
}

/// Largest reply payload accepted (a sanity bound on a length read from the link).
const MAX_REPLY: usize = 1 << 30;

/// One frame as bytes.
pub fn encode(ty: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER + payload.len() + 4);
    f.extend_from_slice(&header(ty, seq, payload.len()));
    f.extend_from_slice(payload);
    f.extend_from_slice(&crc32_update(0, payload).to_le_bytes());
    f
}

/// The 16 header bytes of a frame.
pub fn header(ty: u8, seq: u16, len: usize) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = ty;
    h[6..8].copy_from_slice(&seq.to_le_bytes());
    h[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    let c = crc32_update(0, &h[..12]);
    h[12..16].copy_from_slice(&c.to_le_bytes());
    h
}

/// A reply frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Frame type.
    pub ty: u8,
    /// Sequence number.
    pub seq: u16,
    /// Payload.
    pub payload: Vec<u8>,
}

/// An ERROR frame from the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError {
    /// See [`code`].
    pub code: u16,
    /// The device's message.
    pub message: String,
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "device error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for DeviceError {}

impl Frame {
    /// The ERROR frame's code and message, if this is one.
    pub fn error(&self) -> Option<DeviceError> {
        if self.ty != ty::ERROR || self.payload.len() < 4 {
            return None;
        }
        Some(DeviceError {
            code: u16::from_le_bytes([self.payload[0], self.payload[1]]),
            message: String::from_utf8_lossy(&self.payload[4..]).into_owned(),
        })
    }
}

/// HELLO's answer.
#[derive(Debug, Clone)]
pub struct Hello {
    /// Protocol version of the firmware.
    pub version: u16,
    /// Bytes of the device's pool (blob + scratch + output + input must fit).
    pub pool_bytes: u32,
    /// Flash reserved for blobs (0: blobs live in RAM).
    pub flash_free: u32,
    /// `key=value` capabilities: board, isa, kernels, dtypes, counter, model.
    pub info: String,
}

impl Hello {
    /// The value of `key` in [`Hello::info`].
    pub fn get(&self, key: &str) -> Option<&str> {
        self.info
            .split_whitespace()
            .filter_map(|t| t.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// UPLOAD's answer.
#[derive(Debug, Clone, Copy)]
pub struct Uploaded {
    /// Blob bytes stored.
    pub blob_bytes: u32,
    /// `Model::scratch_bytes()`.
    pub scratch_bytes: u32,
    /// f32 elements of one input.
    pub input_len: u32,
    /// f32 elements of one output.
    pub output_len: u32,
    /// Pool bytes a run takes (blob, scratch, output, input, 16-aligned).
    pub ram_bytes: u32,
}

/// RUN's answer.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The output (f32, channels-last).
    pub output: Vec<f32>,
    /// Instructions of the forward pass: the QEMU plugin's exact count where this client
    /// started QEMU with it, else the device's own counter (A53 PMU); 0 if neither.
    pub instructions: u64,
    /// Where [`RunOutput::instructions`] comes from: `plugin`, `device` or `none`.
    pub counted_by: &'static str,
    /// Core cycles where the board has a cycle counter (real boards), else 0.
    pub cycles: u64,
    /// Scratch arena bytes of this run.
    pub arena_bytes: u32,
    /// Stack high-water mark of this run.
    pub stack_bytes: u32,
    /// Pool bytes this run took (blob, scratch, output, input).
    pub ram_bytes: u32,
}

/// A bidirectional byte link.
trait Link: Read + Write + Send {}
impl<T: Read + Write + Send> Link for T {}

/// QEMU started by this client.
struct Qemu {
    child: Child,
    work: PathBuf,
    socket: PathBuf,
    marks: Option<PathBuf>,
    marks_seen: usize,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("LDP_DEVICE_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

/// A board running the serve firmware.
pub struct Device {
    link: Box<dyn Link>,
    /// Whether `read` returning 0 means "no data yet" (tty with a read timeout), not EOF.
    zero_is_timeout: bool,
    qemu: Option<Qemu>,
    seq: u16,
    /// Bytes received but not yet consumed.
    rx: Vec<u8>,
    /// Deadline for one reply after the request is sent.
    pub reply_timeout: Duration,
    /// Show a progress bar for payloads above this many bytes (on a terminal).
    pub progress_above: usize,
}

/// QEMU binary and machine arguments of the boards with a serve mode.
pub fn qemu_machine(board: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match board {
        "qemu-m4" => ("qemu-system-arm", &["-M", "mps2-an386"]),
        "qemu-m7" => ("qemu-system-arm", &["-M", "mps2-an500"]),
        "qemu-m3" => ("qemu-system-arm", &["-M", "mps2-an385"]),
        "qemu-a53" => (
            "qemu-system-aarch64",
            &["-M", "virt", "-cpu", "cortex-a53", "-nic", "none"],
        ),
        "qemu-a76" => (
            "qemu-system-aarch64",
            &["-M", "virt", "-cpu", "cortex-a76", "-nic", "none"],
        ),
        _ => return None,
    })
}

/// The serve firmware ELF of `board`: `$LDP_SERVE_ELF`, else
/// `target/xtask/boards/<board>/serve.elf` under `$CARGO_TARGET_DIR` or the current directory
/// or one of its parents.
pub fn find_serve_elf(board: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("LDP_SERVE_ELF") {
        return Ok(PathBuf::from(p));
    }
    let rel = Path::new("xtask")
        .join("boards")
        .join(board)
        .join("serve.elf");
    let mut tried = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let p = PathBuf::from(t).join(&rel);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    let cwd = std::env::current_dir().context("current directory")?;
    for dir in cwd.ancestors() {
        let p = dir.join("target").join(&rel);
        if p.is_file() {
            return Ok(p);
        }
    }
    tried.push(cwd.join("target").join(&rel));
    bail!(
        "no serve firmware for {board} (looked for {}); build it with `cargo xtask build-serve --board {board}` in the repository, or set LDP_SERVE_ELF",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The instruction-count plugin next to the serve ELF (`target/xtask/libinsn_mark.so`, built
/// by xtask), or `$LDP_QEMU_PLUGIN`.
fn find_plugin(elf: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LDP_QEMU_PLUGIN") {
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let p = elf.parent()?.parent()?.parent()?.join("libinsn_mark.so");
    p.is_file().then_some(p)
}

fn unique_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "ldp-device-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Device {
    /// Opens `spec`: a QEMU board name (`qemu-m4`, `qemu-m7`, `qemu-m3`, `qemu-a53`,
    /// `qemu-a76`; starts QEMU with the serve firmware) or `serial:PATH[@BAUD]`.
    pub fn open(spec: &str) -> anyhow::Result<Device> {
        if let Some(rest) = spec.strip_prefix("serial:") {
            return Device::open_serial(rest);
        }
        if qemu_machine(spec).is_none() {
            bail!(
                "--device {spec}: expected a QEMU board (qemu-m4, qemu-m7, qemu-m3, qemu-a53, qemu-a76) or serial:/dev/ttyXXX[@baud]"
            );
        }
        let elf = find_serve_elf(spec)?;
        Device::start_qemu(spec, &elf)
    }

    /// Starts QEMU for `board` with `elf` (the serve firmware) and connects to its UART.
    pub fn start_qemu(board: &str, elf: &Path) -> anyhow::Result<Device> {
        let (binary, machine) =
            qemu_machine(board).ok_or_else(|| anyhow!("{board} has no serve mode"))?;
        if !elf.is_file() {
            bail!("{}: no such file", elf.display());
        }
        let work = unique_dir();
        std::fs::create_dir_all(&work).with_context(|| format!("{}", work.display()))?;
        let socket = work.join("uart.sock");
        let plugin = find_plugin(elf);
        let marks = plugin.as_ref().map(|_| work.join("marks.log"));
        let mut cmd = Command::new(binary);
        cmd.args(machine)
            .args(["-display", "none", "-monitor", "none"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=ldp0,path={},server=on,wait=on",
                socket.display()
            ))
            .args(["-serial", "chardev:ldp0"])
            .args(["-semihosting-config", "enable=on,target=native"])
            // Deterministic instruction counts (and an exact PMU count on the A53).
            .args(["-icount", "shift=0,align=off,sleep=off"]);
        if let (Some(p), Some(m)) = (&plugin, &marks) {
            cmd.arg("-plugin")
                .arg(p)
                .args(["-d", "plugin", "-D"])
                .arg(m);
        }
        cmd.arg("-kernel").arg(elf);
        // Semihosting output (the firmware's defmt log) and QEMU's messages go to files.
        let log = std::fs::File::create(work.join("defmt.bin"))?;
        let err = std::fs::File::create(work.join("qemu.stderr"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .with_context(|| {
                format!("cannot start {binary} (install QEMU: Debian package qemu-system-arm)")
            })?;
        let mut qemu = Qemu {
            child,
            work,
            socket,
            marks,
            marks_seen: 0,
        };
        let stream = connect(&mut qemu)?;
        Ok(Device {
            link: Box::new(stream),
            zero_is_timeout: false,
            qemu: Some(qemu),
            seq: 0,
            rx: Vec::new(),
            reply_timeout: Duration::from_secs(600),
            progress_above: 256 << 10,
        })
    }

    fn open_serial(rest: &str) -> anyhow::Result<Device> {
        let (path, baud) = match rest.rsplit_once('@') {
            Some((p, b)) => (
                p,
                b.parse::<u32>()
                    .map_err(|_| anyhow!("serial:{rest}: `{b}` is not a baud rate"))?,
            ),
            None => (rest, 115_200),
        };
        // Raw 8N1, no echo; a read returns after 0.5 s without data (VMIN 0, VTIME 5).
        let st = Command::new("stty")
            .args([
                "-F",
                path,
                &baud.to_string(),
                "raw",
                "-echo",
                "min",
                "0",
                "time",
                "5",
            ])
            .status()
            .with_context(|| "cannot run stty to set up the serial port")?;
        if !st.success() {
            bail!("stty -F {path} {baud} raw failed (is the port there, and yours to open?)");
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {path}"))?;
        Ok(Device {
            link: Box::new(f),
            zero_is_timeout: true,
            qemu: None,
            seq: 0,
            rx: Vec::new(),
            reply_timeout: Duration::from_secs(600),
            progress_above: 32 << 10,
        })
    }

    /// For QEMU devices: closes the link and connects again (QEMU's socket server accepts a new
    /// connection). What the device does with a frame cut short: see `firmware/README.md`.
    pub fn reconnect(&mut self) -> anyhow::Result<()> {
        let qemu = self
            .qemu
            .as_mut()
            .ok_or_else(|| anyhow!("reconnect: only for QEMU devices"))?;
        // Drop the old stream first (closes the socket).
        self.link = Box::new(empty::EmptyLink);
        let stream = connect(qemu)?;
        self.link = Box::new(stream);
        self.rx.clear();
        Ok(())
    }

    /// The next sequence number (never [`SEQ_NONE`]).
    fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == SEQ_NONE {
            self.seq = 1;
        }
        self.seq
    }

    /// Writes raw bytes to the link (tests: corrupted and truncated frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.link
            .write_all(bytes)
            .context("writing to the device")?;
        self.link.flush().context("writing to the device")
    }

    /// Sends a request frame (with a progress bar for long payloads) and returns its seq.
    pub fn send(&mut self, ty: u8, payload: &[u8]) -> anyhow::Result<u16> {
        let seq = self.next_seq();
        self.link
            .write_all(&header(ty, seq, payload.len()))
            .context("writing to the device")?;
        let pb = if payload.len() > self.progress_above {
            let what = match ty {
                ty::UPLOAD => "upload",
                ty::RUN => "input",
                _ => "send",
            };
            Some(crate::cli::progress(payload.len(), what))
        } else {
            None
        };
        for chunk in payload.chunks(16 << 10) {
            self.link
                .write_all(chunk)
                .context("writing to the device")?;
            if let Some(pb) = &pb {
                pb.inc(chunk.len() as u64);
            }
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        self.link
            .write_all(&crc32_update(0, payload).to_le_bytes())
            .context("writing to the device")?;
        self.link.flush().context("writing to the device")?;
        Ok(seq)
    }

    fn fill(&mut self, n: usize, deadline: Instant) -> anyhow::Result<()> {
        let mut buf = [0u8; 64 << 10];
        while self.rx.len() < n {
            if Instant::now() > deadline {
                bail!(
                    "no reply from the device within {:.0} s{}",
                    self.reply_timeout.as_secs_f64(),
                    self.qemu_note()
                );
            }
            if let Some(q) = self.qemu.as_mut() {
                if let Ok(Some(st)) = q.child.try_wait() {
                    bail!(
                        "QEMU exited ({st}) while waiting for a reply{}",
                        self.qemu_note()
                    );
                }
            }
            match self.link.read(&mut buf) {
                Ok(0) if self.zero_is_timeout => {}
                Ok(0) => bail!("the device closed the link{}", self.qemu_note()),
                Ok(k) => self.rx.extend_from_slice(&buf[..k]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e).context("reading from the device"),
            }
        }
        Ok(())
    }

    fn qemu_note(&self) -> String {
        match &self.qemu {
            Some(q) => {
                let err = std::fs::read_to_string(q.work.join("qemu.stderr")).unwrap_or_default();
                let err: Vec<&str> = err
                    .lines()
                    .filter(|l| !l.contains("waiting for connection"))
                    .collect();
                if err.is_empty() {
                    String::new()
                } else {
                    format!(" (QEMU: {})", err.join("; "))
                }
            }
            None => String::new(),
        }
    }

    /// Reads the next well-formed frame (garbage before a magic and frames whose header CRC
    /// fails are skipped; a bad payload CRC is an error).
    pub fn recv_frame(&mut self, timeout: Duration) -> anyhow::Result<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            self.fill(HEADER, deadline)?;
            let Some(at) = self.rx.windows(4).position(|w| w == MAGIC) else {
                let keep = self.rx.len().saturating_sub(3);
                self.rx.drain(..keep);
                self.fill(HEADER, deadline)?;
                continue;
            };
            self.rx.drain(..at);
            self.fill(HEADER, deadline)?;
            let h = &self.rx[..HEADER];
            let hc = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
            if crc32_update(0, &h[..12]) != hc {
                self.rx.drain(..1);
                continue;
            }
            let ty = h[4];
            let seq = u16::from_le_bytes([h[6], h[7]]);
            let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
            if len > MAX_REPLY {
                bail!("the device announced a {len}-byte reply: not believable");
            }
            self.fill(HEADER + len + 4, deadline)?;
            let payload = self.rx[HEADER..HEADER + len].to_vec();
            let c = &self.rx[HEADER + len..HEADER + len + 4];
            let want = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            self.rx.drain(..HEADER + len + 4);
            if crc32_update(0, &payload) != want {
                bail!("reply CRC mismatch (type {ty:#04x}, {len} bytes): the link corrupted it");
            }
            return Ok(Frame { ty, seq, payload });
        }
    }

    /// Reads the reply to request `seq` (stale replies to earlier requests are dropped; an
    /// unattributed error, seq [`SEQ_NONE`], is returned as the answer).
    pub fn recv_reply(&mut self, seq: u16) -> anyhow::Result<Frame> {
        loop {
            let f = self.recv_frame(self.reply_timeout)?;
            if f.seq == seq || f.seq == SEQ_NONE {
                return Ok(f);
            }
        }
    }

    fn request(&mut self, ty: u8, payload: &[u8], want: u8) -> anyhow::Result<Frame> {
        let seq = self.send(ty, payload)?;
        let f = self.recv_reply(seq)?;
        if let Some(e) = f.error() {
            return Err(e.into());
        }
        if f.ty != want {
            bail!("unexpected reply type {:#04x} (wanted {want:#04x})", f.ty);
        }
        Ok(f)
    }

    /// HELLO; start with it after every (re)connect. A frame cut short before (a link closed
    /// mid-transfer) may still be pending on the device: then the HELLO bytes complete it, or
    /// the device abandons it after its receive timeout. Either way an ERROR frame (under any
    /// seq) comes back instead of the HELLO reply, and HELLO is sent again (up to twice).
    pub fn hello(&mut self) -> anyhow::Result<Hello> {
        let mut attempts = 0;
        let f = 'outer: loop {
            attempts += 1;
            let seq = self.send(ty::HELLO, &[])?;
            loop {
                let f = self.recv_frame(self.reply_timeout)?;
                if f.seq == seq && f.ty == ty::HELLO_OK {
                    break 'outer f;
                }
                if let Some(e) = f.error() {
                    if attempts >= 3 {
                        return Err(e.into());
                    }
                    continue 'outer;
                }
            }
        };
        let p = &f.payload;
        if p.len() < 12 {
            bail!("HELLO reply too short ({} bytes)", p.len());
        }
        Ok(Hello {
            version: u16::from_le_bytes([p[0], p[1]]),
            pool_bytes: u32::from_le_bytes([p[4], p[5], p[6], p[7]]),
            flash_free: u32::from_le_bytes([p[8], p[9], p[10], p[11]]),
            info: String::from_utf8_lossy(&p[12..]).into_owned(),
        })
    }

    /// UPLOAD a blob; the device validates it (`Model::parse`) and checks that a run fits.
    pub fn upload(&mut self, blob: &[u8]) -> anyhow::Result<Uploaded> {
        let f = self.request(ty::UPLOAD, blob, ty::UPLOAD_OK)?;
        let p = &f.payload;
        if p.len() < 20 {
            bail!("UPLOAD reply too short ({} bytes)", p.len());
        }
        let u = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        Ok(Uploaded {
            blob_bytes: u(0),
            scratch_bytes: u(4),
            input_len: u(8),
            output_len: u(12),
            ram_bytes: u(16),
        })
    }

    /// RUN the uploaded model on `input` (channels-last f32).
    pub fn run(&mut self, input: &[f32]) -> anyhow::Result<RunOutput> {
        let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f = self.request(ty::RUN, &bytes, ty::OUTPUT)?;
        let p = &f.payload;
        if p.len() < 32 {
            bail!("OUTPUT reply too short ({} bytes)", p.len());
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&p[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        let n = u32_at(28) as usize;
        if p.len() != 32 + n * 4 {
            bail!(
                "OUTPUT reply: {} bytes for {n} values",
                p.len().saturating_sub(32)
            );
        }
        let output = p[32..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let guest = u64_at(0);
        let (instructions, counted_by) = match self.plugin_count()? {
            Some(n) => (n, "plugin"),
            None if guest != 0 => (guest, "device"),
            None => (0, "none"),
        };
        Ok(RunOutput {
            output,
            instructions,
            counted_by,
            cycles: u64_at(8),
            arena_bytes: u32_at(16),
            stack_bytes: u32_at(20),
            ram_bytes: u32_at(24),
        })
    }

    /// The plugin's count between the two markers of the last run (QEMU with the plugin).
    fn plugin_count(&mut self) -> anyhow::Result<Option<u64>> {
        let Some(q) = self.qemu.as_mut() else {
            return Ok(None);
        };
        let Some(marks) = &q.marks else {
            return Ok(None);
        };
        // The plugin writes through QEMU's log; give it a moment to reach the file.
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(marks).unwrap_or_default();
            let deltas: Vec<u64> = text
                .lines()
                .filter(|l| l.starts_with("insn-mark "))
                .filter_map(|l| {
                    l.split_whitespace()
                        .find_map(|t| t.strip_prefix("delta="))
                        .and_then(|v| v.parse().ok())
                })
                .collect();
            if deltas.len() >= q.marks_seen + 2 {
                let d = deltas[q.marks_seen + 1];
                q.marks_seen += 2;
                return Ok(Some(d));
            }
            if start.elapsed() > Duration::from_secs(5) {
                bail!(
                    "the instruction-count plugin logged {} markers, expected {}",
                    deltas.len(),
                    q.marks_seen + 2
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Connects to QEMU's UART socket (QEMU waits for the connection before it starts the guest).
fn connect(q: &mut Qemu) -> anyhow::Result<std::os::unix::net::UnixStream> {
    let start = Instant::now();
    loop {
        match std::os::unix::net::UnixStream::connect(&q.socket) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_millis(200)))?;
                return Ok(s);
            }
            Err(e) => {
                if let Ok(Some(st)) = q.child.try_wait() {
                    let err =
                        std::fs::read_to_string(q.work.join("qemu.stderr")).unwrap_or_default();
                    bail!(
                        "QEMU exited ({st}) before its UART was connected: {}",
                        err.trim()
                    );
                }
                if start.elapsed() > Duration::from_secs(20) {
                    return Err(e).context("cannot connect to QEMU's UART socket");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

mod empty {
    /// A link that reads nothing and swallows writes (placeholder while reconnecting).
    pub struct EmptyLink;
    impl std::io::Read for EmptyLink {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
    }
    impl std::io::Write for EmptyLink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

/// The bound on `‖y_device − y_host‖₂ / ‖y_host‖₂` for float blobs: 1e-6 for f32 (the same
/// kernels, only the summation order and FMA contraction differ); 1e-3 for f16, whose
/// activations are stored in f16: a last-bit difference of an f32 sum flips the rounding of
/// the stored f16 now and then, one f16 ulp (2⁻¹¹ ≈ 4.9e-4 relative) on that element (measured on
/// the golden f16 cases: 1e-8 .. 4.3e-4). On a device whose f16 kernels compute in f16
/// (FEAT_FP16, HELLO says `f16arith=yes`: qemu-a76) the host's f32-arithmetic run is not the
/// same computation; the bound is then the f16 models' accuracy bound, 5e-3 (measured 1.5e-3
/// on the golden V1 case). int8 is compared bit for bit.
pub fn float_bound(dtype: ldp_core::DType, device_f16_arith: bool) -> f64 {
    match dtype {
        ldp_core::DType::F16 if device_f16_arith => 5e-3,
        ldp_core::DType::F16 => 1e-3,
        _ => 1e-6,
    }
}

/// `ldp-quant run --device D`: uploads the blob once, runs every sample, prints the device's
/// counts and RAM, and with `compare` checks each output against the host's forward pass
/// (bit-identical for int8, [`float_bound`] for f32 and f16). Returns the outputs.
pub fn run_cli(
    spec: &str,
    blob: &[u8],
    model: &Model<'_>,
    samples: &[Vec<f32>],
    compare: bool,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut dev = Device::open(spec)?;
    let hello = dev.hello()?;
    if hello.version != VERSION {
        bail!(
            "the device speaks protocol {}, this ldp-quant {VERSION}: rebuild one of them",
            hello.version
        );
    }
    println!(
        "device {spec}: {} (protocol {}, {} bytes of RAM for models)",
        hello.info, hello.version, hello.pool_bytes
    );
    let needed = blob.len();
    if needed > hello.pool_bytes as usize {
        bail!(
            "does not fit: the blob needs {needed} bytes, the device has {}",
            hello.pool_bytes
        );
    }
    let t = Instant::now();
    let up = dev.upload(blob)?;
    println!(
        "uploaded {} bytes in {:.2} s: scratch {} B, a run takes {} of {} bytes",
        up.blob_bytes,
        t.elapsed().as_secs_f64(),
        up.scratch_bytes,
        up.ram_bytes,
        hello.pool_bytes
    );
    let host = if compare {
        Some(crate::cli::run_samples(model, samples, "host run")?)
    } else {
        None
    };
    let int8 = model.dtype() == ldp_core::DType::Int8;
    let bound = float_bound(model.dtype(), hello.get("f16arith") == Some("yes"));
    let mut outs = Vec::with_capacity(samples.len());
    let mut failures = 0usize;
    for (i, x) in samples.iter().enumerate() {
        let r = dev
            .run(x)
            .with_context(|| format!("sample {i} on {spec}"))?;
        let count = match r.counted_by {
            "none" => "instructions not measured".to_string(),
            by => format!("{} instructions ({by})", r.instructions),
        };
        let cycles = if r.cycles > 0 {
            format!(", {} cycles", r.cycles)
        } else {
            String::new()
        };
        let mut line = format!(
            "sample {i}: {count}{cycles}, RAM {} B (arena {} B) + stack {} B",
            r.ram_bytes, r.arena_bytes, r.stack_bytes
        );
        if let Some(h) = &host {
            let h = &h[i];
            if int8 {
                let diff = r
                    .output
                    .iter()
                    .zip(h)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count()
                    + r.output.len().abs_diff(h.len());
                line.push_str(&format!(
                    ", vs host: {diff} of {} values differ (bit-identity required)",
                    h.len()
                ));
                if diff != 0 {
                    failures += 1;
                }
            } else {
                let m = crate::metrics::compare(&r.output, h);
                let ok = r.output.len() == h.len() && m.rel_l2 <= bound;
                line.push_str(&format!(
                    ", vs host: rel L2 {:.2e}, max abs {:.2e} (bound {bound:.0e})",
                    m.rel_l2, m.max_abs
                ));
                if !ok {
                    failures += 1;
                }
            }
        }
        println!("{line}");
        outs.push(r.output);
    }
    if failures > 0 {
        bail!(
            "--compare: {failures} of {} sample(s) differ from the host run beyond the bound",
            samples.len()
        );
    }
    if compare {
        println!(
            "compare: all {} sample(s) match the host run ({})",
            samples.len(),
            if int8 {
                "bit for bit".to_string()
            } else {
                format!("rel L2 <= {bound:.0e}")
            }
        );
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link that replays `rx` and records what is written.
    struct Fake {
        rx: std::io::Cursor<Vec<u8>>,
        tx: Vec<u8>,
    }
    impl Read for Fake {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.rx.read(b)
        }
    }
    impl Write for Fake {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.tx.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn device(rx: Vec<u8>) -> Device {
        Device {
            link: Box::new(Fake {
                rx: std::io::Cursor::new(rx),
                tx: Vec::new(),
            }),
            zero_is_timeout: false,
            qemu: None,
            seq: 0,
            rx: Vec::new(),
            reply_timeout: Duration::from_secs(5),
            progress_above: usize::MAX,
        }
    }

    #[test]
    fn frame_layout() {
        let f = encode(ty::HELLO, 7, b"");
        assert_eq!(f.len(), HEADER + 4);
        assert_eq!(&f[..4], b"LDPF");
        assert_eq!(f[4], ty::HELLO);
        assert_eq!(u16::from_le_bytes([f[6], f[7]]), 7);
        assert_eq!(u32::from_le_bytes([f[8], f[9], f[10], f[11]]), 0);
        // zlib's CRC-32 of the 12 header bytes.
        assert_eq!(
            u32::from_le_bytes([f[12], f[13], f[14], f[15]]),
            ldp_core::blob::crc::crc32(&f[..12])
        );
        // CRC-32 of the empty payload is 0.
        assert_eq!(&f[16..], &[0, 0, 0, 0]);
        assert_eq!(ldp_core::blob::crc::crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn reply_parsing_skips_garbage_bad_headers_and_stale_replies() {
        let mut rx = b"noise LDP".to_vec();
        // A frame with a corrupted header: skipped.
        let mut bad = encode(ty::OUTPUT, 1, b"xxxx");
        bad[8] ^= 1;
        rx.extend_from_slice(&bad);
        // A stale reply to an earlier request: dropped.
        rx.extend_from_slice(&encode(ty::UPLOAD_OK, 0, &[0; 24]));
        // The answer.
        let mut err = 4u16.to_le_bytes().to_vec();
        err.extend_from_slice(&[0, 0]);
        err.extend_from_slice(b"does not fit: needs 10 bytes, have 5");
        rx.extend_from_slice(&encode(ty::ERROR, 1, &err));
        let mut d = device(rx);
        let e = d.upload(&[1, 2, 3]).expect_err("an error reply");
        let e = e.downcast_ref::<DeviceError>().expect("a device error");
        assert_eq!(e.code, code::TOO_LARGE);
        assert_eq!(e.message, "does not fit: needs 10 bytes, have 5");
    }

    #[test]
    fn corrupted_reply_payload_is_an_error_and_eof_is_reported() {
        let mut f = encode(ty::HELLO_OK, 1, &[1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        f[HEADER + 2] ^= 0x80;
        let mut d = device(f);
        let e = d.hello().expect_err("bad CRC");
        assert!(e.to_string().contains("CRC mismatch"), "{e}");
        let mut d = device(Vec::new());
        let e = d.hello().expect_err("closed");
        assert!(e.to_string().contains("closed the link"), "{e}");
    }

    #[test]
    fn run_reply_decoding() {
        let mut p = Vec::new();
        p.extend_from_slice(&1234u64.to_le_bytes()); // in-guest instructions
        p.extend_from_slice(&0u64.to_le_bytes());
        p.extend_from_slice(&100u32.to_le_bytes());
        p.extend_from_slice(&200u32.to_le_bytes());
        p.extend_from_slice(&300u32.to_le_bytes());
        p.extend_from_slice(&2u32.to_le_bytes());
        p.extend_from_slice(&1.5f32.to_le_bytes());
        p.extend_from_slice(&(-2.0f32).to_le_bytes());
        let mut d = device(encode(ty::OUTPUT, 1, &p));
        let r = d.run(&[0.0; 3]).expect("run");
        assert_eq!(r.output, vec![1.5, -2.0]);
        assert_eq!((r.instructions, r.counted_by), (1234, "device"));
        assert_eq!((r.arena_bytes, r.stack_bytes, r.ram_bytes), (100, 200, 300));
        // n disagreeing with the payload length is refused.
        p[28] = 3;
        let mut d = device(encode(ty::OUTPUT, 1, &p));
        assert!(d.run(&[0.0; 3]).is_err());
    }

    #[test]
    fn open_rejects_unknown_devices() {
        let e = Device::open("qemu-z80").err().expect("unknown board");
        assert!(e.to_string().contains("expected a QEMU board"), "{e}");
        let e = Device::open("serial:/dev/tty@fast")
            .err()
            .expect("bad baud");
        assert!(e.to_string().contains("not a baud rate"), "{e}");
    }
}
