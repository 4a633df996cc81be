//! Histories from simulated concurrent executions, for the tests and the speed example.
//!
//! Owns: turning a plan (who invokes what, with which delays, and whether it returns) into a
//! history whose outputs come from a real sequential execution of the model: each operation
//! takes effect at one instant inside its [call, ret] window, in instant order. Such a
//! history is linearizable by construction.
//!
//! Must never: read a clock or use an unseeded RNG (a plan, or a seed, determines everything).

#![allow(dead_code)] // each test binary uses a part

use std::collections::HashMap;

use check::{Input, KeyState, Operation};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What happens to an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Takes effect and returns.
    Returns,
    /// Takes effect, but the client never hears back.
    AppliedPending,
    /// Never takes effect, and the client never hears back.
    LostPending,
}

/// One planned operation. A client issues its operations one after another: `think` after
/// its previous one returned (or timed out), the operation is invoked; it takes effect
/// `before` later and returns `after` after that.
#[derive(Clone, Debug)]
pub struct Planned {
    pub client: u64,
    pub input: Input,
    pub think: u64,
    pub before: u64,
    pub after: u64,
    pub fate: Fate,
}

/// Runs the plan against the sequential model; returns the history in invocation order.
pub fn execute(plan: &[Planned]) -> Vec<Operation> {
    let mut clock: HashMap<u64, u64> = HashMap::new();
    let mut ops = Vec::with_capacity(plan.len());
    let mut effects = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let free = clock.entry(p.client).or_insert(0);
        let call = *free + p.think;
        let at = call + p.before;
        let ret = at + p.after;
        *free = ret;
        match p.fate {
            Fate::Returns => {
                ops.push(Operation {
                    client: p.client,
                    input: p.input.clone(),
                    output: None,
                    call,
                    ret: Some(ret),
                });
                effects.push((at, i));
            }
            Fate::AppliedPending => {
                ops.push(Operation::pending(p.client, p.input.clone(), call));
                // An abandoned operation may take effect long after the client moved on.
                effects.push((at + 3 * p.after, i));
            }
            Fate::LostPending => ops.push(Operation::pending(p.client, p.input.clone(), call)),
        }
    }
    effects.sort_unstable();
    let mut model: HashMap<Vec<u8>, KeyState> = HashMap::new();
    for (_, i) in effects {
        let state = model.entry(ops[i].input.key().to_vec()).or_default();
        let (after, output) = state.apply(&ops[i].input);
        *state = after;
        if ops[i].ret.is_some() {
            ops[i].output = Some(output);
        }
    }
    ops.sort_by_key(|op| op.call);
    ops
}

/// The shape of a random workload.
#[derive(Clone, Debug)]
pub struct Workload {
    pub ops: usize,
    pub clients: u64,
    pub keys: u32,
    /// Distinct values a Put or Cas writes (small: more ambiguity for the checker).
    pub values: u32,
    pub think_max: u64,
    pub latency_max: u64,
    /// Per mille of operations that never return (half of them take effect).
    pub pending_per_mille: u32,
}

/// A seeded random plan: clients take turns in a random order, each with one outstanding op.
pub fn random_plan(seed: u64, w: &Workload) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..w.ops)
        .map(|n| {
            let key = format!("k{}", rng.gen_range(0..w.keys));
            let value = format!("v{}", rng.gen_range(0..w.values));
            let input = match rng.gen_range(0..100) {
                0..=39 => Input::get(key),
                40..=59 => Input::put(key, value),
                60..=74 => Input::append(key, format!("{n};")),
                75..=79 => Input::delete(key),
                _ => {
                    let expected = format!("v{}", rng.gen_range(0..w.values));
                    let expected = rng.gen_bool(0.8).then_some(expected.as_bytes());
                    Input::cas(key, expected, value)
                }
            };
            let fate = match rng.gen_range(0..2000) {
                x if x < w.pending_per_mille => Fate::AppliedPending,
                x if x < 2 * w.pending_per_mille => Fate::LostPending,
                _ => Fate::Returns,
            };
            Planned {
                client: rng.gen_range(0..w.clients),
                input,
                think: rng.gen_range(0..=w.think_max),
                before: rng.gen_range(0..=w.latency_max),
                after: rng.gen_range(0..=w.latency_max),
                fate,
            }
        })
        .collect()
}
