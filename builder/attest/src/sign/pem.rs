//! PEM (RFC 7468) blocks, read leniently the way Go's `encoding/pem` and openssl do.
//!
//! Key files met in practice carry more than one block (`openssl ecparam -genkey` writes
//! `EC PARAMETERS` before `EC PRIVATE KEY`), CRLF line ends, or text around the blocks,
//! so this scans for every block rather than demanding the whole input be exactly one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::SignError;

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// The label between `BEGIN ` and `-----`.
    pub(crate) label: String,
    /// The base64-decoded body.
    pub(crate) der: Vec<u8>,
}

/// Returns every PEM block in `input`, in order.
pub(crate) fn decode_all(input: &[u8]) -> Result<Vec<Block>, SignError> {
    let text = String::from_utf8_lossy(input);
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = armor(line, "BEGIN") else {
            continue;
        };
        let mut body = String::new();
        let mut ended = false;
        for line in lines.by_ref() {
            if let Some(end) = armor(line, "END") {
                if end != label {
                    return Err(pem_error(label, format!("ends with `-----END {end}-----`")));
                }
                ended = true;
                break;
            }
            if line.contains(':') {
                // RFC 1421 headers only appear in openssl's legacy encrypted keys
                // (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: ...`).
                return Err(pem_error(
                    label,
                    "has RFC 1421 headers (openssl's legacy key encryption), which kiln does not read; hint: convert it with `openssl pkcs8 -topk8 -nocrypt`, or import it with `cosign import-key-pair`".to_string(),
                ));
            }
            body.push_str(line);
        }
        if !ended {
            return Err(pem_error(label, "has no END line".to_string()));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| pem_error(label, format!("body is not base64: {e}")))?;
        blocks.push(Block {
            label: label.to_string(),
            der,
        });
    }
    Ok(blocks)
}

/// Returns `der` as a PEM block: 64-column base64 lines, LF line ends, a final newline
/// (byte for byte what Go's `pem.EncodeToMemory` writes).
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        // base64 output is ASCII, so any byte split is a char split.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Formats the labels found, for [`SignError::NoPemBlock`].
pub(crate) fn found_labels(blocks: &[Block]) -> String {
    if blocks.is_empty() {
        return "; the input has no pem blocks at all".to_string();
    }
    let labels: Vec<String> = blocks.iter().map(|b| format!("`{}`", b.label)).collect();
    format!("; found {}", labels.join(", "))
}

/// Returns the label of a `-----BEGIN X-----` / `-----END X-----` line.
fn armor<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_prefix(kind)?
        .strip_prefix(' ')?
        .strip_suffix("-----")
}

fn pem_error(label: &str, reason: String) -> SignError {
    SignError::Pem {
        label: label.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_wraps_at_64_columns_and_decodes_back() {
        let der: Vec<u8> = (0..=255).collect();
        let pem = encode("PUBLIC KEY", &der);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.ends_with("\n-----END PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(pem.lines().nth(1).map(str::len), Some(64));
        let blocks = decode_all(pem.as_bytes()).unwrap();
        assert_eq!(
            blocks,
            vec![Block {
                label: "PUBLIC KEY".to_string(),
                der
            }]
        );
    }

    #[test]
    fn several_blocks_crlf_and_surrounding_text() {
        let input = "comment\r\n-----BEGIN EC PARAMETERS-----\r\nBggqhkjOPQMBBw==\r\n-----END EC PARAMETERS-----\r\n\r\n-----BEGIN X-----\r\nAAEC\r\n-----END X-----\r\n";
        let blocks = decode_all(input.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "EC PARAMETERS");
        assert_eq!(blocks[1].der, vec![0, 1, 2]);
    }

    #[test]
    fn rejects_mismatched_end_missing_end_headers_and_bad_base64() {
        for input in [
            "-----BEGIN A-----\nAAEC\n-----END B-----\n",
            "-----BEGIN A-----\nAAEC\n",
            "-----BEGIN A-----\nProc-Type: 4,ENCRYPTED\nAAEC\n-----END A-----\n",
            "-----BEGIN A-----\n!!!!\n-----END A-----\n",
        ] {
            let err = decode_all(input.as_bytes()).unwrap_err();
            assert!(
                matches!(err, SignError::Pem { ref label, .. } if label == "A"),
                "{err}"
            );
        }
    }

    #[test]
    fn found_labels_names_what_was_there() {
        assert_eq!(found_labels(&[]), "; the input has no pem blocks at all");
        let b = Block {
            label: "CERTIFICATE".to_string(),
            der: vec![],
        };
        assert_eq!(found_labels(&[b]), "; found `CERTIFICATE`");
    }
}
