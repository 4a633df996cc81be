//! Looking at the cluster from outside: who leads, does it serve, have the replicas converged.
//!
//! Owns: leader discovery through `Maintenance.Status` (a member that names itself as leader;
//! the highest term wins when a stale leader has not stepped down yet), the availability
//! probe (one recorded `Put` through a chosen set of endpoints, within a deadline), the
//! convergence wait (every member applied the same index) and the per-member serializable
//! scan used to compare replicas.
//!
//! Every wait here is a poll with a bounded deadline. Must never: change the cluster (no
//! signals, no rules), or record anything in the history but its own probe writes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use check::{Input, Output, TimedHistory};
use client::{Client, KeyRange, StatusResponse};

use crate::workload::{client_config, write_fate, Fate};

/// How often a wait polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// One `Status` round over `urls` (asked at once, each bounded by `admin`'s request
/// timeout), in `urls` order.
pub async fn statuses(admin: &Client, urls: &[String]) -> Vec<Option<StatusResponse>> {
    let tasks: Vec<_> = urls
        .iter()
        .map(|url| {
            let admin = admin.clone();
            let url = url.clone();
            tokio::spawn(async move { admin.status(&url).await.ok() })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.ok().flatten());
    }
    out
}

/// The index in `urls` of the member that names itself leader with the highest term, among
/// those `eligible`.
pub fn leader_of(statuses: &[Option<StatusResponse>], eligible: &[bool]) -> Option<usize> {
    statuses
        .iter()
        .enumerate()
        .filter(|(i, _)| eligible[*i])
        .filter_map(|(i, s)| {
            let s = s.as_ref()?;
            let me = s.header.as_ref()?.member_id;
            (s.leader != 0 && s.leader == me).then_some((s.raft_term, i))
        })
        .max()
        .map(|(_, i)| i)
}

/// Polls until a leader among `eligible` shows up, or `deadline` passes.
pub async fn wait_leader(
    admin: &Client,
    urls: &[String],
    eligible: &[bool],
    deadline: Duration,
) -> Option<usize> {
    let until = Instant::now() + deadline;
    loop {
        let round = statuses(admin, urls).await;
        if let Some(leader) = leader_of(&round, eligible) {
            return Some(leader);
        }
        if Instant::now() + POLL_INTERVAL >= until {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// One `Put(key, value)` through `endpoints` only, recorded in `history` as `client_id`,
/// with `deadline` for the whole call. `Ok` is how long it took.
pub async fn probe_write(
    endpoints: &[String],
    history: &TimedHistory,
    client_id: u64,
    key: String,
    value: String,
    deadline: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let cfg = client_config(endpoints, deadline, Duration::from_secs(1));
    let client = Client::connect(cfg).await.map_err(|e| e.to_string())?;
    let input = Input::put(key.clone(), value.clone());
    let id = history.invoke(client_id, input);
    match client.put(key, value).await {
        Ok(_) => {
            history.complete(id, Output::Written);
            Ok(started.elapsed())
        }
        Err(err) => {
            if let Fate::NoEffect { .. } = write_fate(&err) {
                history.cancel(id);
            }
            Err(err.to_string())
        }
    }
}

/// Polls until every member in `urls` answers `Status` with the same applied index, equal to
/// the highest commit index seen. `Ok` is that index.
pub async fn wait_converged(
    admin: &Client,
    urls: &[String],
    deadline: Duration,
) -> Result<u64, String> {
    let until = Instant::now() + deadline;
    loop {
        let round = statuses(admin, urls).await;
        let applied: Vec<Option<u64>> = round
            .iter()
            .map(|s| s.as_ref().map(|s| s.raft_applied_index))
            .collect();
        let commit = round
            .iter()
            .flatten()
            .map(|s| s.raft_index)
            .max()
            .unwrap_or(0);
        if applied.iter().all(|a| *a == Some(commit)) {
            return Ok(commit);
        }
        if Instant::now() + POLL_INTERVAL >= until {
            let shown: Vec<String> = urls
                .iter()
                .zip(&applied)
                .map(|(url, a)| match a {
                    Some(a) => format!("{url} applied {a}"),
                    None => format!("{url} no answer"),
                })
                .collect();
            return Err(format!(
                "members did not converge within {deadline:?} (highest commit {commit}): {}",
                shown.join(", ")
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What one member holds: key → (value, create revision, mod revision, version).
pub type ReplicaState = BTreeMap<Vec<u8>, (Vec<u8>, i64, i64, i64)>;

/// Every key of the member at `url`, read locally (serializable) from that member alone.
pub async fn replica_state(url: &str, timeout: Duration) -> Result<ReplicaState, String> {
    let cfg = client_config(&[url.to_string()], timeout, timeout);
    let client = Client::connect(cfg).await.map_err(|e| e.to_string())?;
    let mut req = KeyRange::all().range_request();
    req.serializable = true;
    let resp = client.range(req).await.map_err(|e| e.to_string())?;
    Ok(resp
        .kvs
        .into_iter()
        .map(|kv| {
            (
                kv.key,
                (kv.value, kv.create_revision, kv.mod_revision, kv.version),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use client::ResponseHeader;

    fn status(member_id: u64, leader: u64, term: u64) -> Option<StatusResponse> {
        Some(StatusResponse {
            header: Some(ResponseHeader {
                member_id,
                ..ResponseHeader::default()
            }),
            leader,
            raft_term: term,
            ..StatusResponse::default()
        })
    }

    #[test]
    fn the_self_named_leader_of_the_highest_term_wins() {
        // Member 1 still thinks it leads term 3; member 3 leads term 4; member 2 is down.
        let round = vec![
            status(10, 10, 3),
            None,
            status(30, 30, 4),
            status(40, 30, 4),
        ];
        assert_eq!(leader_of(&round, &[true; 4]), Some(2));
        assert_eq!(leader_of(&round, &[true, true, false, true]), Some(0));
        assert_eq!(leader_of(&[status(10, 0, 5)], &[true]), None);
    }
}
