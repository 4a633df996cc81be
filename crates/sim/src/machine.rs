//! [`NodeMachine`]: what every simulated node applies its committed entries to — the
//! recorder ([`SimStateMachine`], for the Figure-3 checks and the Raft-level scenarios) and,
//! when the cluster runs the KV service ([`crate::SimConfig::kv`]), the real
//! [`KvStateMachine`] next to it.
//!
//! Every entry goes to both; the reply a waiting client gets is the KV machine's (the
//! recorder's otherwise). A snapshot carries both:
//!
//! ```text
//! recorder only:  <recorder snapshot>                       (unchanged from before)
//! with KV:        recorder_len u32 LE | <recorder snapshot> | <kv snapshot>
//! ```
//!
//! With KV the recorder snapshots in [`Recording::Digest`] form (24 bytes), so the snapshot's
//! size is the KV state's plus a constant — what the 6.824 4B size bounds are about.
//!
//! Owns: the pairing of the two machines and the snapshot envelope.
//! Must never: let the two machines see different entries, or interpret command bytes itself.

use crate::app::{Recording, SimStateMachine};
use bytes::{BufMut, Bytes, BytesMut};
use kv::{KvConfig, KvStateMachine};
use raft::{Entry, EntryKind, LogIndex, Term};
use replica::StateMachine;

/// One node's application: the recorder, plus the KV state machine when the cluster runs one.
#[derive(Debug)]
pub struct NodeMachine {
    recorder: SimStateMachine,
    kv: Option<KvStateMachine>,
}

impl NodeMachine {
    /// The recorder alone, with full snapshots (the Raft-level simulator).
    pub fn recording() -> Self {
        NodeMachine {
            recorder: SimStateMachine::new(),
            kv: None,
        }
    }

    /// The KV state machine, with a digest-snapshot recorder beside it.
    pub fn with_kv(config: KvConfig) -> Self {
        NodeMachine {
            recorder: SimStateMachine::with_recording(Recording::Digest),
            kv: Some(KvStateMachine::new(config)),
        }
    }

    /// What `SimConfig::kv` asks for.
    pub fn for_config(kv: Option<KvConfig>) -> Self {
        kv.map_or_else(NodeMachine::recording, NodeMachine::with_kv)
    }

    /// The recorder of every applied entry.
    pub fn recorder(&self) -> &SimStateMachine {
        &self.recorder
    }

    /// The KV state machine, if this node runs one.
    pub fn kv(&self) -> Option<&KvStateMachine> {
        self.kv.as_ref()
    }
}

impl StateMachine for NodeMachine {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Bytes {
        // Only reached if a driver bypasses `apply_entry`; the term is then unknown.
        self.apply_entry(&Entry {
            term: Term(0),
            index,
            kind: EntryKind::Normal,
            data: Bytes::copy_from_slice(data),
        })
    }

    fn apply_entry(&mut self, entry: &Entry) -> Bytes {
        let recorded = self.recorder.apply_entry(entry);
        match &mut self.kv {
            Some(kv) => kv.apply_entry(entry),
            None => recorded,
        }
    }

    fn snapshot(&self) -> Bytes {
        let Some(kv) = &self.kv else {
            return self.recorder.snapshot();
        };
        let rec = self.recorder.snapshot();
        let kv = kv.snapshot();
        let mut b = BytesMut::with_capacity(4 + rec.len() + kv.len());
        b.put_u32_le(rec.len() as u32);
        b.put_slice(&rec);
        b.put_slice(&kv);
        b.freeze()
    }

    fn restore(&mut self, data: &[u8]) {
        let Some(kv) = &mut self.kv else {
            return self.recorder.restore(data);
        };
        assert!(
            data.len() >= 4,
            "corrupt node snapshot: {} bytes",
            data.len()
        );
        let (len, rest) = data.split_at(4);
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        assert!(
            len <= rest.len(),
            "corrupt node snapshot: recorder length {len}"
        );
        let (rec, kv_bytes) = rest.split_at(len);
        self.recorder.restore(rec);
        kv.restore(kv_bytes);
        assert_eq!(
            kv.applied_index(),
            self.recorder.applied_index(),
            "the two machines of a snapshot disagree on the applied index"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv::{decode_result, Command, PutRequest, RangeRequest, Response};

    fn entry(index: u64, data: Bytes) -> Entry {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            kind: EntryKind::Normal,
            data,
        }
    }

    #[test]
    fn kv_replies_and_both_machines_survive_a_snapshot() {
        let mut m = NodeMachine::with_kv(KvConfig::default());
        m.apply_entry(&Entry {
            kind: EntryKind::Noop,
            ..entry(1, Bytes::new())
        });
        let put = Command::with_session(PutRequest::new("k", "v"), 7, 1).encode();
        let reply = m.apply_entry(&entry(2, put));
        assert!(matches!(decode_result(&reply), Ok(Ok(Response::Put(_)))));
        let snap = m.snapshot();
        assert!(
            snap.len() < 200,
            "a one-key snapshot is small: {}",
            snap.len()
        );
        let mut other = NodeMachine::with_kv(KvConfig::default());
        other.restore(&snap);
        assert_eq!(other.recorder().applied_index(), LogIndex(2));
        assert_eq!(other.recorder().chain(), m.recorder().chain());
        let got = other.kv().unwrap().read(&RangeRequest::key("k")).unwrap();
        assert_eq!(got.kvs[0].value, "v");
    }

    #[test]
    fn without_kv_the_snapshot_is_the_recorders() {
        let mut m = NodeMachine::recording();
        m.apply_entry(&entry(1, Bytes::from_static(b"x")));
        let mut rec = SimStateMachine::new();
        rec.apply_entry(&entry(1, Bytes::from_static(b"x")));
        assert_eq!(m.snapshot(), rec.snapshot());
        assert_eq!(m.apply_entry(&entry(2, Bytes::new())).len(), 8);
    }
}
