//! [`Sessions`]: exactly-once writes for clients that number their commands.
//!
//! Owns: per client id, the highest sequence number applied and its encoded reply, the
//! decision a numbered command gets ([`Admission`]), and the bounded table's eviction.
//! Must never: depend on anything but the applied log (no clock, no hash-map order), so every
//! node keeps, evicts and answers exactly alike; or apply a command whose earlier try may have
//! been applied and forgotten.
//!
//! The rules, for a command `(client_id, seq)`:
//! - `seq == 0` is refused ([`crate::KvError::InvalidSequence`]): sequences start at 1;
//! - known client, `seq > last`: applied, and its reply replaces the stored one (gaps are
//!   allowed: a client may give up on a sequence number that never committed);
//! - known client, `seq == last`: not applied again, the stored reply is returned byte for byte;
//! - known client, `seq < last`: not applied, [`crate::KvError::StaleSequence`];
//! - unknown client, `seq == 1`: a new session, applied;
//! - unknown client, `seq > 1`: not applied, [`crate::KvError::SessionExpired`] — its session
//!   was evicted (or never existed), so an earlier try may have been applied; applying it
//!   again could apply it twice. (This is the Raft dissertation's §6.3 answer to expiry.)
//!
//! Expiry: at most `sessions_max` clients are kept. Each session remembers the log index of
//! the last command that touched it (applied, or answered from the cache); when a new session
//! would exceed the bound, the one with the lowest such index is evicted. Log indexes are
//! the same on every node and each index touches one session, so eviction is deterministic.
//! `sessions_max` must be the same on every node of a cluster.

use bytes::Bytes;
use raft::LogIndex;
use std::collections::BTreeMap;

/// One client's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Highest sequence number applied.
    pub last_seq: u64,
    /// The encoded result of `last_seq`.
    pub reply: Bytes,
    /// Log index of the last command of this client that was applied or answered.
    pub last_index: LogIndex,
}

/// What to do with a numbered command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Apply it, then [`Sessions::record`] its reply.
    Apply,
    /// Already applied: answer with this reply.
    Duplicate(Bytes),
    /// Older than the last applied sequence.
    Stale { last_seq: u64 },
    /// Unknown client with `seq > 1`.
    Expired,
    /// `seq == 0`.
    Invalid,
}

/// The session table: client id → [`Session`], bounded by `sessions_max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sessions {
    by_client: BTreeMap<u64, Session>,
    /// `(last_index, client_id)` of every session: the eviction order.
    by_index: BTreeMap<(LogIndex, u64), ()>,
    sessions_max: usize,
}

impl Sessions {
    /// An empty table that keeps at most `sessions_max` (at least 1) clients.
    pub fn new(sessions_max: usize) -> Self {
        assert!(sessions_max >= 1, "sessions_max must be at least 1");
        Sessions {
            by_client: BTreeMap::new(),
            by_index: BTreeMap::new(),
            sessions_max,
        }
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    pub fn sessions_max(&self) -> usize {
        self.sessions_max
    }

    /// One client's session.
    pub fn get(&self, client_id: u64) -> Option<&Session> {
        self.by_client.get(&client_id)
    }

    /// Every session, by client id.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Session)> {
        self.by_client.iter().map(|(&id, s)| (id, s))
    }

    /// Decide what the command `(client_id, seq)` at log `index` gets. A duplicate counts as
    /// a use of the session (it moves to the back of the eviction order).
    pub fn admit(&mut self, client_id: u64, seq: u64, index: LogIndex) -> Admission {
        if seq == 0 {
            return Admission::Invalid;
        }
        let Some(s) = self.by_client.get(&client_id) else {
            return if seq == 1 {
                Admission::Apply
            } else {
                Admission::Expired
            };
        };
        match seq.cmp(&s.last_seq) {
            std::cmp::Ordering::Greater => Admission::Apply,
            std::cmp::Ordering::Equal => {
                let reply = s.reply.clone();
                self.touch(client_id, index);
                Admission::Duplicate(reply)
            }
            std::cmp::Ordering::Less => Admission::Stale {
                last_seq: s.last_seq,
            },
        }
    }

