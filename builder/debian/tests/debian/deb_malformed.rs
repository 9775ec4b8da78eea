//! D06 of RELIABILITY.md: malformed `.deb` containers and compressed members (ar sizes,
//! member order, unterminated zstd, decoder memory limits, tar size fields) and a seeded
//! mutation fuzz: each is a clean error naming the package or file and the member, never a
//! panic, and nothing is left in the store.

use std::path::{Path, PathBuf};

use crate::deb_fixture::*;
use kiln_debian::deb::{DebError, DebInfo, PathTracker, write_packages_layer};
use kiln_layer::{BlobStore, Compression};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Writes `debs` into one layer of a fresh store under `tmp` and returns the error, if any,
/// after checking that the store holds nothing then.
fn try_layer(tmp: &Path, debs: &[(DebInfo, PathBuf)]) -> Option<DebError> {
    let store_dir = tmp.join("store");
    let _ = std::fs::remove_dir_all(&store_dir);
    try_layer_in(&BlobStore::open(&store_dir).unwrap(), debs)
}

/// Writes `debs` into one layer of `store` and returns the error, if any, after checking
/// that the store is unchanged then.
fn try_layer_in(store: &BlobStore, debs: &[(DebInfo, PathBuf)]) -> Option<DebError> {
    let before = blob_dir_names(store);
    let mut seen = PathTracker::new();
    let result = write_packages_layer(
        debs,
        &mut seen,
        &rules(),
        &policy(),
        Compression::Gzip,
        store,
    );
    if result.is_err() {
        assert_eq!(blob_dir_names(store), before, "nothing is left behind");
        assert!(seen.is_empty());
    }
    result.err()
}

fn pkg() -> Deb {
    Deb::new(
        "broken",
        vec![
            dir("./"),
            dir("./etc/"),
            file("./etc/broken.conf", b"x = 1\n"),
        ],
    )
}

/// Returns the `.deb` with the ar size field of member `name` replaced by `size`.
fn with_ar_size(bytes: &[u8], name: &str, size: &[u8; 10]) -> Vec<u8> {
    let at = bytes
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .expect("member header");
    let mut out = bytes.to_vec();
    out[at + 48..at + 58].copy_from_slice(size);
    out
}

#[test]
fn d06_ar_size_fields_beyond_the_file_or_not_numbers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = pkg();
    let good = deb.bytes();
    for member in ["control.tar.gz", "data.tar.xz"] {
        let written = deb.write_bytes(tmp.path(), &with_ar_size(&good, member, b"9999999999"));
        let err = try_layer(tmp.path(), &[written]).expect("refused");
        assert!(
            matches!(&err, DebError::Truncated { member: m, needed: 9_999_999_999, .. } if m == member),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("broken_1.0-1_amd64.deb")
                && err.to_string().contains(&format!("`{member}`")),
            "{err}"
        );
    }
    for size in [b"1e10      ", b"-1        ", b"          "] {
        let written = deb.write_bytes(tmp.path(), &with_ar_size(&good, "data.tar.xz", size));
        let err = try_layer(tmp.path(), &[written]).expect("refused");
        assert!(matches!(err, DebError::BadMember { .. }), "{err:?}");
        assert!(err.to_string().contains("not a decimal number"), "{err}");
    }
}

