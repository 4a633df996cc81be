//! [`SessionPool`]: exactly-once sessions, one write at a time each.
//!
//! The server applies a write whose `(client_id, seq)` has `seq` above the last one applied
//! for that client, answers a repeat of the last `seq` with its stored reply, refuses an older
//! one, and refuses an unknown client whose `seq` is above 1 (its session expired). So a
//! session may have at most one write outstanding, every retry of that write repeats its
//! `seq`, and a new write takes the next `seq`.
//!
//! Owns: the idle sessions (a `Mutex<Vec<_>>`, at most `idle_max`), fresh random nonzero
//! client ids, and the rule for when a session goes back to the pool: only once the server
//! has confirmed one of its writes (before that, the server may not know the client, and
//! `seq` 2 would be refused as expired), and never after the server said it expired.
//! Must never: hand one session to two writes at once, or give two different writes the
//! same `(client_id, seq)` — the second would get the first one's reply.

use std::sync::Mutex;

use proto::raftkv_v1::Session;

/// One client id and the last sequence number it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SessionState {
    client_id: u64,
    /// The last `seq` handed to a write (confirmed or not).
    seq: u64,
    /// The server applied one of this session's writes, so it knows the client.
    confirmed: bool,
}

/// Sessions waiting for their next write.
#[derive(Debug)]
pub(crate) struct SessionPool {
    idle: Mutex<Vec<SessionState>>,
    idle_max: usize,
}

impl SessionPool {
    pub fn new(idle_max: usize) -> SessionPool {
        SessionPool {
            idle: Mutex::new(Vec::new()),
            idle_max,
        }
    }

    /// A session for one write, with its next `seq` already taken: an idle one when there is
    /// one, else a fresh client id starting at `seq` 1.
    pub fn lease(&self) -> SessionLease<'_> {
        let idle = self.lock().pop();
        let mut state = idle.unwrap_or_else(fresh);
        state.seq += 1;
        SessionLease {
            pool: self,
            state,
            expired: false,
        }
    }

    /// A lease on a fresh client id (`seq` 1), whatever is idle.
    pub fn lease_fresh(&self) -> SessionLease<'_> {
        let mut state = fresh();
        state.seq = 1;
        SessionLease {
            pool: self,
            state,
            expired: false,
        }
    }

    /// Idle sessions, for tests.
    #[cfg(test)]
    fn idle_len(&self) -> usize {
        self.lock().len()
    }

    fn give_back(&self, state: SessionState) {
        let mut idle = self.lock();
        if idle.len() < self.idle_max {
            idle.push(state);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SessionState>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fresh() -> SessionState {
    let client_id = loop {
        let id: u64 = rand::random();
        if id != 0 {
            break id;
        }
    };
    SessionState {
        client_id,
        seq: 0,
        confirmed: false,
    }
}

/// One write's hold on a session. Dropping it (success, failure, or the caller giving up on
/// the future) returns the session to the pool when that is safe and discards it otherwise.
#[derive(Debug)]
pub(crate) struct SessionLease<'a> {
    pool: &'a SessionPool,
    state: SessionState,
    expired: bool,
}

impl SessionLease<'_> {
    /// What every attempt of this write carries.
    pub fn session(&self) -> Session {
        Session {
            client_id: self.state.client_id,
            seq: self.state.seq,
        }
    }

    /// The server applied (or answered from its cache) this write.
    pub fn confirm(&mut self) {
        self.state.confirmed = true;
    }

    /// The server no longer knows this session: never use it again.
    pub fn expire(&mut self) {
        self.expired = true;
    }
}

impl Drop for SessionLease<'_> {
    fn drop(&mut self) {
        // An unconfirmed session may be unknown to the server; its next seq (2) would be
        // refused as expired. A confirmed one is known: whatever happened to this write, the
        // next seq is above anything the server has applied for it.
        if self.state.confirmed && !self.expired {
            self.pool.give_back(self.state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmed_session_is_reused_with_the_next_seq() {
        let pool = SessionPool::new(4);
        let mut first = pool.lease();
        let s1 = first.session();
        assert_eq!(s1.seq, 1);
        assert_ne!(s1.client_id, 0);
        first.confirm();
        drop(first);
        let second = pool.lease();
        assert_eq!(second.session().client_id, s1.client_id);
        assert_eq!(second.session().seq, 2);
    }

    #[test]
    fn two_leases_at_once_never_share_a_client_id() {
        let pool = SessionPool::new(4);
        let a = pool.lease();
        let b = pool.lease();
        assert_ne!(a.session().client_id, b.session().client_id);
    }

    #[test]
    fn unconfirmed_and_expired_sessions_are_discarded() {
        let pool = SessionPool::new(4);
        drop(pool.lease()); // never confirmed: the server may not know it
        assert_eq!(pool.idle_len(), 0);
        let mut lease = pool.lease();
        lease.confirm();
        lease.expire();
        drop(lease);
        assert_eq!(pool.idle_len(), 0);
    }

    #[test]
    fn a_failed_write_of_a_confirmed_session_still_advances_its_seq() {
        let pool = SessionPool::new(4);
        let mut lease = pool.lease();
        lease.confirm();
        let id = lease.session().client_id;
        drop(lease);
        let failed = pool.lease(); // seq 2: outcome unknown, dropped without confirm
        assert_eq!(failed.session().seq, 2);
        drop(failed);
        // Not confirmed this time, but the session was confirmed before: reused, seq 3.
        let next = pool.lease();
        assert_eq!((next.session().client_id, next.session().seq), (id, 3));
    }

    #[test]
    fn the_pool_keeps_at_most_idle_max() {
        let pool = SessionPool::new(2);
        let mut leases: Vec<_> = (0..5).map(|_| pool.lease()).collect();
        leases.iter_mut().for_each(SessionLease::confirm);
        drop(leases);
        assert_eq!(pool.idle_len(), 2);
    }
}