    /// Remember `reply` as the result of `(client_id, seq)` applied at log `index`, evicting
    /// the least recently used session if the table is over its bound.
    pub fn record(&mut self, client_id: u64, seq: u64, index: LogIndex, reply: Bytes) {
        let session = Session {
            last_seq: seq,
            reply,
            last_index: index,
        };
        if let Some(old) = self.by_client.insert(client_id, session) {
            assert!(seq > old.last_seq, "sequence numbers only grow");
            assert!(index > old.last_index, "log indexes only grow");
            self.by_index.remove(&(old.last_index, client_id));
        }
        self.by_index.insert((index, client_id), ());
        while self.by_client.len() > self.sessions_max {
            let (&(_, evicted), _) = self.by_index.first_key_value().expect("non-empty");
            self.remove(evicted);
        }
        self.check_invariants();
    }

    /// Insert a session as read from a snapshot. Returns false if the client is already there.
    pub(crate) fn insert_restored(&mut self, client_id: u64, s: Session) -> bool {
        if self.by_client.contains_key(&client_id) {
            return false;
        }
        self.by_index.insert((s.last_index, client_id), ());
        self.by_client.insert(client_id, s);
        true
    }

    /// Evict down to the bound (after a restore into a table with a smaller bound).
    pub(crate) fn enforce_bound(&mut self) {
        while self.by_client.len() > self.sessions_max {
            let (&(_, evicted), _) = self.by_index.first_key_value().expect("non-empty");
            self.remove(evicted);
        }
        self.check_invariants();
    }

    fn touch(&mut self, client_id: u64, index: LogIndex) {
        let s = self
            .by_client
            .get_mut(&client_id)
            .expect("touched session exists");
        assert!(index > s.last_index, "log indexes only grow");
        self.by_index.remove(&(s.last_index, client_id));
        s.last_index = index;
        self.by_index.insert((index, client_id), ());
    }

    fn remove(&mut self, client_id: u64) {
        let s = self
            .by_client
            .remove(&client_id)
            .expect("removed session exists");
        self.by_index.remove(&(s.last_index, client_id));
    }

    fn check_invariants(&self) {
        assert_eq!(
            self.by_client.len(),
            self.by_index.len(),
            "session indexes agree"
        );
        assert!(
            self.by_client.len() <= self.sessions_max,
            "session table over its bound"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_follows_the_sequence_rules() {
        let mut s = Sessions::new(10);
        assert_eq!(s.admit(7, 0, LogIndex(1)), Admission::Invalid);
        assert_eq!(s.admit(7, 2, LogIndex(1)), Admission::Expired);
        assert_eq!(s.admit(7, 1, LogIndex(1)), Admission::Apply);
        s.record(7, 1, LogIndex(1), Bytes::from_static(b"r1"));
        assert_eq!(
            s.admit(7, 1, LogIndex(2)),
            Admission::Duplicate(Bytes::from_static(b"r1"))
        );
        assert_eq!(s.admit(7, 5, LogIndex(3)), Admission::Apply);
        s.record(7, 5, LogIndex(3), Bytes::from_static(b"r5"));
        assert_eq!(s.admit(7, 4, LogIndex(4)), Admission::Stale { last_seq: 5 });
        assert_eq!(s.get(7).unwrap().last_index, LogIndex(3));
    }

    #[test]
    fn eviction_at_the_bound_drops_the_least_recently_used() {
        let mut s = Sessions::new(2);
        s.record(1, 1, LogIndex(1), Bytes::new());
        s.record(2, 1, LogIndex(2), Bytes::new());
        // Client 1 retries: a use, so client 2 is now the least recently used.
        assert!(matches!(
            s.admit(1, 1, LogIndex(3)),
            Admission::Duplicate(_)
        ));
        s.record(3, 1, LogIndex(4), Bytes::new());
        assert_eq!(s.len(), 2);
        assert!(s.get(1).is_some() && s.get(3).is_some());
        assert!(s.get(2).is_none());
        // Client 2 comes back mid-stream: its earlier commands may have applied.
        assert_eq!(s.admit(2, 2, LogIndex(5)), Admission::Expired);
    }
}