#[test]
fn d06_members_in_the_wrong_order_are_refused_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = pkg();
    let (control_name, control) = deb.control_member();
    let data = Comp::Xz.compress(&tar_of(&deb.items));
    for (members, words) in [
        (
            vec![
                ("debian-binary", &b"2.0\n"[..]),
                ("data.tar.xz", &data[..]),
                (control_name.as_str(), &control[..]),
            ],
            "expected a `control.tar` member, found `data.tar.xz`",
        ),
        (
            vec![
                (control_name.as_str(), &control[..]),
                ("debian-binary", &b"2.0\n"[..]),
                ("data.tar.xz", &data[..]),
            ],
            "the first member is `control.tar.gz`, not `debian-binary`",
        ),
        (
            vec![
                ("debian-binary", &b"2.0\n"[..]),
                (control_name.as_str(), &control[..]),
            ],
            "there is no `data.tar` member",
        ),
    ] {
        let written = deb.write_bytes(tmp.path(), &ar(&members));
        let err = try_layer(tmp.path(), &[written]).expect("refused");
        assert!(matches!(err, DebError::Layout { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(words) && msg.contains("broken_1.0-1_amd64.deb"),
            "{msg}"
        );
    }
}

/// A `data.tar.zst` cut off mid-frame never reaches its end: the decoder's error names the
/// package and the member. A frame asking for a 2 GiB window exceeds the decoder's memory
/// limit (zstd's default 128 MiB) and is refused the same way.
#[test]
fn d06_an_unterminated_or_oversized_zstd_member_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut noise = vec![0u8; 400_000];
    rng.fill_bytes(&mut noise);
    let mut deb = pkg();
    deb.items.push(file("./etc/noise", &noise));
    deb.installed_size = 1024;
    let zst = Comp::Zst.compress(&tar_of(&deb.items));
    let cut = &zst[..zst.len() / 2];
    let written = deb.write_bytes(tmp.path(), &deb.bytes_with_data("data.tar.zst", cut));
    let err = try_layer(tmp.path(), &[written]).expect("refused");
    assert!(
        matches!(&err, DebError::Data { package, member, .. } if package == "broken" && member == "data.tar.zst"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("reading member `data.tar.zst`"),
        "{err}"
    );

    let mut huge_window = Comp::Zst.compress(&tar_of(&pkg().items));
    assert_eq!(
        huge_window[4] & 0x20,
        0,
        "no single-segment frame: a window descriptor follows"
    );
    huge_window[5] = 21 << 3; // window log 10 + 21 = 31
    let written = deb.write_bytes(
        tmp.path(),
        &deb.bytes_with_data("data.tar.zst", &huge_window),
    );
    let err = try_layer(tmp.path(), &[written]).expect("refused");
    assert!(
        matches!(&err, DebError::Data { member, .. } if member == "data.tar.zst"),
        "{err:?}"
    );
}

/// An xz block header asking for a 4 GiB dictionary is refused by the decoder's memory limit
/// before anything is allocated.
#[test]
fn d06_xz_with_a_huge_dictionary_hits_the_memory_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = pkg();
    let mut xz = Comp::Xz.compress(&tar_of(&deb.items));
    // Stream header (12 bytes), then the block header: size, flags, [sizes], filter flags.
    let start = 12;
    let header_len = (usize::from(xz[start]) + 1) * 4;
    let flags = xz[start + 1];
    assert_eq!(flags & 0x03, 0, "one filter");
    assert_eq!(flags & 0xc0, 0, "no size fields");
    assert_eq!(
        &xz[start + 2..start + 4],
        &[0x21, 0x01],
        "LZMA2, one property byte"
    );
    xz[start + 4] = 40; // dictionary size 4 GiB - 1
    let mut crc = flate2::Crc::new();
    crc.update(&xz[start..start + header_len - 4]);
    xz[start + header_len - 4..start + header_len].copy_from_slice(&crc.sum().to_le_bytes());
    let written = deb.write_bytes(tmp.path(), &deb.bytes_with_data("data.tar.xz", &xz));
    let err = try_layer(tmp.path(), &[written]).expect("refused");
    assert!(
        matches!(&err, DebError::Data { package, member, .. } if package == "broken" && member == "data.tar.xz"),
        "{err:?}"
    );
    let chain = crate::support::chain(&err);
    assert!(chain.to_lowercase().contains("memory"), "{chain}");
}

/// A tar header whose size field is huge (base-256) or not octal is refused before a byte
/// of content is read.
#[test]
fn d06_tar_header_size_overflow_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = pkg();
    let tar_with_size = |size: &[u8; 12]| {
        let mut h = tar::Header::new_gnu();
        h.set_path("./etc/huge").unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.as_old_mut().size.copy_from_slice(size);
        h.set_cksum();
        let mut out = tar_of(&[dir("./")]);
        out.truncate(512);
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&[0u8; 4096]);
        out
    };
    let mut base256 = [0xffu8; 12];
    base256[0] = 0x80;
    let written = deb.write_bytes(
        tmp.path(),
        &deb.bytes_with_data("data.tar", &tar_with_size(&base256)),
    );
    let err = try_layer(tmp.path(), &[written]).expect("refused");
    assert!(
        matches!(&err, DebError::ExpansionBomb { package, .. } | DebError::Data { package, .. } if package == "broken"),
        "{err:?}"
    );
    let written = deb.write_bytes(
        tmp.path(),
        &deb.bytes_with_data("data.tar", &tar_with_size(b"99999999999\0")),
    );
    let err = try_layer(tmp.path(), &[written]).expect("refused");
    assert!(
        matches!(&err, DebError::Data { package, member, .. } if package == "broken" && member == "data.tar"),
        "{err:?}"
    );
}

/// Seeded mutations (byte flips and truncations) of a good package in each compression:
/// every outcome is a layer or an error naming the package or its file, never a panic.
#[test]
fn d06_mutated_debs_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0xd06);
    for comp in [Comp::Xz, Comp::Zst, Comp::Gz, Comp::None] {
        let mut deb = Deb::new(
            "fuzz",
            vec![
                dir("./"),
                dir("./usr/"),
                dir("./usr/bin/"),
                item(
                    "./usr/bin/tool",
                    Body::File(b"\x7fELF tool".to_vec()),
                    0o755,
                ),
                symlink("./usr/bin/t", "tool"),
                hardlink("./usr/bin/tool2", "./usr/bin/tool"),
                file(&format!("./usr/share/{}", "long/".repeat(30)), b"deep"),
            ],
        );
        deb.data = comp;
        let good = deb.bytes();
        let store = BlobStore::open(tmp.path().join(format!("store-{comp:?}"))).unwrap();
        for round in 0..80 {
            let mut bytes = good.clone();
            if round % 4 == 3 {
                bytes.truncate(rng.next_u32() as usize % good.len());
            } else {
                for _ in 0..=round % 3 {
                    let at = rng.next_u32() as usize % bytes.len();
                    bytes[at] ^= 1 << (rng.next_u32() % 8);
                }
            }
            let written = deb.write_bytes(tmp.path(), &bytes);
            if let Some(err) = try_layer_in(&store, &[written]) {
                let msg = err.to_string();
                assert!(
                    msg.contains("fuzz_1.0-1_amd64.deb") || msg.contains("`fuzz`"),
                    "{comp:?} round {round}: {msg}"
                );
            }
        }
    }
}
