//! `/metrics` in the Prometheus text format (version 0.0.4), written by hand: every family
//! has `# HELP` and `# TYPE`, histograms are cumulative with `le` buckets, `_sum` and
//! `_count`. Per-peer families carry `peer` (member id, hex) and `peer_name`.
//!
//! | family | type | meaning |
//! |---|---|---|
//! | `raftkv_term` | gauge | current term |
//! | `raftkv_role{role}` | gauge | 1 for this member's role (`follower`, `pre_candidate`, `candidate`, `leader`), 0 for the others |
//! | `raftkv_has_leader` | gauge | 1 when a leader is known |
//! | `raftkv_commit_index`, `raftkv_applied_index`, `raftkv_last_index`, `raftkv_snapshot_index` | gauge | log positions |
//! | `raftkv_leader_changes_total` | counter | times this member saw a new leader |
//! | `raftkv_proposals_total` | counter | proposals handed to this member's core (writes; forwarded ones count at the leader) |
//! | `raftkv_proposals_failed_total{reason}` | counter | `not_leader`, `transfer_in_progress`, `busy`, `lost`, `outcome_unknown`, `stopped` |
//! | `raftkv_proposals_pending` | gauge | proposals in the log not yet applied |
//! | `raftkv_apply_latency_seconds` | histogram | proposal handed to the core → its entry applied (leader) |
//! | `raftkv_wal_fsync_duration_seconds` | histogram | one `fdatasync` of a WAL segment or snapshot file (timed around the call, on the sync thread) |
//! | `raftkv_election_elapsed_ticks`, `raftkv_election_timeout_ticks` | gauge | the election timer estimate (see [`crate::admin`]) and E |
//! | `raftkv_peer_sent_total{peer,peer_name,type}` | counter | messages handed to the transport, by message type |
//! | `raftkv_peer_received_total{peer,peer_name}` | counter | messages received from the peer |
//! | `raftkv_peer_last_heard_seconds{peer,peer_name}` | gauge | since the last message from the peer (absent: never) |
//! | `raftkv_peer_match_index`, `raftkv_peer_lag_entries`, `raftkv_peer_inflight_entries` `{peer,peer_name}` | gauge | leader only: highest index the peer acknowledged, last index − match, entries sent above match |
//! | `raftkv_transport_sent_total`, `raftkv_transport_received_total` | counter | peer messages queued / received |
//! | `raftkv_transport_dropped_total{reason}` | counter | `queue_full`, `oversize` |
//! | `raftkv_transport_rejected_connections_total`, `raftkv_transport_bad_frames_total` | counter | refused peer connections, bad frames |
//! | `raftkv_events_sampled_out_total` | counter | message events the dashboard tap's rate limit left out |
//! | `raftkv_watchers` | gauge | watchers registered on this member (Watch API) |
//! | `raftkv_watch_oldest_start_revision` | gauge | the oldest revision a new watch may start at here (the window of recent events) |
//!
//! Owns: the family names and their rendering. Must never: take a lock the node loop takes.

use super::telemetry::{FailReason, Histogram, MsgKind};
use super::{hex, role_str, Admin};
use raft::Role;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {v}");
        }
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, "", v);
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, "histogram", help);
        let (buckets, sum, count) = h.snapshot();
        for (le, n) in buckets {
            let le = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                le.to_string()
            };
            self.sample(&format!("{name}_bucket"), &format!("le=\"{le}\""), n);
        }
        self.sample(&format!("{name}_sum"), "", sum);
        self.sample(&format!("{name}_count"), "", count);
    }
}

/// Label values are member names and fixed words; escape what the format requires anyway.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole `/metrics` page.
pub fn render(a: &Admin) -> String {
    let st = a.handle().status();
    let tel = a.telemetry();
    let mut o = Out(String::with_capacity(8 << 10));
    o.one("raftkv_term", "gauge", "Current Raft term.", st.term);
    o.family("raftkv_role", "gauge", "1 for this member's current role.");
    for r in [
        Role::Follower,
        Role::PreCandidate,
        Role::Candidate,
        Role::Leader,
    ] {
        let v = u8::from(st.role == r);
        o.sample("raftkv_role", &format!("role=\"{}\"", role_str(r)), v);
    }
    o.one(
        "raftkv_has_leader",
        "gauge",
        "1 when this member knows a leader.",
        u8::from(st.leader.is_some()),
    );
    o.one(
        "raftkv_commit_index",
        "gauge",
        "Highest log index known committed.",
        st.commit,
    );
    o.one(
        "raftkv_applied_index",
        "gauge",
        "Highest log index applied to the state machine.",
        st.applied,
    );
    o.one(
        "raftkv_last_index",
        "gauge",
        "Last log index.",
        st.last_index,
    );
    o.one(
        "raftkv_snapshot_index",
        "gauge",
        "Last index covered by the current snapshot.",
        st.snapshot_index,
    );
    if let Some(hub) = a.watch() {
        o.one(
            "raftkv_watchers",
            "gauge",
            "Watchers registered on this member.",
            hub.watchers(),
        );
        o.one(
            "raftkv_watch_oldest_start_revision",
            "gauge",
            "Oldest revision a new watch may start at on this member.",
            hub.window_from(),
        );
    }
    o.one(
        "raftkv_leader_changes_total",
        "counter",
        "Times this member saw a new leader.",
        tel.leader_changes.load(Relaxed),
    );
    o.one(
        "raftkv_proposals_total",
        "counter",
        "Proposals handed to this member's consensus core.",
        tel.proposals.load(Relaxed),
    );
    o.family(
        "raftkv_proposals_failed_total",
        "counter",
        "Proposals that failed, by reason.",
    );
    for (i, r) in FailReason::ALL.iter().enumerate() {
        let v = tel.proposals_failed[i].load(Relaxed);
        o.sample(
            "raftkv_proposals_failed_total",
            &format!("reason=\"{}\"", r.as_str()),
            v,
        );
    }
    o.one(
        "raftkv_proposals_pending",
        "gauge",
        "Proposals in the log, not yet applied.",
        tel.proposals_pending.load(Relaxed),
    );
    o.histogram(
        "raftkv_apply_latency_seconds",
        "From a proposal handed to the core to its entry applied (on the leader).",
        &tel.apply_latency,
    );
    o.histogram(
        "raftkv_wal_fsync_duration_seconds",
        "One fdatasync of a WAL segment or snapshot file.",
        &tel.fsync,
    );
    o.one(
        "raftkv_election_elapsed_ticks",
        "gauge",
        "Estimated ticks since this member last heard a leader, granted a vote or changed role.",
        tel.election_elapsed.load(Relaxed),
    );
    o.one(
        "raftkv_election_timeout_ticks",
        "gauge",
        "E: a follower campaigns after a random [E, 2E) ticks without a leader.",
        tel.timing.election_ticks,
    );
    peers(&mut o, a, st.role == Role::Leader, st.last_index);
    transport(&mut o, a);
    o.one(
        "raftkv_events_sampled_out_total",
        "counter",
        "Message events the dashboard tap's rate limit left out.",
        tel.events_sampled_out.load(Relaxed),
    );
    o.0
}

