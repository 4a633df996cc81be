//! `Restart::Random { seed }` must be a pure function of the seed and the operations made:
//! the simulator replays a seed and expects the same disk after every crash. (Regression
//! test: the seeded draws once went to files in `HashMap` order, different in every run.)

use std::path::Path;
use storage::{FaultFs, Fs, FsFile, Restart};

/// Several files, each with unsynced appends, then a seeded random restart.
fn disk_after_random_restart(seed: u64) -> Vec<Vec<u8>> {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let names: Vec<String> = (0..8).map(|i| format!("/d/f{i}")).collect();
    let files: Vec<_> = names
        .iter()
        .map(|n| fs.create(Path::new(n)).unwrap())
        .collect();
    fs.sync_dir(Path::new("/d")).unwrap();
    for (i, f) in files.iter().enumerate() {
        for w in 0..6u8 {
            f.append(&[i as u8 * 16 + w; 5]).unwrap();
        }
    }
    fs.restart(Restart::Random { seed });
    names
        .iter()
        .map(|n| fs.read(Path::new(n)).unwrap())
        .collect()
}

#[test]
fn random_restart_is_a_function_of_the_seed() {
    for seed in 0..20 {
        let first = disk_after_random_restart(seed);
        for _ in 0..10 {
            assert_eq!(
                disk_after_random_restart(seed),
                first,
                "seed {seed}: same operations, same seed, different disk"
            );
        }
    }
}
