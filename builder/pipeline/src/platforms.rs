//! The platforms a build makes images for: `--platform linux/amd64,linux/arm64` or
//! `[io.kiln] platforms`, parsed once into OCI platforms.

use kiln_debian::platform::{debian_arch, oci_platform};
use kiln_lifecycle::host_arch;
use kiln_model::Platform;

/// Parses `linux/ARCH[/VARIANT]` (`linux/arm64`, `linux/arm/v7`) into the OCI platform kiln
/// builds for it; the variant is filled in where the architecture implies one (`arm64` is
/// `arm64/v8`). The error says how to write one.
pub fn parse_platform(written: &str) -> Result<Platform, String> {
    let written = written.trim();
    let arch = debian_arch(written)?;
    let (architecture, variant) =
        oci_platform(arch).ok_or_else(|| format!("kiln does not build for `{written}`"))?;
    Ok(Platform {
        os: "linux".to_owned(),
        architecture: architecture.to_owned(),
        variant: variant.map(str::to_owned),
    })
}

/// Parses a list of platforms, refusing the same platform twice (`linux/arm64` and
/// `linux/arm64/v8` are one).
pub fn parse_platforms<S: AsRef<str>>(written: &[S]) -> Result<Vec<Platform>, String> {
    let mut platforms: Vec<Platform> = Vec::new();
    for w in written {
        let p = parse_platform(w.as_ref())?;
        if platforms.iter().any(|q| q.same_as(&p)) {
            return Err(format!("`{}` is named twice", w.as_ref().trim()));
        }
        platforms.push(p);
    }
    Ok(platforms)
}

/// Whether images for `platform` run on this machine without an emulator.
pub fn is_host(platform: &Platform) -> bool {
    platform.os == "linux" && platform.architecture == host_arch()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_with_their_implied_variant_and_once_each() {
        let p = parse_platforms(&["linux/amd64", " linux/arm64"]).unwrap();
        assert_eq!(p[0].to_string(), "linux/amd64");
        assert_eq!(p[1].to_string(), "linux/arm64/v8");
        assert_eq!(
            parse_platform("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        let twice = parse_platforms(&["linux/arm64", "linux/arm64/v8"]).unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        for bad in ["windows/amd64", "amd64", "linux/sparc", "linux/amd64/v2/x"] {
            let e = parse_platform(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
