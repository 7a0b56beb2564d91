//! The board table: what xtask needs to build and run each firmware board.

/// How a board runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// In QEMU: `binary` and machine arguments.
    Qemu {
        binary: &'static str,
        machine: &'static [&'static str],
    },
    /// A real board: built only.
    Real,
}

/// One firmware board (a cargo feature of the firmware crate).
pub struct Board {
    /// Feature name, also the `board=` of the RESULT lines.
    pub name: &'static str,
    /// Rust target triple.
    pub target: &'static str,
    /// Core, for people.
    pub core: &'static str,
    /// How it runs.
    pub kind: Kind,
}

pub const BOARDS: &[Board] = &[
    Board {
        name: "qemu-m4",
        target: "thumbv7em-none-eabihf",
        core: "Cortex-M4F (QEMU mps2-an386)",
        kind: Kind::Qemu {
            binary: "qemu-system-arm",
            machine: &["-M", "mps2-an386"],
        },
    },
    Board {
        name: "qemu-m7",
        target: "thumbv7em-none-eabihf",
        core: "Cortex-M7 (QEMU mps2-an500)",
        kind: Kind::Qemu {
            binary: "qemu-system-arm",
            machine: &["-M", "mps2-an500"],
        },
    },
    Board {
        name: "qemu-m55",
        target: "thumbv8m.main-none-eabihf",
        core: "Cortex-M55 (QEMU mps3-an547)",
        kind: Kind::Qemu {
            binary: "qemu-system-arm",
            machine: &["-M", "mps3-an547"],
        },
    },
    Board {
        name: "qemu-m3",
        target: "thumbv7m-none-eabi",
        core: "Cortex-M3, no FPU (QEMU mps2-an385)",
        kind: Kind::Qemu {
            binary: "qemu-system-arm",
            machine: &["-M", "mps2-an385"],
        },
    },
    Board {
        name: "qemu-lm3s",
        target: "thumbv7m-none-eabi",
        core: "Cortex-M3, no FPU, 64 KiB RAM (QEMU lm3s6965evb; streaming int8 LDP 128->128 64x64)",
        kind: Kind::Qemu {
            binary: "qemu-system-arm",
            machine: &["-M", "lm3s6965evb"],
        },
    },
    Board {
        name: "qemu-a53",
        target: "aarch64-unknown-none",
        core: "Cortex-A53 (QEMU virt)",
        kind: Kind::Qemu {
            binary: "qemu-system-aarch64",
            // No network device: the default virtio NIC needs a ROM (ipxe-qemu) we do not use.
            machine: &["-M", "virt", "-cpu", "cortex-a53", "-nic", "none"],
        },
    },
    Board {
        name: "qemu-a76",
        target: "aarch64-unknown-none",
        core: "Cortex-A76 with FEAT_FP16 (QEMU virt)",
        kind: Kind::Qemu {
            binary: "qemu-system-aarch64",
            machine: &["-M", "virt", "-cpu", "cortex-a76", "-nic", "none"],
        },
    },
    Board {
        name: "nrf52840",
        target: "thumbv7em-none-eabihf",
        core: "Cortex-M4F (nRF52840-DK)",
        kind: Kind::Real,
    },
    Board {
        name: "h743",
        target: "thumbv7em-none-eabihf",
        core: "Cortex-M7 (Nucleo-H743ZI)",
        kind: Kind::Real,
    },
    Board {
        name: "rpi4",
        target: "aarch64-unknown-none",
        core: "Cortex-A72 (Raspberry Pi 4)",
        kind: Kind::Real,
    },
];

/// The board called `name`.
pub fn find(name: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.name == name)
}

/// Names of all boards, for messages.
pub fn names() -> String {
    BOARDS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
}

/// Finds the board of a firmware ELF by its `__ldp_board_*` marker symbol.
pub fn from_symbols<'a>(symbols: impl Iterator<Item = &'a str>) -> Option<&'static Board> {
    for s in symbols {
        if let Some(rest) = s.strip_prefix("LDP_BOARD_") {
            let name = rest.to_ascii_lowercase().replace('_', "-");
            if let Some(b) = find(&name) {
                return Some(b);
            }
        }
    }
    None
}
