use serde::Serialize;

/// Why a value could not be turned into canonical JSON.
#[derive(Debug, thiserror::Error)]
#[error("serializing to canonical JSON")]
pub struct CanonicalError(#[from] serde_json::Error);

/// Returns `value` as canonical JSON: object keys sorted, no insignificant whitespace.
///
/// Every manifest, index and config kiln writes goes through this before it is hashed,
/// so the same content always has the same digest whatever order fields were set in.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    // serde_json::Value keeps objects in a BTreeMap (no `preserve_order` feature in this
    // workspace), so a round trip through it sorts every level's keys.
    let value = serde_json::to_value(value)?;
    Ok(serde_json::to_vec(&value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_at_every_level() {
        #[derive(Serialize)]
        struct Inner {
            z: u8,
            a: u8,
        }
        #[derive(Serialize)]
        struct Outer {
            y: Inner,
            b: &'static str,
        }
        let out = canonical_json(&Outer {
            y: Inner { z: 1, a: 2 },
            b: "x",
        })
        .unwrap();
        assert_eq!(out, br#"{"b":"x","y":{"a":2,"z":1}}"#);
    }
}
