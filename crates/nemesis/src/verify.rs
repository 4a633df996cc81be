//! The verdict: final reads, the linearizability check, the append audit, replica agreement.
//!
//! Owns: reading every key once more at the end (linearizable reads, recorded in the same
//! history, so the checker also judges the final state), running [`check::check_with`] on the
//! whole history within a time budget, and the append audit — on a log key, whose only
//! writes are appends of unique tokens, the final value must hold every acknowledged token
//! exactly once, every pending token at most once, and nothing that was never appended. It
//! also compares the members' own (serializable) copies of every key once they applied the
//! same index: replicas must be identical, revisions included.
//!
//! Must never: retry a final read as something else than a fresh recorded read, or count an
//! operation that never returned as lost (it may legally never have applied).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use check::{check_with, CheckConfig, CheckResult, Input, Operation, Output, TimedHistory};
use client::Client;

use crate::workload::{client_config, recorded, Fate, ReadMode, LOG_PREFIX};
use crate::Error;

/// History client id of the final reads.
pub const VERIFIER_CLIENT_ID: u64 = 2000;

/// Every key any operation of `ops` touched, in byte order.
pub fn keys_of(ops: &[Operation]) -> Vec<Vec<u8>> {
    let keys: BTreeSet<Vec<u8>> = ops.iter().map(|op| op.input.key().to_vec()).collect();
    keys.into_iter().collect()
}

/// Reads each of `keys` through `endpoints` with a recorded linearizable `Get`, retrying a
/// failed read until `deadline` passes. Returns key → final value.
pub async fn final_reads(
    endpoints: &[String],
    history: &TimedHistory,
    keys: &[Vec<u8>],
    request_timeout: Duration,
    deadline: Duration,
) -> Result<BTreeMap<Vec<u8>, Option<Vec<u8>>>, Error> {
    let until = Instant::now() + deadline;
    let client = Client::connect(client_config(endpoints, request_timeout, request_timeout))
        .await
        .map_err(Error::Client)?;
    let mut values = BTreeMap::new();
    for key in keys {
        loop {
            let read = Input::get(key.clone());
            let fate = recorded(
                history,
                &client,
                VERIFIER_CLIENT_ID,
                read,
                ReadMode::Linearizable,
            )
            .await;
            match fate {
                Fate::Returned(Output::Value(value)) => {
                    values.insert(key.clone(), value);
                    break;
                }
                Fate::Returned(other) => unreachable!("a get returned {other:?}"),
                Fate::NoEffect { category, detail } | Fate::Unknown { category, detail } => {
                    if Instant::now() >= until {
                        return Err(Error::NotServing {
                            what: format!("final read of {}", String::from_utf8_lossy(key)),
                            waited: deadline,
                            last: detail.unwrap_or(category),
                        });
                    }
                }
            }
        }
    }
    Ok(values)
}

/// The checker's verdict over a whole history, key by key.
#[derive(Clone, Debug, Default)]
pub struct Linearizability {
    /// Operations checked (completed and pending; cancelled ones are not in the history).
    pub ops: usize,
    /// Keys checked.
    pub keys: usize,
    /// Keys whose history is not linearizable, with the checker's explanation.
    pub illegal: Vec<(String, String)>,
    /// Keys the checker could not decide within the budget, with its reason.
    pub undecided: Vec<(String, String)>,
    /// Search steps over all keys.
    pub steps: u64,
    /// Time the checker took.
    pub elapsed: Duration,
}

impl Linearizability {
    /// Every key proven linearizable.
    pub fn ok(&self) -> bool {
        self.illegal.is_empty() && self.undecided.is_empty()
    }
}

/// Runs [`check::check_with`] on each key's operations (the history is linearizable iff each
/// key's is; checking them one by one counts every illegal key, not only the first), all
/// within `budget`: keys left when it runs out are undecided.
pub fn linearizability(ops: &[Operation], budget: Duration) -> Linearizability {
    let started = Instant::now();
    let until = started + budget;
    let mut by_key: BTreeMap<&[u8], Vec<Operation>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.input.key()).or_default().push(op.clone());
    }
    let mut verdict = Linearizability {
        ops: ops.len(),
        keys: by_key.len(),
        ..Linearizability::default()
    };
    for (key, key_ops) in by_key {
        let shown = String::from_utf8_lossy(key).into_owned();
        let report = check_with(&key_ops, &CheckConfig::default(), &mut || {
            Instant::now() >= until
        });
        verdict.steps += report.steps;
        match report.result {
            CheckResult::Ok => {}
            CheckResult::Illegal { explanation, .. } => verdict.illegal.push((shown, explanation)),
            CheckResult::Unknown { reason, .. } => verdict.undecided.push((shown, reason)),
        }
    }
    verdict.elapsed = started.elapsed();
    verdict
}

/// The append audit's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendAudit {
    /// Log keys audited.
    pub keys: usize,
    /// Appends acknowledged to the client.
    pub acknowledged: u64,
    /// Appends whose outcome is unknown.
    pub pending: u64,
    /// Pending appends that turned out applied (present once).
    pub pending_applied: u64,
    /// Acknowledged tokens missing from the final value (`key: token`).
    pub lost: Vec<String>,
    /// Tokens present more than once (`key: token ×n`).
    pub duplicated: Vec<String>,
    /// Tokens present that no operation appended, or bytes that are not tokens.
    pub phantom: Vec<String>,
}

impl AppendAudit {
    /// No lost, duplicated or phantom token.
    pub fn clean(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.phantom.is_empty()
    }
}

