//! `InRelease`: the `Release` file of a suite wrapped in an OpenPGP cleartext signature.
//! [`InRelease::verify`] is the only way kiln turns repository metadata into trust.
//!
//! What is refused, each with its own error:
//! - anything but one cleartext-signed message: unsigned text, bytes before
//!   `-----BEGIN PGP SIGNED MESSAGE-----` or after `-----END PGP SIGNATURE-----` (apt's rule
//!   too: a parser that read the unsigned part could be fed anything);
//! - no signature whose issuer is in the keyring (signatures by other keys are ignored when
//!   one trusted signature verifies, as apt does with the archive's several keys);
//! - a signature by a trusted key that does not verify, that uses MD5, SHA-1, RIPEMD-160 or
//!   SHA-224, that has expired, or whose key is expired or revoked at `now`;
//! - a `Release` whose `Valid-Until` is before `now` or whose `Date` is more than 10 s after
//!   it.
//!
//! Messages carry apt's status words (`NO_PUBKEY`, `BADSIG`, `EXPKEYSIG`...) so they read
//! like the `apt update` failures operators know.
//!
//! Only the signed text is parsed: the returned [`Release`] comes from the bytes the
//! signature covers (dash-unescaped, trailing blanks trimmed, as RFC 9580 hashes them).
//!
//! Spec: RFC 9580 §7 "Cleartext Signature Framework"
//! (<https://www.rfc-editor.org/rfc/rfc9580.html#name-cleartext-signature-framewo>),
//! <https://wiki.debian.org/DebianRepository/Format#A.22Release.22_files>.

use pgp::composed::CleartextSignedMessage;
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use sha2::{Digest, Sha256};

use crate::keyring::{KeyRef, Keyring};
use crate::release::{Release, ReleaseError, format_date};

const BEGIN_MESSAGE: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

/// A verified `InRelease`.
#[derive(Clone, Debug)]
pub struct InRelease {
    /// The `Release` parsed from the signed text.
    pub release: Release,
    /// The signed text, with `\n` line endings.
    pub signed_text: String,
    /// The lower-case hex SHA-256 of the whole `InRelease` file as downloaded.
    pub sha256: String,
    /// The primary-key fingerprints (upper-case hex) of the trusted keys whose signatures
    /// verified, in signature order.
    pub signers: Vec<String>,
}

/// Why an `InRelease` was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InReleaseError {
    /// The bytes are not UTF-8 text.
    #[error("`InRelease` is not UTF-8 text")]
    NotText,
    /// The text is not a cleartext-signed message at all.
    #[error(
        "the repository is not signed: `InRelease` does not start with `{BEGIN_MESSAGE}`; \
         updating from such a repository can't be done securely, and kiln has no option to \
         allow it"
    )]
    Unsigned,
    /// Bytes outside the signed message, or a second armor block.
    #[error("`InRelease` has content {place} the signed message; only signed text is accepted")]
    ContentOutside {
        /// `before`, `after` or `inside (a second armor block)`.
        place: &'static str,
    },
    /// The OpenPGP framing or packets do not parse.
    #[error("parsing the signature of `InRelease`: {0}")]
    Malformed(String),
    /// The message carries no signature packet.
    #[error("`InRelease` carries no signature")]
    NoSignature,
    /// No signature was made by a key in the keyring.
    #[error(
        "the signatures of `InRelease` couldn't be verified because the public key is not \
         available: NO_PUBKEY {issuers}; the keyring pinned for this suite holds {keyring}"
    )]
    UnknownKey {
        /// The issuer key IDs / fingerprints, formatted.
        issuers: String,
        /// The keyring's primary fingerprints, formatted.
        keyring: String,
    },
    /// A trusted key's signature uses a broken hash algorithm.
    #[error(
        "`InRelease` signature by `{key}` uses weak digest algorithm `{hash}`, which kiln \
         refuses (only SHA-256 or stronger)"
    )]
    WeakHash {
        /// The signing key's fingerprint.
        key: String,
        /// The hash algorithm's name.
        hash: String,
    },
    /// A trusted key's signature does not verify: the text was altered or the signature forged.
    #[error(
        "the signature of `InRelease` is invalid: BADSIG `{key}`: it does not verify (the text \
         was altered or the signature forged): {reason}"
    )]
    BadSignature {
        /// The signing key's fingerprint.
        key: String,
        /// What the verifier said.
        reason: String,
    },
    /// A signature is not a text or binary document signature.
    #[error("`InRelease` signature by `{key}` has type `{typ}`, not a document signature")]
    WrongSignatureType {
        /// The signing key's fingerprint.
        key: String,
        /// The signature type, formatted.
        typ: String,
    },
    /// The signature or the key is past its expiry, or the key is revoked.
    #[error("the signature of `InRelease` is invalid: {code} `{key}`: {what} at `{when}`")]
    NotValidNow {
        /// apt's status word: `EXPKEYSIG`, `EXPSIG` or `REVKEYSIG`.
        code: &'static str,
        /// The signing key's fingerprint.
        key: String,
        /// `the key expired`, `the signature expired` or `the key is revoked`.
        what: &'static str,
        /// The time, formatted.
        when: String,
    },
    /// The signed text is not a valid `Release` or is outside its validity window.
    #[error(transparent)]
    Release(#[from] ReleaseError),
}

