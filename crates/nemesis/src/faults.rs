//! The nemesis proper: fault episodes chosen by a seeded RNG.
//!
//! An episode injects one fault, checks that the majority side serves a write while the fault
//! lasts, holds the fault, heals it, checks that the whole cluster serves again, and lets the
//! workload run for a quiet period. Fault kinds ([`FaultKind`]) come in shuffled rounds, so any
//! [`FaultKind::ALL`]`.len()` consecutive episodes include each kind once.
//!
//! Owns: which member is hurt and how, for how long, and the availability verdicts of each
//! episode ([`Episode`]). Runs on the thread that owns the [`Cluster`] (see
//! [`crate::cluster`]); async work (status polls, probes) goes through the runtime handle.
//!
//! Must never: leave a fault in place when an episode ends (every episode heals, even when a
//! step fails), or judge linearizability (that is [`crate::verify`]).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use check::TimedHistory;
use client::Client;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::runtime::Runtime;

use crate::cluster::{Cluster, MemberState, UnexpectedExit};
use crate::firewall::Firewall;
use crate::observe::{probe_write, wait_leader};
use crate::stop::Stop;
use crate::Error;

/// History client id of the availability probes.
pub const PROBE_CLIENT_ID: u64 = 1000;

/// The kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL a random member, restart it after a pause.
    KillRandom,
    /// SIGKILL the leader, restart it after a pause.
    KillLeader,
    /// SIGSTOP the leader for longer than an election timeout, then SIGCONT.
    PauseLeader,
    /// Cut the leader off from every other member.
    IsolateLeader,
    /// Split the members 2 | 3 (the leader on either side).
    SplitMajority,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::KillRandom,
        FaultKind::KillLeader,
        FaultKind::PauseLeader,
        FaultKind::IsolateLeader,
        FaultKind::SplitMajority,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillRandom => "kill-random",
            FaultKind::KillLeader => "kill-leader",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::SplitMajority => "split-majority",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long faults last and how long the cluster may take to serve.
#[derive(Clone, Debug)]
pub struct FaultTiming {
    /// A killed member stays down for a random time in this range.
    pub kill_down: (Duration, Duration),
    /// A paused leader stays stopped this long (keep it above the election timeout).
    pub pause: (Duration, Duration),
    /// A partition lasts this long.
    pub partition: (Duration, Duration),
    /// After healing and serving again, the workload runs undisturbed this long.
    pub quiet: (Duration, Duration),
    /// The majority side must serve a write within this from the fault's start.
    pub majority_deadline: Duration,
    /// After healing, the cluster must serve a write within this.
    pub recovery_deadline: Duration,
    /// How long to look for a leader before hurting a random member instead.
    pub leader_deadline: Duration,
}

impl Default for FaultTiming {
    fn default() -> FaultTiming {
        let s = Duration::from_millis;
        FaultTiming {
            kill_down: (s(1000), s(3000)),
            pause: (s(1000), s(2500)),
            partition: (s(2000), s(4000)),
            quiet: (s(1000), s(2000)),
            majority_deadline: s(10_000),
            recovery_deadline: s(30_000),
            leader_deadline: s(5000),
        }
    }
}

/// What one episode did and saw.
#[derive(Clone, Debug)]
pub struct Episode {
    /// 1-based.
    pub index: usize,
    pub kind: FaultKind,
    /// What was done, e.g. "SIGKILL n3 (leader), down 2.1 s".
    pub action: String,
    /// How long after the fault was injected the majority side served a write (the probe
    /// starts then), or why it did not.
    pub majority_write: Result<Duration, String>,
    /// How long after healing the whole cluster served a write, or why it did not.
    pub recovery: Result<Duration, String>,
    /// Members that exited although not killed (server crashes), seen during the episode.
    pub unexpected_exits: Vec<UnexpectedExit>,
}

impl Episode {
    /// Whether the cluster stayed available as promised during this episode.
    pub fn available(&self) -> bool {
        self.majority_write.is_ok() && self.recovery.is_ok()
    }
}

