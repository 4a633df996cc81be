//! [`Report`]: what a run did and found, and the one rule for passing.
//!
//! Owns: the summary a person reads (episodes, operations, faults by kind, violations, lost
//! writes, duplicated appends, checker time) and [`Report::failures`], the list of reasons a
//! run fails — empty exactly when [`Report::passed`]; [`Findings`], the end-of-run part the
//! membership scenario's report shares.
//! Must never: run anything or hide a finding (every failure reason is printed).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::UnexpectedExit;
use crate::faults::{secs, Episode, FaultKind};
use crate::verify::{AppendAudit, Linearizability};
use crate::workload::WorkloadStats;

/// What the end of any run found: the workload's outcomes, the checker's verdict, the append
/// audit, the replicas' agreement, members that exited on their own. Shared by the fault
/// suite's [`Report`] and the membership scenario's report.
#[derive(Clone, Debug)]
pub struct Findings {
    /// At the end (after the last heal or change): how long until the cluster served a
    /// write through every member, or why it did not.
    pub final_recovery: Result<Duration, String>,
    pub workload: WorkloadStats,
    pub linearizability: Linearizability,
    pub audit: AppendAudit,
    /// Keys read at the end.
    pub final_keys: usize,
    /// Every member applied this index at the end, or why not.
    pub converged: Result<u64, String>,
    /// Keys on which members' copies differ (after converging).
    pub replica_differences: Vec<String>,
    /// Members that exited although the harness neither killed nor removed them.
    pub unexpected_exits: Vec<UnexpectedExit>,
}

impl Findings {
    /// Why these findings fail a run (the final recovery is left to the caller, which
    /// counts it with its own availability checks); empty when they pass.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let lin = &self.linearizability;
        if !lin.illegal.is_empty() {
            out.push(format!("{} key(s) not linearizable", lin.illegal.len()));
        }
        if !lin.undecided.is_empty() {
            out.push(format!(
                "{} key(s) undecided by the checker",
                lin.undecided.len()
            ));
        }
        if !self.audit.lost.is_empty() {
            out.push(format!(
                "{} acknowledged append(s) lost",
                self.audit.lost.len()
            ));
        }
        if !self.audit.duplicated.is_empty() {
            out.push(format!(
                "{} append(s) applied more than once",
                self.audit.duplicated.len()
            ));
        }
        if !self.audit.phantom.is_empty() {
            out.push(format!(
                "{} value(s) never written",
                self.audit.phantom.len()
            ));
        }
        if let Err(why) = &self.converged {
            out.push(format!("replicas did not converge: {why}"));
        }
        if !self.replica_differences.is_empty() {
            out.push(format!(
                "{} key(s) differ between replicas",
                self.replica_differences.len()
            ));
        }
        if !self.unexpected_exits.is_empty() {
            out.push(format!(
                "{} member exit(s) not caused by the harness",
                self.unexpected_exits.len()
            ));
        }
        if self.workload.total().ok == 0 {
            out.push("the workload completed no operation".into());
        }
        out
    }

    /// The operation counts; the rate is over `phase`.
    pub fn fmt_operations(&self, f: &mut fmt::Formatter<'_>, phase: Duration) -> fmt::Result {
        let total = self.workload.total();
        writeln!(
            f,
            "operations: {} (ok {}, failed {}, pending {}) — ok {:.0}/s",
            total.total(),
            total.ok,
            total.failed,
            total.pending,
            total.ok as f64 / phase.as_secs_f64().max(0.001)
        )?;
        for (kind, c) in &self.workload.by_kind {
            writeln!(
                f,
                "  {:<7} ok {}, failed {}, pending {}",
                kind.name(),
                c.ok,
                c.failed,
                c.pending
            )?;
        }
        if !self.workload.errors.is_empty() {
            let errors: Vec<String> = self
                .workload
                .errors
                .iter()
                .map(|(category, n)| format!("{category} {n}"))
                .collect();
            writeln!(f, "  errors: {}", errors.join(", "))?;
        }
        if self.workload.unexpected_count > 0 {
            writeln!(
                f,
                "  unexpected errors: {} (first: {})",
                self.workload.unexpected_count,
                self.workload.unexpected.join(" | ")
            )?;
        }
        Ok(())
    }

    /// The checker's verdict and the append audit.
    pub fn fmt_history(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lin = &self.linearizability;
        writeln!(
            f,
            "linearizability: {} operations over {} keys checked in {:.2} s ({} steps): {}",
            lin.ops,
            lin.keys,
            lin.elapsed.as_secs_f64(),
            lin.steps,
            if lin.ok() {
                "linearizable"
            } else {
                "NOT proven"
            }
        )?;
        for (key, why) in lin.illegal.iter().take(3) {
            writeln!(f, "  key {key}: {why}")?;
        }
        for (key, why) in lin.undecided.iter().take(3) {
            writeln!(f, "  key {key} undecided: {why}")?;
        }
        let a = &self.audit;
        writeln!(f, "violations: {}", lin.illegal.len())?;
        writeln!(
            f,
            "lost writes: {} (acknowledged appends: {} over {} log keys; final values of {} keys read)",
            a.lost.len(),
            a.acknowledged,
            a.keys,
            self.final_keys
        )?;
        writeln!(
            f,
            "duplicated appends: {} (pending appends: {}, of which applied: {})",
            a.duplicated.len(),
            a.pending,
            a.pending_applied
        )?;
        for line in a
            .lost
            .iter()
            .chain(&a.duplicated)
            .chain(&a.phantom)
            .take(10)
        {
            writeln!(f, "  {line}")?;
        }
        if !a.phantom.is_empty() {
            writeln!(f, "phantom values: {}", a.phantom.len())?;
        }
        Ok(())
    }

    /// Replica agreement and unexpected exits.
    pub fn fmt_members(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.converged {
            Ok(index) => writeln!(
                f,
                "replicas: all applied index {index}; {} key(s) differ",
                self.replica_differences.len()
            )?,
            Err(why) => writeln!(f, "replicas: {why}")?,
        }
        for line in self.replica_differences.iter().take(5) {
            writeln!(f, "  {line}")?;
        }
        writeln!(
            f,
            "unexpected member exits: {}",
            self.unexpected_exits.len()
        )?;
        for exit in &self.unexpected_exits {
            writeln!(
                f,
                "  {} ({}); log tail:\n{}",
                exit.member, exit.status, exit.log_tail
            )?;
        }
        Ok(())
    }
}

