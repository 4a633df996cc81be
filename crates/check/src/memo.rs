//! The memo: configurations the search reached, and the dominance test that prunes repeats.
//!
//! Owns: [`Memo`], an open-addressing hash table over arenas. A configuration is (the set of
//! completed operations linearized, the set of never-returned operations linearized, the
//! model state). Configuration `Y` dominates `X` when both have the same completed set and
//! state and `Y`'s never-returned set is a subset of `X`'s: every way to finish from `X` also
//! finishes from `Y` (a never-returned operation need not be linearized at all, and it never
//! bounds which operation may come next). So `X` is pruned when a dominating `Y` was reached
//! before; with no never-returned operations this is porcupine's exact-repeat memo.
//!
//! The completed set is stored compactly: every completed operation invoked before the first
//! one not linearized is linearized, so the set is that first index plus the few linearized
//! operations after it (at most about the history's concurrency).
//!
//! Must never: prune on a hash alone (hashes only pick slots; sets and states are compared
//! exactly), or forget an entry before the search ends.

use crate::rules::StateId;

/// The reached configurations of one key's search.
pub(crate) struct Memo {
    pending_words: usize,
    /// Entry index + 1 per slot, 0 when empty; the length is a power of two.
    slots: Vec<u32>,
    hashes: Vec<u64>,
    states: Vec<StateId>,
    /// Where each entry's completed set starts in `sets`.
    set_at: Vec<usize>,
    /// The completed sets, each `[len, first open index, linearized indexes after it...]`.
    sets: Vec<u32>,
    /// The never-returned sets, `pending_words` bits per entry.
    pending: Vec<u64>,
}

impl Memo {
    pub(crate) fn new(pending_words: usize) -> Self {
        Memo {
            pending_words,
            slots: vec![0; 1024],
            hashes: Vec::new(),
            states: Vec::new(),
            set_at: Vec::new(),
            sets: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.hashes.capacity() * 8
            + self.states.capacity() * 4
            + self.set_at.capacity() * 8
            + self.sets.capacity() * 4
            + self.pending.capacity() * 8
    }

    /// Number of configurations held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Records the configuration unless a dominating one is already present; `true` if it
    /// was recorded (the search should explore it). `hash` must be a function of `set` and
    /// `state` only.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        state: StateId,
        set: &[u32],
        pending: &[u64],
    ) -> bool {
        debug_assert_eq!(pending.len(), self.pending_words);
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let at = self.slots[slot];
            if at == 0 {
                break;
            }
            let e = (at - 1) as usize;
            if self.hashes[e] == hash
                && self.states[e] == state
                && self.set(e) == set
                && self
                    .pending_of(e)
                    .iter()
                    .zip(pending)
                    .all(|(&old, &new)| old & !new == 0)
            {
                return false;
            }
            slot = (slot + 1) & mask;
        }
        let e = self.hashes.len();
        self.slots[slot] = u32::try_from(e + 1).expect("fewer than 2^32 memo entries");
        self.hashes.push(hash);
        self.states.push(state);
        self.set_at.push(self.sets.len());
        self.sets
            .push(u32::try_from(set.len()).expect("a small set"));
        self.sets.extend_from_slice(set);
        self.pending.extend_from_slice(pending);
        if 2 * self.hashes.len() > self.slots.len() {
            self.grow();
        }
        true
    }

    fn set(&self, e: usize) -> &[u32] {
        let at = self.set_at[e];
        &self.sets[at + 1..at + 1 + self.sets[at] as usize]
    }

    fn pending_of(&self, e: usize) -> &[u64] {
        &self.pending[e * self.pending_words..(e + 1) * self.pending_words]
    }

    fn grow(&mut self) {
        let len = self.slots.len() * 2;
        let mask = len - 1;
        let mut slots = vec![0u32; len];
        for (e, &hash) in self.hashes.iter().enumerate() {
            let mut slot = hash as usize & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = e as u32 + 1;
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_repeats_are_refused_and_hash_collisions_are_not_confused() {
        let mut memo = Memo::new(0);
        assert!(memo.insert(7, 1, &[3, 5], &[]));
        assert!(!memo.insert(7, 1, &[3, 5], &[]));
        assert!(memo.insert(7, 1, &[3, 6], &[]), "same hash, different set");
        assert!(memo.insert(7, 2, &[3, 5], &[]), "same set, different state");
        for i in 0..5000u32 {
            assert!(memo.insert(
                u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                0,
                &[i],
                &[]
            ));
        }
        for i in 0..5000u32 {
            assert!(!memo.insert(
                u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                0,
                &[i],
                &[]
            ));
        }
        assert_eq!(memo.len(), 5003);
    }

    #[test]
    fn a_configuration_with_fewer_pending_operations_dominates() {
        let mut memo = Memo::new(1);
        assert!(memo.insert(1, 0, &[4], &[0b0101]));
        assert!(
            !memo.insert(1, 0, &[4], &[0b0111]),
            "a superset is dominated"
        );
        assert!(memo.insert(1, 0, &[4], &[0b0001]), "a subset is new");
        assert!(
            !memo.insert(1, 0, &[4], &[0b1001]),
            "dominated by the subset"
        );
        assert!(memo.insert(1, 0, &[4], &[0b1000]), "incomparable");
        assert!(memo.insert(1, 0, &[5], &[0b0101]), "another completed set");
    }
}
