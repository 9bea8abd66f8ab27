//! Byte-string interning: each distinct key is stored once and named by a dense `u32` id, so
//! per-record work on an already-seen key is one hash probe and no allocation, and per-date
//! distinct-host sets can be plain `Vec<u32>`.

use super::TRUNCATED_MARK;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::borrow::Cow;
use std::hash::BuildHasher;

/// `bytes` itself when at most `max` bytes long; otherwise its first bytes and
/// [`TRUNCATED_MARK`], at most `max` bytes in all (`max` is meant to be far above the mark's
/// three bytes). The cut backs off to a UTF-8 character
/// boundary, so text stays valid text. Applied to every key as it is observed, it keeps merges
/// exact: equal inputs give equal cut keys whatever the split.
#[inline]
pub fn bounded(bytes: &[u8], max: usize) -> Cow<'_, [u8]> {
    if bytes.len() <= max {
        return Cow::Borrowed(bytes);
    }
    let mark = TRUNCATED_MARK.as_bytes();
    let mut cut = max.saturating_sub(mark.len());
    // A continuation byte (0b10xx_xxxx) never starts a character; a character has at most three.
    for _ in 0..3 {
        if cut > 0 && bytes[cut] & 0xc0 == 0x80 {
            cut -= 1;
        }
    }
    Cow::Owned([&bytes[..cut], mark].concat())
}

/// Key bytes kept in the entry itself rather than behind a pointer.
const INLINE: usize = 38;

/// A key as an entry holds it. Most hosts and endpoints fit in [`INLINE`] bytes, so a lookup
/// that finds its entry compares the key from the same cache lines instead of missing the
/// cache once more on a separately allocated key (a third of the aggregation's cost was
/// waiting for those, BENCHMARKS.md).
#[derive(Clone)]
pub enum Key {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

impl Key {
    #[inline]
    pub fn new(key: &[u8]) -> Key {
        if key.len() > INLINE {
            return Key::Heap(Box::from(key));
        }
        let mut bytes = [0; INLINE];
        bytes[..key.len()].copy_from_slice(key);
        Key::Inline(key.len() as u8, bytes)
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline(len, bytes) => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }

    /// Bytes on the heap for this key, as glibc allocates them: length plus 8, rounded up to
    /// 16, at least 32.
    fn heap_bytes(&self) -> usize {
        match self {
            Key::Heap(b) if !b.is_empty() => (b.len() + 8).div_ceil(16).max(2) * 16,
            _ => 0,
        }
    }
}

/// Insertion-ordered map from byte keys to `V`; ids are indices in insertion order.
///
/// The hash table holds only ids and hashes keys out of `entries`, so each key is stored once,
/// in its entry when short ([`Key`]).
#[derive(Clone, Default)]
pub struct Interner<V> {
    entries: Vec<(Key, V)>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<V: Default> Interner<V> {
    /// The id of `key`, inserting it with a default value if new.
    #[inline]
    pub fn intern(&mut self, key: &[u8]) -> u32 {
        let hash = self.hasher.hash_one(key);
        match self.find(hash, key) {
            Some(id) => id,
            None => self.insert_new(hash, Key::new(key)),
        }
    }

    /// Like [`Interner::intern`] but reuses an owned key (merges move keys instead of copying).
    pub fn intern_owned(&mut self, key: Key) -> u32 {
        let hash = self.hasher.hash_one(key.as_bytes());
        match self.find(hash, key.as_bytes()) {
            Some(id) => id,
            None => self.insert_new(hash, key),
        }
    }

    /// The id of `key`, inserting it only while fewer than `cap` keys are held; `None` when the
    /// key is new and the interner is full (the caller folds it, see `super::caps`).
    pub fn intern_capped(&mut self, key: Key, cap: usize) -> Option<u32> {
        let hash = self.hasher.hash_one(key.as_bytes());
        match self.find(hash, key.as_bytes()) {
            Some(id) => Some(id),
            None if self.entries.len() < cap => Some(self.insert_new(hash, key)),
            None => None,
        }
    }

    /// Inserts a key known to be new; `None` if it already exists (used to reject corrupt input).
    pub fn insert_unique(&mut self, key: Key, val: V) -> Option<u32> {
        let before = self.len();
        let id = self.intern_owned(key);
        if self.len() == before {
            return None;
        }
        self.entries[id as usize].1 = val;
        Some(id)
    }

    /// The id of `key`, whose hash is `hash`, if held.
    #[inline]
    fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let entries = &self.entries;
        self.table
            .find(hash, |&id| entries[id as usize].0.as_bytes() == key)
            .copied()
    }

    #[cold]
    fn insert_new(&mut self, hash: u64, key: Key) -> u32 {
        let id = u32::try_from(self.entries.len())
            .expect("4 billion distinct keys would exhaust memory long before the u32 ids");
        self.entries.push((key, V::default()));
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table.insert_unique(hash, id, |&i| {
            hasher.hash_one(entries[i as usize].0.as_bytes())
        });
        id
    }
}

impl<V> Interner<V> {
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub fn key(&self, id: u32) -> &[u8] {
        self.entries[id as usize].0.as_bytes()
    }

