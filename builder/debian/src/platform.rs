//! Debian architectures and OCI platforms: `amd64` ↔ `linux/amd64`, `arm64` ↔
//! `linux/arm64/v8`, `armhf` ↔ `linux/arm/v7`... (Debian's names are those of `dpkg
//! --print-architecture`; OCI's are Go's `GOARCH`/`GOARM`, image-spec "Platform").

/// The OCI architecture and variant of a Debian architecture, or `None` for one kiln does
/// not know.
pub fn oci_platform(debian_arch: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match debian_arch {
        "amd64" => ("amd64", None),
        "arm64" => ("arm64", Some("v8")),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v5")),
        "i386" => ("386", None),
        "ppc64el" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        "loong64" => ("loong64", None),
        _ => return None,
    })
}

/// The Debian architecture of an OCI platform written `linux/ARCH[/VARIANT]` (as `--platform`
/// takes it); the variant may be left out where it is implied (`linux/arm64`, `linux/arm`
/// meaning `armhf`).
pub fn debian_arch(platform: &str) -> Result<&'static str, String> {
    let mut parts = platform.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    if os != Some("linux") || arch.is_none() || parts.next().is_some() {
        return Err(format!(
            "`{platform}` is not a platform; write it `linux/ARCH[/VARIANT]`, e.g. `linux/amd64` or `linux/arm64`"
        ));
    }
    let arch = arch.unwrap_or_default();
    const ALL: [&str; 9] = [
        "amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "s390x", "riscv64", "loong64",
    ];
    ALL.into_iter()
        .find(|d| {
            oci_platform(d).is_some_and(|(a, v)| {
                a == arch
                    && match variant {
                        Some(want) => v == Some(want),
                        // `linux/arm` alone is armhf, as Docker and Go default to GOARM=7.
                        None => a != "arm" || v == Some("v7"),
                    }
            })
        })
        .ok_or_else(|| format!("kiln does not know a Debian architecture for `{platform}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_round_trip() {
        assert_eq!(debian_arch("linux/amd64"), Ok("amd64"));
        assert_eq!(debian_arch("linux/arm64"), Ok("arm64"));
        assert_eq!(debian_arch("linux/arm64/v8"), Ok("arm64"));
        assert_eq!(debian_arch("linux/arm"), Ok("armhf"));
        assert_eq!(debian_arch("linux/arm/v5"), Ok("armel"));
        assert_eq!(debian_arch("linux/ppc64le"), Ok("ppc64el"));
        assert_eq!(oci_platform("arm64"), Some(("arm64", Some("v8"))));
        assert_eq!(oci_platform("hurd-i386"), None);
        for bad in ["amd64", "windows/amd64", "linux/amd64/v2/x", "linux/sparc"] {
            assert!(debian_arch(bad).is_err(), "{bad}");
        }
    }
}