/// The fault injector. Borrow the cluster and firewall for the run.
pub struct Nemesis<'a> {
    cluster: &'a mut Cluster,
    firewall: &'a mut Firewall,
    rt: &'a Runtime,
    admin: Client,
    history: Arc<TimedHistory>,
    rng: ChaCha8Rng,
    timing: FaultTiming,
    stop: Stop,
    round: Vec<FaultKind>,
    probes: u64,
    /// Whether the next 2 | 3 split puts the leader on the minority side (alternates, so
    /// two splits cover both placements).
    leader_in_minority: bool,
}

/// An injected fault: what, which members still form a majority, how long to hold it.
struct Injected {
    action: String,
    majority: Vec<usize>,
    hold: Duration,
}

impl<'a> Nemesis<'a> {
    /// A nemesis over `cluster`; `admin` asks for status (give it a short request timeout).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: &'a mut Cluster,
        firewall: &'a mut Firewall,
        rt: &'a Runtime,
        admin: Client,
        history: Arc<TimedHistory>,
        mut rng: ChaCha8Rng,
        timing: FaultTiming,
        stop: Stop,
    ) -> Nemesis<'a> {
        let leader_in_minority = rng.gen_bool(0.5);
        Nemesis {
            cluster,
            firewall,
            rt,
            admin,
            history,
            rng,
            timing,
            stop,
            round: Vec::new(),
            probes: 0,
            leader_in_minority,
        }
    }

    /// Runs episode `index` (1-based): inject, probe the majority, hold, heal, probe the
    /// whole cluster, stay quiet.
    pub fn episode(&mut self, index: usize) -> Result<Episode, Error> {
        let kind = self.next_kind();
        let injected = self.inject(kind);
        let outcome = injected.map(|injected| {
            let majority_urls: Vec<String> = injected
                .majority
                .iter()
                .map(|&i| self.cluster.spec(i).client_url())
                .collect();
            let probe = self.spawn_probe(majority_urls, index, self.timing.majority_deadline);
            self.stop.pause(injected.hold);
            let majority_write = self.rt.block_on(probe).expect("probe task panicked");
            (injected.action, majority_write)
        });
        // Heal whatever happened above.
        let mut exits = self.cluster.reap_unexpected_exits();
        self.heal()?;
        let (action, majority_write) = outcome?;
        let healed = Instant::now();
        let all = self.cluster.client_urls();
        let recovery = self
            .rt
            .block_on(self.spawn_probe(all, index, self.timing.recovery_deadline))
            .expect("probe task panicked")
            .map(|_| healed.elapsed());
        let quiet = self.between(self.timing.quiet);
        self.stop.pause(quiet);
        exits.extend(self.cluster.reap_unexpected_exits());
        if !exits.is_empty() {
            self.cluster.revive_all()?;
        }
        Ok(Episode {
            index,
            kind,
            action,
            majority_write,
            recovery,
            unexpected_exits: exits,
        })
    }

    /// Removes every fault: no partition rule, no stopped or killed member.
    pub fn heal(&mut self) -> Result<(), Error> {
        self.firewall.heal()?;
        self.cluster.revive_all()
    }

    fn next_kind(&mut self) -> FaultKind {
        if self.round.is_empty() {
            self.round = FaultKind::ALL.to_vec();
            self.round.shuffle(&mut self.rng);
        }
        self.round.pop().expect("a round is never empty")
    }

    /// Injects `kind`: picks the target (the leader, or a random member when the kind says so
    /// or no leader shows up in time) and hurts it.
    fn inject(&mut self, kind: FaultKind) -> Result<Injected, Error> {
        let leader = match kind {
            FaultKind::KillRandom => None,
            _ => self.find_leader(),
        };
        let (target, role) = match (kind, leader) {
            (FaultKind::KillRandom, _) => (self.random_member(), "random"),
            (_, Some(leader)) => (leader, "leader"),
            (_, None) => (self.random_member(), "no leader found: random member"),
        };
        match kind {
            FaultKind::KillRandom | FaultKind::KillLeader => self.kill(target, role),
            FaultKind::PauseLeader => self.pause(target, role),
            FaultKind::IsolateLeader => self.isolate(target, role),
            FaultKind::SplitMajority => self.split(target, role),
        }
    }

    fn kill(&mut self, target: usize, role: &str) -> Result<Injected, Error> {
        let hold = self.between(self.timing.kill_down);
        self.cluster.kill(target)?;
        Ok(Injected {
            action: format!(
                "SIGKILL {} ({role}), restart after {}",
                self.name(target),
                secs(hold)
            ),
            majority: self.others(target),
            hold,
        })
    }

    fn pause(&mut self, target: usize, role: &str) -> Result<Injected, Error> {
        let hold = self.between(self.timing.pause);
        self.cluster.pause(target);
        Ok(Injected {
            action: format!(
                "SIGSTOP {} ({role}), SIGCONT after {}",
                self.name(target),
                secs(hold)
            ),
            majority: self.others(target),
            hold,
        })
    }

    fn isolate(&mut self, target: usize, role: &str) -> Result<Injected, Error> {
        let hold = self.between(self.timing.partition);
        let sides = vec![vec![target], self.others(target)];
        self.partition(&sides)?;
        Ok(Injected {
            action: format!(
                "isolate {} ({role}): {} for {}",
                self.name(target),
                self.show_sides(&sides),
                secs(hold)
            ),
            majority: sides[1].clone(),
            hold,
        })
    }

    /// A 2 | 3 split (for 5 members); `target` lands on the minority side every other split.
    fn split(&mut self, target: usize, role: &str) -> Result<Injected, Error> {
        let hold = self.between(self.timing.partition);
        let n = self.cluster.len();
        let minority_size = n / 2;
        let mut rest = self.others(target);
        rest.shuffle(&mut self.rng);
        let target_in_minority = self.leader_in_minority;
        self.leader_in_minority = !target_in_minority;
        let mut minority: Vec<usize> = if target_in_minority {
            let mut side = vec![target];
            side.extend(rest.drain(..minority_size - 1));
            side
        } else {
            rest.drain(..minority_size).collect()
        };
        minority.sort_unstable();
        let majority: Vec<usize> = (0..n).filter(|i| !minority.contains(i)).collect();
        let sides = vec![minority, majority.clone()];
        self.partition(&sides)?;
        let side = if target_in_minority {
            "minority"
        } else {
            "majority"
        };
        Ok(Injected {
            action: format!(
                "split {} ({role} {} on the {side} side) for {}",
                self.show_sides(&sides),
                self.name(target),
                secs(hold)
            ),
            majority,
            hold,
        })
    }

    fn random_member(&mut self) -> usize {
        self.rng.gen_range(0..self.cluster.len())
    }

    fn others(&self, target: usize) -> Vec<usize> {
        (0..self.cluster.len()).filter(|&i| i != target).collect()
    }

    fn name(&self, i: usize) -> &str {
        &self.cluster.spec(i).name
    }

    fn partition(&mut self, sides: &[Vec<usize>]) -> Result<(), Error> {
        let ips: Vec<Vec<_>> = sides
            .iter()
            .map(|side| side.iter().map(|&i| self.cluster.spec(i).ip).collect())
            .collect();
        self.firewall.partition(&ips)
    }

    fn show_sides(&self, sides: &[Vec<usize>]) -> String {
        sides
            .iter()
            .map(|side| {
                side.iter()
                    .map(|&i| self.cluster.spec(i).name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn find_leader(&self) -> Option<usize> {
        let urls = self.cluster.client_urls();
        let eligible: Vec<bool> = (0..self.cluster.len())
            .map(|i| self.cluster.state(i) == MemberState::Running)
            .collect();
        self.rt.block_on(wait_leader(
            &self.admin,
            &urls,
            &eligible,
            self.timing.leader_deadline,
        ))
    }

    fn spawn_probe(
        &mut self,
        urls: Vec<String>,
        episode: usize,
        deadline: Duration,
    ) -> tokio::task::JoinHandle<Result<Duration, String>> {
        self.probes += 1;
        let key = format!("probe/{episode:05}");
        let value = format!("p{}", self.probes);
        let history = self.history.clone();
        self.rt.spawn(async move {
            probe_write(&urls, &history, PROBE_CLIENT_ID, key, value, deadline).await
        })
    }

    fn between(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        let lo_ms = lo.as_millis() as u64;
        let hi_ms = (hi.as_millis() as u64).max(lo_ms);
        Duration::from_millis(self.rng.gen_range(lo_ms..=hi_ms))
    }
}

/// `2.1 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_name() {
        let mut names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FaultKind::ALL.len());
    }
}
