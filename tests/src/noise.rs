//! Deterministic test bytes.

/// Returns `n` bytes of deterministic noise seeded by `seed` (xorshift64, so it is
/// incompressible and layer or blob sizes are not trivially small).
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
