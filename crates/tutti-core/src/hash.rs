//! FNV-1a, 64 bits: Tutti's one stable hash. Fixed constants, so a value never depends on the process or the
//! machine (unlike `std`'s `RandomState`): split buckets, partitions, retry jitter and hashed text features
//! are the same on every run.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a hash fed in parts.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Fnv1a {
    #[inline]
    pub fn new() -> Fnv1a {
        Fnv1a(OFFSET_BASIS)
    }

    /// Starts from the offset basis mixed with `seed`, for families of independent hashes (0 is plain FNV-1a).
    #[inline]
    pub fn seeded(seed: u64) -> Fnv1a {
        Fnv1a(OFFSET_BASIS ^ seed)
    }

    #[inline]
    pub fn write(&mut self, bytes: &[u8]) -> &mut Fnv1a {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(PRIME);
        }
        self
    }

    #[inline]
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a::new()
    }
}

/// FNV-1a of `bytes`.
#[inline]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    Fnv1a::new().write(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(Fnv1a::new().write(b"foo").write(b"bar").finish(), fnv1a(b"foobar"));
        assert_eq!(Fnv1a::seeded(0).write(b"a").finish(), fnv1a(b"a"));
    }
}
