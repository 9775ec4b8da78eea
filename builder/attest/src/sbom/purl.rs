//! Package URLs (<https://github.com/package-url/purl-spec>) for cataloged packages and
//! for the image itself.

use std::fmt::Write as _;

use kiln_oci::Digest;

use super::package::{Distro, Ecosystem, Package};

impl Package {
    /// Returns the package URL, e.g. `pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12`.
    ///
    /// `distro` names the Debian vendor namespace and the `distro` qualifier; without it
    /// the namespace is `debian` and the qualifier is left out rather than guessed.
    pub fn purl(&self, distro: Option<&Distro>) -> String {
        let mut out = format!("pkg:{}/", self.ecosystem.as_str());
        match self.ecosystem {
            Ecosystem::Deb => {
                let vendor = distro
                    .map(|d| d.id.to_ascii_lowercase())
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| "debian".to_string());
                push_segment(&mut out, &vendor);
                out.push('/');
                push_segment(&mut out, &self.name);
            }
            // Go module paths are case-sensitive (the module proxy `!`-escapes capitals), so
            // the path is kept as recorded; every element but the last is the namespace.
            Ecosystem::Golang => {
                for (i, segment) in self.name.split('/').filter(|s| !s.is_empty()).enumerate() {
                    if i > 0 {
                        out.push('/');
                    }
                    push_segment(&mut out, segment);
                }
            }
            Ecosystem::Maven => {
                if let Some(group) = &self.namespace {
                    push_segment(&mut out, group);
                    out.push('/');
                }
                push_segment(&mut out, &self.name);
            }
            Ecosystem::Npm => {
                if let Some(scope) = &self.namespace {
                    push_segment(&mut out, &format!("@{scope}"));
                    out.push('/');
                }
                push_segment(&mut out, &self.name);
            }
        }
        if !self.version.is_empty() {
            out.push('@');
            push_segment(&mut out, &self.version);
        }
        if self.ecosystem == Ecosystem::Deb {
            let distro = distro.and_then(distro_qualifier);
            // Already in key order, as the spec's canonical form requires.
            let qualifiers = [
                ("arch", self.arch.as_deref()),
                ("distro", distro.as_deref()),
                ("upstream", self.source.as_deref()),
            ];
            push_qualifiers(&mut out, &qualifiers);
        }
        out
    }
}

/// Returns `pkg:oci/<name>@<digest>?repository_url=<repository>` for the image `digest`
/// pushed to `repository` (e.g. `127.0.0.1:5000/team/app`).
pub(crate) fn oci_purl(repository: &str, digest: &Digest) -> String {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    // A tag or digest pasted onto the repository is not part of the purl name.
    let name = last.split(['@', ':']).next().unwrap_or(last);
    let mut out = String::from("pkg:oci/");
    push_segment(&mut out, &name.to_ascii_lowercase());
    out.push('@');
    push_segment(&mut out, &digest.to_string());
    push_qualifiers(&mut out, &[("repository_url", Some(repository))]);
    out
}

fn distro_qualifier(distro: &Distro) -> Option<String> {
    let release = distro.version_id.as_ref().or(distro.codename.as_ref())?;
    Some(format!("{}-{}", distro.id.to_ascii_lowercase(), release))
}

fn push_qualifiers(out: &mut String, qualifiers: &[(&str, Option<&str>)]) {
    let mut sep = '?';
    for (key, value) in qualifiers {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        out.push(sep);
        out.push_str(key);
        out.push('=');
        push_segment(out, value);
        sep = '&';
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters; the purl spec allows
/// more to stay bare, but encoding more is always valid and gives one canonical form.
pub(crate) fn push_segment(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(ecosystem: Ecosystem, namespace: Option<&str>, name: &str, version: &str) -> Package {
        Package::new(ecosystem, namespace.map(String::from), name, version, "/x")
    }

    fn bookworm() -> Distro {
        Distro {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
        }
    }

    #[test]
    fn deb_purls_encode_versions_and_sort_qualifiers() {
        let mut p = pkg(Ecosystem::Deb, None, "libgcrypt20", "1:2.3+dfsg-1");
        p.arch = Some("amd64".into());
        p.source = Some("libgcrypt".into());
        assert_eq!(
            p.purl(Some(&bookworm())),
            "pkg:deb/debian/libgcrypt20@1%3A2.3%2Bdfsg-1?arch=amd64&distro=debian-12&upstream=libgcrypt"
        );
        assert_eq!(
            p.purl(None),
            "pkg:deb/debian/libgcrypt20@1%3A2.3%2Bdfsg-1?arch=amd64&upstream=libgcrypt"
        );
        let ubuntu = Distro {
            id: "ubuntu".into(),
            version_id: None,
            codename: Some("noble".into()),
        };
        p.source = None;
        p.arch = None;
        assert_eq!(
            p.purl(Some(&ubuntu)),
            "pkg:deb/ubuntu/libgcrypt20@1%3A2.3%2Bdfsg-1?distro=ubuntu-noble"
        );
    }

    #[test]
    fn golang_purls_keep_path_separators() {
        let p = pkg(Ecosystem::Golang, None, "github.com/google/uuid", "v1.6.0");
        assert_eq!(p.purl(None), "pkg:golang/github.com/google/uuid@v1.6.0");
        let p = pkg(Ecosystem::Golang, None, "stdlib", "go1.26.8");
        assert_eq!(p.purl(None), "pkg:golang/stdlib@go1.26.8");
        let p = pkg(Ecosystem::Golang, None, "example.com/Some App", "(devel)");
        assert_eq!(
            p.purl(None),
            "pkg:golang/example.com/Some%20App@%28devel%29"
        );
        let p = pkg(
            Ecosystem::Golang,
            None,
            "github.com/a/b",
            "v2.0.0+incompatible",
        );
        assert_eq!(
            p.purl(None),
            "pkg:golang/github.com/a/b@v2.0.0%2Bincompatible"
        );
    }

    #[test]
    fn maven_and_npm_purls() {
        let p = pkg(Ecosystem::Maven, Some("org.slf4j"), "slf4j-api", "2.0.9");
        assert_eq!(p.purl(None), "pkg:maven/org.slf4j/slf4j-api@2.0.9");
        let p = pkg(Ecosystem::Npm, Some("types"), "node", "20.1.0");
        assert_eq!(p.purl(None), "pkg:npm/%40types/node@20.1.0");
        assert_eq!(p.display_name(), "@types/node");
        let p = pkg(Ecosystem::Npm, None, "express", "4.21.2");
        assert_eq!(p.purl(Some(&bookworm())), "pkg:npm/express@4.21.2");
    }

    #[test]
    fn oci_purl_names_the_last_path_segment() {
        let d = Digest::of(b"image");
        assert_eq!(
            oci_purl("127.0.0.1:5000/team/App", &d),
            format!(
                "pkg:oci/app@sha256%3A{}?repository_url=127.0.0.1%3A5000%2Fteam%2FApp",
                d.hex()
            )
        );
    }
}