impl InRelease {
    /// Verifies `bytes` against `keyring` at time `now` (Unix seconds, from the caller) and
    /// returns the parsed, verified `Release`.
    pub fn verify(bytes: &[u8], keyring: &Keyring, now: i64) -> Result<InRelease, InReleaseError> {
        let text = std::str::from_utf8(bytes).map_err(|_| InReleaseError::NotText)?;
        let framed = check_framing(text)?;
        let (msg, _headers) = CleartextSignedMessage::from_string(framed)
            .map_err(|e| InReleaseError::Malformed(e.to_string()))?;
        if msg.signatures().is_empty() {
            return Err(InReleaseError::NoSignature);
        }
        check_hash_headers(framed, msg.signatures())?;
        let signed = msg.signed_text();
        let mut signers = Vec::new();
        let mut unknown = Vec::new();
        for sig in msg.signatures() {
            match check_signature(sig, keyring, signed.as_bytes(), now)? {
                Some(fingerprint) => signers.push(fingerprint),
                None => unknown.push(issuer_names(sig)),
            }
        }
        if signers.is_empty() {
            return Err(InReleaseError::UnknownKey {
                issuers: unknown.join(", "),
                keyring: keyring
                    .fingerprints()
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut signed_text = signed.replace("\r\n", "\n");
        if !signed_text.ends_with('\n') {
            signed_text.push('\n');
        }
        let release = Release::parse(&signed_text)?;
        release.check_time(now)?;
        Ok(InRelease {
            release,
            signed_text,
            sha256: hex::encode(Sha256::digest(bytes)),
            signers,
        })
    }
}

/// Requires exactly: the message header first, one signature block, nothing but whitespace
/// after it, and no other armor line (a dash-escaped body never starts a line with `-----`).
/// Returns the text up to the end of the signature block (rpgp 0.21 mistakes trailing blank
/// lines for data).
fn check_framing(text: &str) -> Result<&str, InReleaseError> {
    let first = text.lines().next().unwrap_or("");
    if first.trim_end() != BEGIN_MESSAGE {
        return Err(if text.contains(BEGIN_MESSAGE) {
            InReleaseError::ContentOutside { place: "before" }
        } else {
            InReleaseError::Unsigned
        });
    }
    let armor: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("-----"))
        .map(|(i, l)| (i, l.trim_end()))
        .collect();
    match armor.as_slice() {
        [
            (0, BEGIN_MESSAGE),
            (_, BEGIN_SIGNATURE),
            (last, END_SIGNATURE),
        ] => {
            if text.lines().skip(last + 1).any(|l| !l.trim().is_empty()) {
                return Err(InReleaseError::ContentOutside { place: "after" });
            }
            let end = text
                .rfind(END_SIGNATURE)
                .map_or(text.len(), |i| i + END_SIGNATURE.len());
            Ok(&text[..end])
        }
        [(0, BEGIN_MESSAGE), (_, BEGIN_SIGNATURE)] => Err(InReleaseError::Malformed(format!(
            "no `{END_SIGNATURE}` line"
        ))),
        [(0, BEGIN_MESSAGE)] => Err(InReleaseError::NoSignature),
        [_, _, (_, END_SIGNATURE), ..] => Err(InReleaseError::ContentOutside { place: "after" }),
        _ => Err(InReleaseError::ContentOutside {
            place: "inside (a second armor block)",
        }),
    }
}

/// Refuses `Hash:` armor headers that do not name every signature's digest algorithm:
/// the header is not signed, and a reader that believed it over the signature (GnuPG calls
/// it a "signature digest conflict") would be judging another message than the one checked.
fn check_hash_headers(framed: &str, signatures: &[Signature]) -> Result<(), InReleaseError> {
    let mut declared = Vec::new();
    for line in framed.lines().skip(1).take_while(|l| !l.trim().is_empty()) {
        if let Some(names) = line.strip_prefix("Hash:") {
            declared.extend(names.split(',').map(|n| n.trim().to_ascii_uppercase()));
        }
    }
    if declared.is_empty() {
        return Ok(());
    }
    for sig in signatures {
        let used = sig
            .hash_alg()
            .map_or_else(|| "unknown".to_owned(), |h| h.to_string());
        if !declared.contains(&used.to_ascii_uppercase()) {
            return Err(InReleaseError::Malformed(format!(
                "the `Hash` header names {} but a signature uses `{used}`; the message is \
                 ambiguous",
                declared
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// Returns `Some(primary fingerprint)` when a trusted key made `sig` and it verifies, `None`
/// when no trusted key made it, and an error when a trusted key's signature is unacceptable.
fn check_signature(
    sig: &Signature,
    keyring: &Keyring,
    signed: &[u8],
    now: i64,
) -> Result<Option<String>, InReleaseError> {
    let candidates = keyring.issuers_of(sig);
    let Some(first) = candidates.first() else {
        return Ok(None);
    };
    let key = format!("{:X}", first.fingerprint);
    let hash = sig.hash_alg();
    if !matches!(
        hash,
        Some(
            HashAlgorithm::Sha256
                | HashAlgorithm::Sha384
                | HashAlgorithm::Sha512
                | HashAlgorithm::Sha3_256
                | HashAlgorithm::Sha3_512
        )
    ) {
        return Err(InReleaseError::WeakHash {
            key,
            hash: hash.map_or_else(|| "unknown".to_owned(), |h| h.to_string()),
        });
    }
    if !matches!(sig.typ(), Some(SignatureType::Text | SignatureType::Binary)) {
        return Err(InReleaseError::WrongSignatureType {
            key,
            typ: format!("{:?}", sig.typ()),
        });
    }
    let mut last_error = String::new();
    for entry in candidates {
        let verified = match keyring.key(entry) {
            KeyRef::Primary(k) => sig.verify(k, signed),
            KeyRef::Sub(k) => sig.verify(k, signed),
        };
        let key = format!("{:X}", entry.fingerprint);
        match verified {
            Ok(()) => {
                let created = sig.created().map_or(0, |t| i64::from(t.as_secs()));
                if let Some(lifetime) = sig.signature_expiration_time().map(|d| d.as_secs())
                    && lifetime > 0
                    && created + i64::from(lifetime) < now
                {
                    return Err(not_valid(
                        "EXPSIG",
                        key,
                        "the signature expired",
                        created + i64::from(lifetime),
                    ));
                }
                if entry.revoked {
                    return Err(not_valid("REVKEYSIG", key, "the key is revoked", now));
                }
                if let Some(expiry) = entry.expires_at
                    && expiry < now
                {
                    return Err(not_valid("EXPKEYSIG", key, "the key expired", expiry));
                }
                return Ok(Some(keyring.cert_fingerprint(entry)));
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(InReleaseError::BadSignature {
        key,
        reason: last_error,
    })
}

fn not_valid(code: &'static str, key: String, what: &'static str, when: i64) -> InReleaseError {
    InReleaseError::NotValidNow {
        code,
        key,
        what,
        when: format_date(when),
    }
}

fn issuer_names(sig: &Signature) -> String {
    let mut names: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| format!("`{f:X}`"))
        .collect();
    if names.is_empty() {
        names = sig
            .issuer_key_id()
            .iter()
            .map(|id| format!("`{}`", id.to_string().to_uppercase()))
            .collect();
    }
    if names.is_empty() {
        "`(no issuer)`".to_owned()
    } else {
        names.join(" ")
    }
}
