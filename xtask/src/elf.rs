//! A minimal ELF reader (32- and 64-bit little-endian): loadable segments, section sizes and
//! symbol names. Enough to extract a raw binary (what `objcopy -O binary` does), report memory
//! use and find the board marker symbol, without a dependency.

use std::path::Path;

/// A loadable segment.
pub struct Segment {
    /// Physical (load) address.
    pub paddr: u64,
    /// Bytes in the file.
    pub data: Vec<u8>,
}

/// An allocated section.
pub struct Section {
    pub name: String,
    pub size: u64,
    /// `SHT_NOBITS` (`.bss`-like: takes RAM, not flash).
    pub nobits: bool,
    pub writable: bool,
}

/// The parts of an ELF file xtask uses.
pub struct Elf {
    pub segments: Vec<Segment>,
    pub sections: Vec<Section>,
    pub symbols: Vec<String>,
}

struct R<'a> {
    b: &'a [u8],
}

impl R<'_> {
    fn u16(&self, at: usize) -> Result<u16, String> {
        self.b
            .get(at..at + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
            .ok_or_else(|| "truncated ELF".to_string())
    }
    fn u32(&self, at: usize) -> Result<u32, String> {
        self.b
            .get(at..at + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .ok_or_else(|| "truncated ELF".to_string())
    }
    fn u64(&self, at: usize) -> Result<u64, String> {
        self.b
            .get(at..at + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
            .ok_or_else(|| "truncated ELF".to_string())
    }
    fn bytes(&self, at: u64, len: u64) -> Result<&[u8], String> {
        let (a, l) = (at as usize, len as usize);
        self.b
            .get(a..a.checked_add(l).ok_or("bad ELF offset")?)
            .ok_or_else(|| "ELF offset out of range".to_string())
    }
    fn cstr(&self, at: u64) -> String {
        let s = &self.b[(at as usize).min(self.b.len())..];
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).into_owned()
    }
}

impl Elf {
    pub fn read(path: &Path) -> Result<Elf, String> {
        let b = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Elf::parse(&b).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(b: &[u8]) -> Result<Elf, String> {
        if b.len() < 52 || &b[..4] != b"\x7fELF" {
            return Err("not an ELF file".into());
        }
        if b[5] != 1 {
            return Err("not a little-endian ELF file".into());
        }
        let wide = match b[4] {
            1 => false,
            2 => true,
            _ => return Err("unknown ELF class".into()),
        };
        let r = R { b };
        let (phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx) = if wide {
            (
                r.u64(0x20)?,
                r.u64(0x28)?,
                r.u16(0x36)?,
                r.u16(0x38)?,
                r.u16(0x3A)?,
                r.u16(0x3C)?,
                r.u16(0x3E)?,
            )
        } else {
            (
                r.u32(0x1C)? as u64,
                r.u32(0x20)? as u64,
                r.u16(0x2A)?,
                r.u16(0x2C)?,
                r.u16(0x2E)?,
                r.u16(0x30)?,
                r.u16(0x32)?,
            )
        };

        let mut segments = Vec::new();
        for i in 0..phnum as u64 {
            let at = (phoff + i * phentsize as u64) as usize;
            let p_type = r.u32(at)?;
            if p_type != 1 {
                continue; // PT_LOAD only
            }
            let (offset, paddr, filesz) = if wide {
                (r.u64(at + 8)?, r.u64(at + 24)?, r.u64(at + 32)?)
            } else {
                (
                    r.u32(at + 4)? as u64,
                    r.u32(at + 12)? as u64,
                    r.u32(at + 16)? as u64,
                )
            };
            segments.push(Segment {
                paddr,
                data: r.bytes(offset, filesz)?.to_vec(),
            });
        }

        struct Sh {
            name: u32,
            ty: u32,
            flags: u64,
            offset: u64,
            size: u64,
            link: u32,
            entsize: u64,
        }
        let mut shs = Vec::new();
        for i in 0..shnum as u64 {
            let at = (shoff + i * shentsize as u64) as usize;
            let sh = if wide {
                Sh {
                    name: r.u32(at)?,
                    ty: r.u32(at + 4)?,
                    flags: r.u64(at + 8)?,
                    offset: r.u64(at + 24)?,
                    size: r.u64(at + 32)?,
                    link: r.u32(at + 40)?,
                    entsize: r.u64(at + 56)?,
                }
            } else {
                Sh {
                    name: r.u32(at)?,
                    ty: r.u32(at + 4)?,
                    flags: r.u32(at + 8)? as u64,
                    offset: r.u32(at + 16)? as u64,
                    size: r.u32(at + 20)? as u64,
                    link: r.u32(at + 24)?,
                    entsize: r.u32(at + 36)? as u64,
                }
            };
            shs.push(sh);
        }
        let shstr = shs.get(shstrndx as usize).map(|s| s.offset).unwrap_or(0);
        let mut sections = Vec::new();
        let mut symbols = Vec::new();
        for sh in &shs {
            const SHF_WRITE: u64 = 1;
            const SHF_ALLOC: u64 = 2;
            if sh.flags & SHF_ALLOC != 0 && sh.size > 0 {
                sections.push(Section {
                    name: r.cstr(shstr + sh.name as u64),
                    size: sh.size,
                    nobits: sh.ty == 8,
                    writable: sh.flags & SHF_WRITE != 0,
                });
            }
            if sh.ty == 2 && sh.entsize > 0 {
                // SHT_SYMTAB
                let strtab = shs.get(sh.link as usize).map(|s| s.offset).unwrap_or(0);
                for k in 0..sh.size / sh.entsize {
                    let at = (sh.offset + k * sh.entsize) as usize;
                    let name = r.u32(at)?;
                    if name != 0 {
                        symbols.push(r.cstr(strtab + name as u64));
                    }
                }
            }
        }
        Ok(Elf {
            segments,
            sections,
            symbols,
        })
    }

    /// The raw image from the lowest load address: what `objcopy -O binary` writes (gaps
    /// between segments are zero-filled; zero-size-in-file segments add nothing).
    pub fn to_binary(&self) -> Result<Vec<u8>, String> {
        let loaded: Vec<&Segment> = self
            .segments
            .iter()
            .filter(|s| !s.data.is_empty())
            .collect();
        let base = loaded
            .iter()
            .map(|s| s.paddr)
            .min()
            .ok_or("no loadable data in the ELF file")?;
        let end = loaded
            .iter()
            .map(|s| s.paddr + s.data.len() as u64)
            .max()
            .unwrap_or(base);
        if end - base > 1 << 30 {
            return Err("load segments span more than 1 GiB".into());
        }
        let mut out = vec![0u8; (end - base) as usize];
        for s in loaded {
            let at = (s.paddr - base) as usize;
            out[at..at + s.data.len()].copy_from_slice(&s.data);
        }
        Ok(out)
    }

    /// `(flash, ram)` bytes: flash = loadable file bytes (code, constants, `.data` images);
    /// RAM = writable allocated sections (`.data`, `.bss`, arena; the stack is not a section on
    /// Cortex-M).
    pub fn memory_use(&self) -> (u64, u64) {
        let flash = self.segments.iter().map(|s| s.data.len() as u64).sum();
        let ram = self
            .sections
            .iter()
            .filter(|s| s.writable)
            .map(|s| s.size)
            .sum();
        (flash, ram)
    }
}