    #[inline]
    pub fn val(&self, id: u32) -> &V {
        &self.entries[id as usize].1
    }

    #[inline]
    pub fn val_mut(&mut self, id: u32) -> &mut V {
        &mut self.entries[id as usize].1
    }

    /// Heap bytes held, from capacities: the entry vector, each long key's allocation (glibc's
    /// chunk: length plus 8, rounded up to 16, at least 32) and the hash table (a 4-byte id and
    /// a control byte per bucket, buckets at most 8/7 of the capacity rounded up to a power of 2).
    pub fn heap_bytes(&self) -> usize {
        let entries = self.entries.capacity() * std::mem::size_of::<(Key, V)>();
        let keys: usize = self.entries.iter().map(|(k, _)| k.heap_bytes()).sum();
        let buckets = (self.table.capacity() * 8 / 7).next_power_of_two();
        entries + keys + buckets * (std::mem::size_of::<u32>() + 1)
    }

    /// `(id, key, value)` in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8], &V)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, (k, v))| (i as u32, k.as_bytes(), v))
    }

    /// Ids sorted by key: a canonical order independent of insertion history.
    pub fn ids_by_key(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.entries.len() as u32).collect();
        ids.sort_unstable_by(|&a, &b| self.key(a).cmp(self.key(b)));
        ids
    }

    pub fn into_entries(self) -> impl Iterator<Item = (Key, V)> {
        self.entries.into_iter()
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Interner<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k.as_bytes()), v)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let mut i: Interner<u64> = Interner::default();
        let a = i.intern(b"a");
        let b = i.intern(b"bb");
        assert_eq!((a, b), (0, 1));
        assert_eq!(i.intern(b"a"), 0);
        assert_eq!(i.intern_owned(Key::new(b"bb")), 1);
        *i.val_mut(b) += 3;
        assert_eq!(*i.val(1), 3);
        assert_eq!(i.key(1), b"bb");
        assert_eq!(i.insert_unique(Key::new(b"a"), 9), None);
        assert_eq!(i.insert_unique(Key::new(b""), 9), Some(2));
        assert_eq!(i.ids_by_key(), vec![2, 0, 1]);
        assert_eq!(i.len(), 3);
        // Full at 3: known keys still resolve, a new one is refused and not inserted.
        assert_eq!(i.intern_capped(Key::new(b"bb"), 3), Some(1));
        assert_eq!(i.intern_capped(Key::new(b"new"), 3), None);
        assert_eq!(i.intern_capped(Key::new(b"new"), 4), Some(3));
        assert_eq!(i.len(), 4);
    }

    #[test]
    fn bounded_cuts_long_keys_at_a_character_boundary() {
        assert_eq!(&*bounded(b"abcdef", 6), b"abcdef");
        assert_eq!(&*bounded(b"abcdefg", 6), "abc\u{2026}".as_bytes());
        // "é" is two bytes: cutting after its first byte would split it.
        assert_eq!(&*bounded("aéééé".as_bytes(), 5), "a\u{2026}".as_bytes());
        assert_eq!(&*bounded("aéééé".as_bytes(), 6), "aé\u{2026}".as_bytes());
        assert_eq!(&*bounded("aéééé".as_bytes(), 7), "aé\u{2026}".as_bytes());
        assert_eq!(&*bounded(b"\xff\xff\xff\xff\xff", 4), b"\xff\xe2\x80\xa6");
        let once = bounded(&[b'x'; 5000], 2048).into_owned();
        assert_eq!(once.len(), 2048);
        assert_eq!(&*bounded(&once, 2048), &once[..]);
    }

    /// Keys on both sides of the inline length resolve, read back and move between interners.
    #[test]
    fn short_and_long_keys_alike() {
        let keys: Vec<Vec<u8>> = [1, 2, INLINE - 1, INLINE, INLINE + 1, 200]
            .iter()
            .flat_map(|&n| [vec![b'a'; n], vec![b'b'; n]])
            .collect();
        let mut i: Interner<u32> = Interner::default();
        for (n, k) in keys.iter().enumerate() {
            assert_eq!(i.intern(k), n as u32);
            *i.val_mut(n as u32) = n as u32;
        }
        for (n, k) in keys.iter().enumerate() {
            assert_eq!(i.intern(k), n as u32);
            assert_eq!(i.key(n as u32), &k[..]);
        }
        let mut j: Interner<u32> = Interner::default();
        for (key, v) in i.into_entries() {
            let id = j.intern_owned(key);
            assert_eq!(id, v, "moved in order");
            assert_eq!(j.key(id), &keys[v as usize][..]);
        }
        assert!(
            std::mem::size_of::<Key>() <= INLINE + 2,
            "a key is its inline bytes"
        );
    }

    #[test]
    fn survives_growth() {
        let mut i: Interner<()> = Interner::default();
        for n in 0..10_000u32 {
            assert_eq!(i.intern(n.to_string().as_bytes()), n);
        }
        for n in (0..10_000u32).rev() {
            assert_eq!(i.intern(n.to_string().as_bytes()), n);
        }
    }
}
