//! Whether a program carries the fork-server marker: a section named
//! [`super::MARKER_SECTION`] holding [`super::MARKER`], found by reading the
//! ELF section headers (a few KiB, whatever the binary's size).

use std::{fs::File, io, os::unix::fs::FileExt, path::Path};

/// Most section headers read (real binaries have a few dozen).
const MAX_SECTIONS: u64 = 4096;
/// Largest section-name table read.
const MAX_NAMES: u64 = 1 << 20;

/// Whether `path` is a 64-bit little-endian ELF file with the marker section.
/// Anything else (a script, another format, an unreadable file) is `false`.
pub(crate) fn has_marker(path: &Path) -> bool {
    find(path).unwrap_or(false)
}

fn find(path: &Path) -> io::Result<bool> {
    let file = File::open(path)?;
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0)?;
    // Magic, 64-bit class, little-endian data.
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(false);
    }
    let shoff = u64_at(&header, 0x28);
    let shentsize = u64::from(u16_at(&header, 0x3A));
    let shnum = u64::from(u16_at(&header, 0x3C));
    let shstrndx = u64::from(u16_at(&header, 0x3E));
    if shentsize < 64 || shnum == 0 || shnum > MAX_SECTIONS || shstrndx >= shnum {
        return Ok(false);
    }
    let mut table = vec![0u8; (shentsize * shnum) as usize];
    file.read_exact_at(&mut table, shoff)?;
    let section = |i: u64| &table[(i * shentsize) as usize..(i * shentsize + 64) as usize];
    let names = section(shstrndx);
    let (names_at, names_len) = (u64_at(names, 0x18), u64_at(names, 0x20));
    if names_len > MAX_NAMES {
        return Ok(false);
    }
    let mut names = vec![0u8; names_len as usize];
    file.read_exact_at(&mut names, names_at)?;
    let wanted = super::MARKER_SECTION.as_bytes();
    for i in 0..shnum {
        let header = section(i);
        let name_at = u32_at(header, 0) as usize;
        let name = names.get(name_at..).unwrap_or_default();
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name != wanted {
            continue;
        }
        let (at, len) = (u64_at(header, 0x18), u64_at(header, 0x20));
        if len < super::MARKER.len() as u64 {
            return Ok(false);
        }
        let mut contents = vec![0u8; super::MARKER.len()];
        file.read_exact_at(&mut contents, at)?;
        return Ok(contents == super::MARKER);
    }
    Ok(false)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_without_the_marker_are_not_fork_servers() {
        assert!(!has_marker(Path::new("/bin/sh")), "an ELF binary without the section");
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert!(!has_marker(&script), "a script");
        let short = dir.path().join("short");
        std::fs::write(&short, b"\x7fELF\x02\x01").unwrap();
        assert!(!has_marker(&short), "a truncated header");
        assert!(!has_marker(&dir.path().join("missing")), "a missing file");
    }

    #[test]
    fn a_test_binary_linking_the_job_side_carries_the_marker() {
        // This test binary calls `serve_if_asked` (its tests do), so the
        // linker keeps the marker section.
        super::super::job::keep_marker();
        let me = std::env::current_exe().unwrap();
        assert!(has_marker(&me), "{} has no {} section", me.display(), super::super::MARKER_SECTION);
    }

    #[test]
    fn a_section_with_other_contents_is_not_the_marker() {
        // A minimal ELF file: header, one name table, one section named like
        // the marker holding other bytes.
        let names = format!("\0{}\0.shstrtab\0", super::super::MARKER_SECTION);
        let body_at = 64u64;
        let body = b"batchfan fork server v0\0";
        let names_at = body_at + body.len() as u64;
        let shoff = names_at + names.len() as u64;
        let mut file = vec![0u8; 64];
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        file[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        file[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        file[0x3C..0x3E].copy_from_slice(&3u16.to_le_bytes());
        file[0x3E..0x40].copy_from_slice(&2u16.to_le_bytes());
        file.extend_from_slice(body);
        file.extend_from_slice(names.as_bytes());
        let header = |name: u32, at: u64, len: u64| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&at.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&len.to_le_bytes());
            h
        };
        file.extend(header(0, 0, 0));
        file.extend(header(1, body_at, body.len() as u64));
        let shstrtab = 1 + super::super::MARKER_SECTION.len() as u32 + 1;
        file.extend(header(shstrtab, names_at, names.len() as u64));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("elf");
        std::fs::write(&path, &file).unwrap();
        assert!(!has_marker(&path), "another protocol version");
        let mut right = file.clone();
        let at = body_at as usize;
        right[at..at + super::super::MARKER.len()].copy_from_slice(super::super::MARKER);
        std::fs::write(&path, &right).unwrap();
        assert!(has_marker(&path), "the same file with the marker's bytes");
    }
}
