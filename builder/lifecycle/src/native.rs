//! Native code in a build's layers: what ties an image to one CPU.

/// Native code a build put into its layers, found where the buildpack knows to look (a jar's
/// JNI libraries): an image for an architecture it lacks may not work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NativeCode {
    /// Its path in the image (`/workspace/BOOT-INF/lib/netty-epoll-linux-x86_64.jar`).
    pub location: String,
    /// The architectures it has code for, GOARCH style (`amd64`, `arm64`), sorted.
    pub architectures: Vec<String>,
}

/// Returns the OCI architecture (GOARCH style) an ELF header's `e_machine` names, from the
/// first 20 bytes of a file; `None` when they are not an ELF header, `unknown` for a
/// machine kiln does not name.
pub fn elf_architecture(head: &[u8]) -> Option<&'static str> {
    if head.len() < 20 || head[..4] != *b"\x7fELF" {
        return None;
    }
    let machine = match head[5] {
        1 => u16::from_le_bytes([head[18], head[19]]),
        _ => u16::from_be_bytes([head[18], head[19]]),
    };
    Some(match machine {
        3 => "386",
        8 => "mips64",
        20 | 21 => "ppc64le",
        22 => "s390x",
        40 => "arm",
        62 => "amd64",
        183 => "arm64",
        243 => "riscv64",
        _ => "unknown",
    })
}

/// Returns the OCI architecture of the ELF file `path`, reading its first 20 bytes only;
/// `None` when it is not ELF (or cannot be read).
pub fn elf_file_architecture(path: &std::path::Path) -> Option<&'static str> {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    elf_architecture(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers_name_their_machine() {
        let mut head = b"\x7fELF\x02\x01\x01".to_vec();
        head.resize(20, 0);
        head[18] = 183;
        assert_eq!(elf_architecture(&head), Some("arm64"));
        head[18] = 62;
        assert_eq!(elf_architecture(&head), Some("amd64"));
        head[5] = 2; // big-endian: e_machine 62 << 8
        assert_eq!(elf_architecture(&head), Some("unknown"));
        assert_eq!(elf_architecture(b"#!/bin/sh\necho not elf at all"), None);
        assert_eq!(elf_architecture(b"\x7fELF"), None);
    }
}