/// Audits every log key of `ops` against `finals` (see the module docs).
pub fn audit_appends(
    ops: &[Operation],
    finals: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> AppendAudit {
    // key → token → acknowledged?
    let mut appended: BTreeMap<&[u8], BTreeMap<&[u8], bool>> = BTreeMap::new();
    for op in ops {
        if let Input::Append { key, suffix } = &op.input {
            if !key.starts_with(LOG_PREFIX.as_bytes()) {
                continue;
            }
            let token = suffix.strip_suffix(b";").unwrap_or(suffix);
            let acked = appended
                .entry(key.as_slice())
                .or_default()
                .entry(token)
                .or_insert(false);
            *acked |= op.is_completed();
        }
    }
    let mut audit = AppendAudit::default();
    let log_keys: BTreeSet<&[u8]> = appended
        .keys()
        .copied()
        .chain(
            finals
                .keys()
                .map(Vec::as_slice)
                .filter(|k| k.starts_with(LOG_PREFIX.as_bytes())),
        )
        .collect();
    let empty = BTreeMap::new();
    for key in log_keys {
        audit.keys += 1;
        let tokens = appended.get(key).unwrap_or(&empty);
        let shown_key = String::from_utf8_lossy(key);
        let value = finals.get(key).cloned().flatten().unwrap_or_default();
        let (present, junk) = split_tokens(&value);
        if let Some(junk) = junk {
            audit.phantom.push(format!(
                "{shown_key}: trailing bytes {:?} are not a token",
                String::from_utf8_lossy(junk)
            ));
        }
        for (token, &acked) in tokens {
            let count = present.get(token).copied().unwrap_or(0);
            let shown = String::from_utf8_lossy(token);
            if acked {
                audit.acknowledged += 1;
            } else {
                audit.pending += 1;
                if count >= 1 {
                    audit.pending_applied += 1;
                }
            }
            if acked && count == 0 {
                audit
                    .lost
                    .push(format!("{shown_key}: {shown} (acknowledged)"));
            }
            if count > 1 {
                let how = if acked { "acknowledged" } else { "pending" };
                audit
                    .duplicated
                    .push(format!("{shown_key}: {shown} ×{count} ({how})"));
            }
        }
        for token in present.keys() {
            if !tokens.contains_key(token) {
                audit.phantom.push(format!(
                    "{shown_key}: {} was never appended",
                    String::from_utf8_lossy(token)
                ));
            }
        }
    }
    audit
}

/// Splits a log value into token counts; the second item is a tail not ended by `;`.
fn split_tokens(value: &[u8]) -> (BTreeMap<&[u8], u64>, Option<&[u8]>) {
    let mut counts = BTreeMap::new();
    let mut rest = value;
    while let Some(end) = rest.iter().position(|&b| b == b';') {
        *counts.entry(&rest[..end]).or_insert(0) += 1;
        rest = &rest[end + 1..];
    }
    (counts, (!rest.is_empty()).then_some(rest))
}

/// Differences between replicas: for each key on which some member differs from the
/// first, one line naming the members and what they hold. At most `max` lines.
pub fn replica_differences(
    names: &[String],
    states: &[crate::observe::ReplicaState],
    max: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let keys: BTreeSet<&Vec<u8>> = states.iter().flat_map(|s| s.keys()).collect();
    for key in keys {
        let held: Vec<_> = states.iter().map(|s| s.get(key)).collect();
        if held.iter().all(|h| *h == held[0]) {
            continue;
        }
        if out.len() == max {
            out.push("…".to_string());
            break;
        }
        let shown: Vec<String> = names
            .iter()
            .zip(&held)
            .map(|(name, h)| match h {
                Some((value, create, modified, version)) => format!(
                    "{name}={:?} (create {create}, mod {modified}, version {version})",
                    String::from_utf8_lossy(value)
                ),
                None => format!("{name}=absent"),
            })
            .collect();
        out.push(format!(
            "{}: {}",
            String::from_utf8_lossy(key),
            shown.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(key: &str, token: &str, acked: bool) -> Operation {
        let input = Input::append(key, format!("{token};"));
        if acked {
            Operation::completed(1, input, Output::Written, 0, 1)
        } else {
            Operation::pending(1, input, 0)
        }
    }

    fn finals(pairs: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn acknowledged_tokens_must_appear_once_and_pending_ones_at_most_once() {
        let ops = vec![
            append("log/0/0", "c1-1", true),
            append("log/0/0", "c1-2", false),
            append("log/0/0", "c2-1", false),
        ];
        let audit = audit_appends(&ops, &finals(&[("log/0/0", "c1-1;c2-1;")]));
        assert!(audit.clean(), "{audit:?}");
        assert_eq!(
            (audit.acknowledged, audit.pending, audit.pending_applied),
            (1, 2, 1)
        );
    }

    #[test]
    fn lost_duplicated_and_phantom_tokens_are_reported() {
        let ops = vec![
            append("log/0/0", "c1-1", true),
            append("log/0/0", "c1-2", true),
            append("log/0/0", "c2-1", false),
        ];
        let audit = audit_appends(&ops, &finals(&[("log/0/0", "c1-2;c2-1;c2-1;c9-9;c3")]));
        assert_eq!(audit.lost, ["log/0/0: c1-1 (acknowledged)"]);
        assert_eq!(audit.duplicated, ["log/0/0: c2-1 ×2 (pending)"]);
        assert_eq!(
            audit.phantom,
            [
                "log/0/0: trailing bytes \"c3\" are not a token",
                "log/0/0: c9-9 was never appended"
            ]
        );
    }

    #[test]
    fn a_log_key_never_read_counts_as_empty() {
        let ops = vec![append("log/0/1", "c1-1", true)];
        let audit = audit_appends(&ops, &BTreeMap::new());
        assert_eq!(audit.lost, ["log/0/1: c1-1 (acknowledged)"]);
    }
}
