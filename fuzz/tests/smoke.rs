//! The decoder checks on stable, without libFuzzer: each target's check on every seed, every
//! prefix of every seed, seeded random mutations of the seeds and seeded random bytes.
//! `RAFTKV_FUZZ_RUNS` (default 2000) sets the mutated and the random inputs per target; a
//! failure names the seed and the input to replay.
//!
//! Not coverage-guided (that is what `cargo +nightly fuzz run` is for), but in the debug
//! profile, so debug assertions and overflow checks are on, as in a cargo-fuzz build.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// xorshift64*: enough randomness for mutation, and reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Values that sit at the edges of lengths, counts, tags and varints.
const INTERESTING: [u64; 9] = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0xffff_ffff, u64::MAX];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 if at < b.len() => b[at] = rng.next() as u8,
            2 => b.insert(at, rng.next() as u8),
            3 if at < b.len() => drop(b.remove(at)),
            4 => b.truncate(at),
            5 => {
                let v = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let n = [1, 2, 4, 8][rng.below(4)];
                for (i, x) in v[..n].iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + i) {
                        *slot = *x;
                    }
                }
            }
            _ => {
                let extra = rng.below(16);
                let junk = rng.bytes(extra);
                b.splice(at..at, junk);
            }
        }
    }
    b
}

fn runs() -> usize {
    std::env::var("RAFTKV_FUZZ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Run `check` on `input`, naming the input if it panics.
fn run(target: &str, what: &str, check: fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
        panic!(
            "{target}: {what} panicked; input ({} bytes): {input:02x?}",
            input.len()
        );
    }
}

/// Returns the number of inputs run.
fn drive(target: &str, seed: u64, check: fn(&[u8]), seeds: Vec<Vec<u8>>) -> usize {
    let mut rng = Rng(seed);
    let mut n = 0;
    for (i, s) in seeds.iter().enumerate() {
        for cut in 0..=s.len() {
            run(target, &format!("seed {i} cut at {cut}"), check, &s[..cut]);
            n += 1;
        }
    }
    for r in 0..runs() {
        let s = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, s);
        run(target, &format!("mutation {r}"), check, &input);
        let len = rng.below(256);
        let input = rng.bytes(len);
        run(target, &format!("random input {r}"), check, &input);
        n += 2;
    }
    eprintln!("{target}: {n} inputs, no panic");
    n
}

#[test]
fn peer_frame_decode() {
    drive(
        "peer_frame_decode",
        0x9e37_79b9_7f4a_7c15,
        raftkv_fuzz::peer::check,
        raftkv_fuzz::peer::seeds(),
    );
}

#[test]
fn client_command_decode() {
    drive(
        "client_command_decode",
        0xbf58_476d_1ce4_e5b9,
        raftkv_fuzz::command::check,
        raftkv_fuzz::command::seeds(),
    );
}

#[test]
fn client_grpc_decode() {
    drive(
        "client_grpc_decode",
        0x94d0_49bb_1331_11eb,
        raftkv_fuzz::grpc::check,
        raftkv_fuzz::grpc::seeds(),
    );
}

/// The seeds are what they claim: valid, so mutation starts from deep inside the decoders.
#[test]
fn seeds_decode() {
    use bytes::Bytes;
    let peer = raftkv_fuzz::peer::seeds();
    assert!(peer[1..]
        .iter()
        .all(|f| server::wire::decode(Bytes::copy_from_slice(f)).is_ok()));
    let cmd = raftkv_fuzz::command::seeds();
    for c in &cmd[..5] {
        kv::Command::decode(c).unwrap();
    }
    let _ = kv::decode_result(&cmd[5]).unwrap();
    let mut sm = kv::KvStateMachine::default();
    sm.try_restore(&cmd[7]).unwrap();
    assert_eq!(
        raftkv_fuzz::grpc::seeds().len(),
        raftkv_fuzz::grpc::METHODS.len()
    );
}