fn peers(o: &mut Out, a: &Admin, leader: bool, last_index: u64) {
    let tel = a.telemetry();
    let tracked = tel.peers();
    let labels: Vec<String> = tracked
        .iter()
        .map(|(id, _)| {
            format!(
                "peer=\"{}\",peer_name=\"{}\"",
                hex(*id),
                esc(&a.name_of(*id))
            )
        })
        .collect();
    let peers: Vec<&super::telemetry::PeerTelemetry> = tracked.iter().map(|(_, p)| *p).collect();
    o.family(
        "raftkv_peer_sent_total",
        "counter",
        "Messages handed to the transport for the peer, by type.",
    );
    for (p, l) in peers.iter().zip(&labels) {
        for (i, k) in MsgKind::ALL.iter().enumerate() {
            let v = p.sent[i].load(Relaxed);
            o.sample(
                "raftkv_peer_sent_total",
                &format!("{l},type=\"{}\"", k.as_str()),
                v,
            );
        }
    }
    o.family(
        "raftkv_peer_received_total",
        "counter",
        "Messages received from the peer.",
    );
    for (p, l) in peers.iter().zip(&labels) {
        o.sample("raftkv_peer_received_total", l, p.received.load(Relaxed));
    }
    o.family(
        "raftkv_peer_last_heard_seconds",
        "gauge",
        "Seconds since the last message from the peer.",
    );
    let tick_s = tel.timing.tick.as_secs_f64();
    for (p, l) in peers.iter().zip(&labels) {
        if let Some(t) = tel.ticks_since(p.heard_tick.load(Relaxed)) {
            o.sample("raftkv_peer_last_heard_seconds", l, t as f64 * tick_s);
        }
    }
    if !leader {
        return;
    }
    type Get = fn(&super::telemetry::PeerTelemetry, u64) -> u64;
    let leader_families: [(&str, &str, Get); 3] = [
        (
            "raftkv_peer_match_index",
            "Leader: highest log index the peer acknowledged.",
            |p, _| p.match_index.load(Relaxed),
        ),
        (
            "raftkv_peer_lag_entries",
            "Leader: its last index minus the peer's match index.",
            |p, last| last.saturating_sub(p.match_index.load(Relaxed)),
        ),
        (
            "raftkv_peer_inflight_entries",
            "Leader: entries sent to the peer above its match index.",
            |p, _| {
                p.sent_index
                    .load(Relaxed)
                    .saturating_sub(p.match_index.load(Relaxed))
            },
        ),
    ];
    for (name, help, f) in leader_families {
        o.family(name, "gauge", help);
        for (p, l) in peers.iter().zip(&labels) {
            o.sample(name, l, f(p, last_index));
        }
    }
}

fn transport(o: &mut Out, a: &Admin) {
    let s = a.stats();
    o.one(
        "raftkv_transport_sent_total",
        "counter",
        "Peer messages queued for sending.",
        s.sent.load(Relaxed),
    );
    o.one(
        "raftkv_transport_received_total",
        "counter",
        "Peer messages received.",
        s.received.load(Relaxed),
    );
    o.family(
        "raftkv_transport_dropped_total",
        "counter",
        "Peer messages dropped before sending, by reason.",
    );
    o.sample(
        "raftkv_transport_dropped_total",
        "reason=\"queue_full\"",
        s.dropped_queue_full.load(Relaxed),
    );
    o.sample(
        "raftkv_transport_dropped_total",
        "reason=\"oversize\"",
        s.dropped_oversize.load(Relaxed),
    );
    o.one(
        "raftkv_transport_rejected_connections_total",
        "counter",
        "Peer connections refused (bad hello).",
        s.rejected_connections.load(Relaxed),
    );
    o.one(
        "raftkv_transport_bad_frames_total",
        "counter",
        "Peer frames refused (oversized, undecodable, wrong sender).",
        s.bad_frames.load(Relaxed),
    );
}
