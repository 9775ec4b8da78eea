//! OpenPGP keyrings that kiln trusts to sign Debian archives: the binary keyring files
//! Debian ships in `debian-archive-keyring` (`/usr/share/keyrings/debian-archive-*.gpg`),
//! pinned in the repository next to the base definitions.
//!
//! Only self-signatures are checked (third-party certifications on Debian's keys are
//! ignored). A primary key counts when one of its user IDs carries a valid self-signature;
//! a subkey counts when it has a valid binding signature with the signing flag and an
//! embedded back-signature (RFC 9580 §5.2.3.28). Expiry and revocation are recorded here
//! and judged at verification time against the caller's clock.
//!
//! Spec: RFC 9580 §10.1 "Transferable Public Keys"
//! (<https://www.rfc-editor.org/rfc/rfc9580.html#name-transferable-public-keys>).

use std::io::BufReader;
use std::path::{Path, PathBuf};

use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::packet::{PublicKey, PublicSubkey, Signature, SignatureType};
use pgp::types::{Fingerprint, KeyDetails, KeyId, Tag};

/// A set of trusted public keys.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    certs: Vec<SignedPublicKey>,
    /// The file or label each certificate came from, parallel to `certs`.
    sources: Vec<String>,
    keys: Vec<KeyEntry>,
}

/// A key or subkey that may have signed something, and what its self-signatures say.
#[derive(Clone, Debug)]
pub(crate) struct KeyEntry {
    cert: usize,
    subkey: Option<usize>,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) key_id: KeyId,
    /// Unix seconds after which the key is expired, if it expires.
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked: bool,
}

/// The key material a [`KeyEntry`] points at.
pub(crate) enum KeyRef<'a> {
    Primary(&'a PublicKey),
    Sub(&'a PublicSubkey),
}

/// Why a keyring could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The keyring file could not be read.
    #[error("reading keyring `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not OpenPGP public keys.
    #[error("parsing keyring `{name}`: {reason}")]
    Parse {
        /// The file or label the bytes came from.
        name: String,
        /// What the OpenPGP parser said.
        reason: String,
    },
    /// The keyring holds no public key.
    #[error("keyring `{name}` holds no public key")]
    Empty {
        /// The file or label the bytes came from.
        name: String,
    },
}

impl Keyring {
    /// Returns the keyring of the given files, in order (binary or ASCII-armored).
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Keyring, KeyringError> {
        let mut ring = Keyring::default();
        for path in paths {
            let path = path.as_ref();
            let bytes = std::fs::read(path).map_err(|source| KeyringError::Read {
                path: path.to_owned(),
                source,
            })?;
            ring.add_bytes(&path.display().to_string(), &bytes)?;
        }
        Ok(ring)
    }

