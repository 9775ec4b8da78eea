//! Encoding of tar headers: POSIX ustar, plus a pax extended header (POSIX.1-2001,
//! `pax` format) for the fields that do not fit.
//!
//! Spec: <https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13>
//!
//! Every field is either fixed or taken from [`HeaderFields`]: no device numbers, no user
//! or group names, no access or change times. The pax header's own name is a constant
//! (GNU tar puts its pid there), and its records are written in sorted key order.

/// The tar block size.
pub(crate) const BLOCK: usize = 512;

/// The name of every pax extended header entry.
const PAX_NAME: &[u8] = b"././@PaxHeader";

/// Type flags used by kiln layers.
pub(crate) mod typeflag {
    /// A regular file.
    pub(crate) const FILE: u8 = b'0';
    /// A hardlink to an earlier entry.
    pub(crate) const HARDLINK: u8 = b'1';
    /// A symbolic link.
    pub(crate) const SYMLINK: u8 = b'2';
    /// A directory.
    pub(crate) const DIR: u8 = b'5';
    /// A pax extended header for the next entry.
    pub(crate) const PAX: u8 = b'x';
}

/// Every value a header carries.
pub(crate) struct HeaderFields<'a> {
    /// The entry name; directories end with `/`. Bytes: host names need not be UTF-8.
    pub(crate) name: &'a [u8],
    /// The link target of symlinks and hardlinks, else empty.
    pub(crate) link: &'a [u8],
    pub(crate) typeflag: u8,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) size: u64,
    pub(crate) mtime: u64,
}

/// Appends the header block(s) for `h` to `out`: a pax header and its records when a
/// value does not fit its ustar field (names and link targets over 100 bytes, ids over
/// 2097151, sizes of 8 GiB and more), then the ustar header.
///
/// Names and link targets that are not UTF-8 go into pax records as raw bytes, with no
/// `hdrcharset` record: Go's and kiln's readers take the bytes as they are, GNU tar falls
/// back to them after failing to decode, and GNU tar 1.34 warns about `hdrcharset`.
pub(crate) fn encode(h: &HeaderFields<'_>, out: &mut Vec<u8>) {
    let long_name = h.name.len() > 100;
    let long_link = h.link.len() > 100;
    let mut records = Vec::new();
    if !fits(h.gid, 8) {
        pax_record(&mut records, "gid", h.gid.to_string().as_bytes());
    }
    if long_link {
        pax_record(&mut records, "linkpath", h.link);
    }
    if !fits(h.mtime, 12) {
        pax_record(&mut records, "mtime", h.mtime.to_string().as_bytes());
    }
    if long_name {
        pax_record(&mut records, "path", h.name);
    }
    if !fits(h.size, 12) {
        pax_record(&mut records, "size", h.size.to_string().as_bytes());
    }
    if !fits(h.uid, 8) {
        pax_record(&mut records, "uid", h.uid.to_string().as_bytes());
    }
    if !records.is_empty() {
        let pax = HeaderFields {
            name: PAX_NAME,
            link: b"",
            typeflag: typeflag::PAX,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: h.mtime,
        };
        ustar(&pax, out);
        out.extend_from_slice(&records);
        pad(out, records.len() as u64);
    }
    ustar(h, out);
}

/// Appends the zero bytes that round `len` bytes of content up to a whole block.
pub(crate) fn pad(out: &mut Vec<u8>, len: u64) {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

/// Appends one ustar header block. Values that do not fit are truncated or zeroed: the
/// pax header written before it carries them.
fn ustar(h: &HeaderFields<'_>, out: &mut Vec<u8>) {
    let mut b = [0u8; BLOCK];
    copy_truncated(&mut b[0..100], h.name);
    octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    octal(&mut b[108..116], h.uid);
    octal(&mut b[116..124], h.gid);
    octal(&mut b[124..136], h.size);
    octal(&mut b[136..148], h.mtime);
    b[156] = h.typeflag;
    copy_truncated(&mut b[157..257], h.link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    // uname and gname (265..329) stay empty.
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    // The checksum is computed with its own field read as spaces.
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    octal(&mut b[148..155], u64::from(sum));
    b[155] = b' ';
    out.extend_from_slice(&b);
}

/// Returns whether `value` fits a NUL-terminated octal field of `width` bytes.
fn fits(value: u64, width: usize) -> bool {
    let digits = (width - 1) as u32;
    value < 8u64.pow(digits)
}

/// Writes `value` as zero-padded octal digits followed by a NUL, or all zeros when it
/// does not fit (a pax record carries it then).
fn octal(field: &mut [u8], value: u64) {
    let value = if fits(value, field.len()) { value } else { 0 };
    let (last, digits) = field.split_last_mut().expect("octal fields are not empty");
    *last = 0;
    let mut v = value;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v & 7) as u8;
        v >>= 3;
    }
}

fn copy_truncated(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

/// Appends `"<len> <key>=<value>\n"`, where `<len>` counts the whole record, itself included.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str) -> HeaderFields<'_> {
        HeaderFields {
            name: name.as_bytes(),
            link: b"",
            typeflag: typeflag::FILE,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 5,
            mtime: 1_700_000_000,
        }
    }

    #[test]
    fn short_names_are_one_ustar_block() {
        let mut out = Vec::new();
        encode(&fields("a/b.txt"), &mut out);
        assert_eq!(out.len(), BLOCK);
        assert_eq!(&out[100..108], b"0000644\0");
        assert_eq!(&out[124..136], b"00000000005\0");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert!(out[265..329].iter().all(|&b| b == 0), "uname/gname empty");
        let header = tar::Header::from_byte_slice(&out);
        assert_eq!(header.cksum().unwrap(), {
            let mut b = out.clone();
            b[148..156].fill(b' ');
            b.iter().map(|&x| u32::from(x)).sum::<u32>()
        });
    }

    #[test]
    fn long_names_and_big_ids_go_to_pax_records() {
        let name = "d/".repeat(60) + "file";
        let mut h = fields(&name);
        h.uid = 1 << 40;
        let mut out = Vec::new();
        encode(&h, &mut out);
        assert_eq!(out[156], typeflag::PAX);
        let size = usize::from_str_radix(std::str::from_utf8(&out[124..135]).unwrap(), 8).unwrap();
        let records = std::str::from_utf8(&out[BLOCK..BLOCK + size]).unwrap();
        let path_at = records.find(&format!(" path={name}\n")).unwrap();
        let uid_at = records.find(&format!(" uid={}\n", 1u64 << 40)).unwrap();
        assert!(path_at < uid_at, "records are sorted by key");
        for line in records.lines() {
            let (len, _) = line.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), line.len() + 1);
        }
        assert_eq!(out.len(), 3 * BLOCK);
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        for n in 0..300 {
            let mut out = Vec::new();
            pax_record(&mut out, "path", "x".repeat(n).as_bytes());
            let text = std::str::from_utf8(&out).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len());
        }
    }
}