/// Everything a fault run found.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub members: usize,
    pub clients: usize,
    /// The whole run, start to verdict.
    pub elapsed: Duration,
    /// The fault phase (episodes).
    pub fault_phase: Duration,
    pub episodes: Vec<Episode>,
    /// Ctrl-C ended the fault phase early.
    pub stopped_early: bool,
    /// The end of the run (`final_recovery`: after the last heal).
    pub findings: Findings,
    /// Where data and logs are.
    pub dir: PathBuf,
    /// Whether `dir` is kept (a failed run always keeps it).
    pub dir_kept: bool,
}

impl Report {
    /// Linearizability violations: keys whose history is not linearizable.
    pub fn violations(&self) -> usize {
        self.findings.linearizability.illegal.len()
    }

    /// Acknowledged appends missing from the final values.
    pub fn lost_writes(&self) -> usize {
        self.findings.audit.lost.len()
    }

    /// Tokens appended more than once.
    pub fn duplicated_appends(&self) -> usize {
        self.findings.audit.duplicated.len()
    }

    /// Episodes in which the majority side or the healed cluster did not serve in time.
    pub fn availability_failures(&self) -> usize {
        self.episodes.iter().filter(|e| !e.available()).count()
            + usize::from(self.findings.final_recovery.is_err())
    }

    /// Faults injected, by kind.
    pub fn faults_by_kind(&self) -> BTreeMap<FaultKind, usize> {
        let mut by_kind = BTreeMap::new();
        for e in &self.episodes {
            *by_kind.entry(e.kind).or_insert(0) += 1;
        }
        by_kind
    }

    /// Why the run fails; empty when it passes.
    pub fn failures(&self) -> Vec<String> {
        let mut out = self.findings.failures();
        if self.availability_failures() > 0 {
            out.push(format!(
                "{} availability failure(s)",
                self.availability_failures()
            ));
        }
        out
    }

    /// No failure.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The command that runs the same fault schedule again (timing is not replayed).
    pub fn reproduce(&self) -> String {
        format!(
            "nemesis --seed {} --episodes {} --clients {}",
            self.seed,
            self.episodes.len(),
            self.clients
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "nemesis: seed {}, {} members, {} clients, {} episodes in {} (whole run {}){}",
            self.seed,
            self.members,
            self.clients,
            self.episodes.len(),
            secs(self.fault_phase),
            secs(self.elapsed),
            if self.stopped_early {
                " — stopped early"
            } else {
                ""
            }
        )?;
        let kinds: Vec<String> = self
            .faults_by_kind()
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(f, "faults: {}", kinds.join(", "))?;
        for e in &self.episodes {
            writeln!(f, "  {}", episode_line(e))?;
        }
        self.findings.fmt_operations(f, self.fault_phase)?;
        self.findings.fmt_history(f)?;
        writeln!(
            f,
            "availability failures: {}{}",
            self.availability_failures(),
            match &self.findings.final_recovery {
                Ok(d) => format!(" (serving {} after the final heal)", secs(*d)),
                Err(why) => format!(" (not serving after the final heal: {why})"),
            }
        )?;
        self.findings.fmt_members(f)?;
        let failures = self.failures();
        if failures.is_empty() {
            writeln!(f, "result: PASS")?;
        } else {
            writeln!(f, "result: FAIL — {}", failures.join("; "))?;
            writeln!(f, "reproduce (same fault schedule): {}", self.reproduce())?;
        }
        if self.dir_kept {
            writeln!(f, "data and member logs kept in {}", self.dir.display())?;
        }
        Ok(())
    }
}

/// One line per episode: what was done and how the cluster coped.
pub fn episode_line(e: &Episode) -> String {
    let majority = match &e.majority_write {
        Ok(d) => format!("majority served a write after {}", secs(*d)),
        Err(why) => format!("MAJORITY DID NOT SERVE: {why}"),
    };
    let recovery = match &e.recovery {
        Ok(d) => format!("serving {} after heal", secs(*d)),
        Err(why) => format!("NOT SERVING AFTER HEAL: {why}"),
    };
    let exits = if e.unexpected_exits.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = e
            .unexpected_exits
            .iter()
            .map(|x| x.member.as_str())
            .collect();
        format!("; UNEXPECTED EXIT of {}", names.join(", "))
    };
    format!(
        "#{} {}: {}; {majority}; {recovery}{exits}",
        e.index, e.kind, e.action
    )
}