    /// Returns a keyring of the certificates in `bytes`; `name` labels errors.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Keyring, KeyringError> {
        let mut ring = Keyring::default();
        ring.add_bytes(name, bytes)?;
        Ok(ring)
    }

    /// Adds the certificates in `bytes` (binary or ASCII-armored) to this keyring.
    pub fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), KeyringError> {
        let parse_err = |e: pgp::errors::Error| KeyringError::Parse {
            name: name.to_owned(),
            reason: e.to_string(),
        };
        let certs: Vec<SignedPublicKey> = if bytes.starts_with(b"-----BEGIN") {
            let (iter, _) =
                SignedPublicKey::from_armor_many(BufReader::new(bytes)).map_err(parse_err)?;
            iter.collect::<Result<_, _>>().map_err(parse_err)?
        } else {
            SignedPublicKey::from_bytes_many(BufReader::new(bytes))
                .map_err(parse_err)?
                .collect::<Result<_, _>>()
                .map_err(parse_err)?
        };
        if certs.is_empty() {
            return Err(KeyringError::Empty {
                name: name.to_owned(),
            });
        }
        for cert in certs {
            self.add_cert_from(cert, name);
        }
        Ok(())
    }

    /// Returns the keyring of the certificates that came from the files `paths` (as given
    /// to [`Keyring::load`]): a suite pinned to some keyrings trusts only their keys.
    pub fn only_from(&self, paths: &[impl AsRef<Path>]) -> Keyring {
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.as_ref().display().to_string())
            .collect();
        let mut ring = Keyring::default();
        for (cert, source) in self.certs.iter().zip(&self.sources) {
            if names.contains(source) {
                ring.add_cert_from(cert.clone(), source);
            }
        }
        ring
    }

    /// Adds one certificate (its primary key and signing subkeys).
    pub fn add_cert(&mut self, cert: SignedPublicKey) {
        self.add_cert_from(cert, "(added)");
    }

    fn add_cert_from(&mut self, cert: SignedPublicKey, source: &str) {
        let index = self.certs.len();
        let primary = &cert.primary_key;
        if let Some(self_sig) = newest_valid_self_signature(&cert) {
            let revoked = cert
                .details
                .revocation_signatures
                .iter()
                .any(|sig| sig.verify_key(primary).is_ok());
            self.keys.push(KeyEntry {
                cert: index,
                subkey: None,
                fingerprint: primary.fingerprint(),
                key_id: primary.legacy_key_id(),
                expires_at: expiry(primary.created_at().as_secs(), self_sig),
                revoked,
            });
        }
        for (sub_index, sub) in cert.public_subkeys.iter().enumerate() {
            let valid = |sig: &&Signature| match sig.typ() {
                Some(SignatureType::SubkeyBinding) => {
                    sig.verify_subkey_binding(primary, &sub.key).is_ok()
                        && sig.key_flags().sign()
                        && sig.embedded_signature().is_some_and(|back| {
                            back.verify_primary_key_binding(&sub.key, primary).is_ok()
                        })
                }
                _ => false,
            };
            let Some(binding) = sub
                .signatures
                .iter()
                .filter(valid)
                .max_by_key(|s| s.created().map(|t| t.as_secs()))
            else {
                continue;
            };
            let revoked = sub.signatures.iter().any(|sig| {
                sig.typ() == Some(SignatureType::SubkeyRevocation)
                    && sig.verify_subkey_binding(primary, &sub.key).is_ok()
            });
            self.keys.push(KeyEntry {
                cert: index,
                subkey: Some(sub_index),
                fingerprint: sub.key.fingerprint(),
                key_id: sub.key.legacy_key_id(),
                expires_at: expiry(sub.key.created_at().as_secs(), binding),
                revoked: revoked || self.keys.iter().any(|k| k.cert == index && k.revoked),
            });
        }
        self.certs.push(cert);
        self.sources.push(source.to_owned());
    }

    /// Returns the fingerprints (upper-case hex) of the primary keys, in load order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| format!("{:X}", c.primary_key.fingerprint()))
            .collect()
    }

    /// Returns the keys whose key ID or fingerprint matches one of the signature's issuers.
    pub(crate) fn issuers_of<'a>(&'a self, sig: &Signature) -> Vec<&'a KeyEntry> {
        let ids = sig.issuer_key_id();
        let fps = sig.issuer_fingerprint();
        self.keys
            .iter()
            .filter(|k| ids.contains(&&k.key_id) || fps.contains(&&k.fingerprint))
            .collect()
    }

    /// Returns the key material of an entry.
    pub(crate) fn key(&self, entry: &KeyEntry) -> KeyRef<'_> {
        let cert = &self.certs[entry.cert];
        match entry.subkey {
            None => KeyRef::Primary(&cert.primary_key),
            Some(i) => KeyRef::Sub(&cert.public_subkeys[i].key),
        }
    }

    /// Returns the primary fingerprint (upper-case hex) of the certificate an entry is in.
    pub(crate) fn cert_fingerprint(&self, entry: &KeyEntry) -> String {
        format!("{:X}", self.certs[entry.cert].primary_key.fingerprint())
    }
}

/// Returns the newest user-ID self-signature that verifies against the primary key.
fn newest_valid_self_signature(cert: &SignedPublicKey) -> Option<&Signature> {
    let primary = &cert.primary_key;
    let fp = primary.fingerprint();
    let id = primary.legacy_key_id();
    let (fp, id) = (&fp, &id);
    cert.details
        .users
        .iter()
        .flat_map(|user| {
            user.signatures.iter().filter(move |sig| {
                (sig.issuer_fingerprint().contains(&fp) || sig.issuer_key_id().contains(&id))
                    && sig
                        .verify_certification(primary, Tag::UserId, &user.id)
                        .is_ok()
            })
        })
        .max_by_key(|s| s.created().map(|t| t.as_secs()))
}

fn expiry(created: u32, sig: &Signature) -> Option<i64> {
    sig.key_expiration_time()
        .map(|d| d.as_secs())
        .filter(|&secs| secs > 0)
        .map(|secs| i64::from(created) + i64::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../golden-base/keyrings")
            .join(name)
    }

    #[test]
    fn debian_trixie_keyrings_load_with_their_signing_subkeys() {
        let ring = Keyring::load(&[
            pinned("debian-archive-trixie-automatic.gpg"),
            pinned("debian-archive-trixie-stable.gpg"),
        ])
        .unwrap();
        assert_eq!(
            ring.fingerprints(),
            [
                "04B54C3CDCA79751B16BC6B5225629DF75B188BD",
                "41587F7DB8C774BCCF131416762F67A0B2C39DE4"
            ]
        );
        let subkey = ring
            .keys
            .iter()
            .find(|k| format!("{:X}", k.fingerprint) == "B8E5F13176D2A7A75220028078DBA3BC47EF2265")
            .expect("the automatic key's signing subkey");
        assert!(!subkey.revoked);
        assert!(subkey.expires_at.is_some());
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let err = Keyring::from_bytes("junk.gpg", b"not a key").unwrap_err();
        assert!(err.to_string().contains("`junk.gpg`"), "{err}");
    }
}
