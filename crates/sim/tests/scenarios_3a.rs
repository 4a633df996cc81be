//! 6.824 lab 3A (leader election) on the simulated cluster: `TestInitialElection3A`,
//! `TestReElection3A`, `TestManyElections3A`. Paper §5.2 (leader election). Time bounds are
//! scaled to our 300 ms election-timeout yardstick (see `common`).

#[macro_use]
mod common;

use common::*;

/// TestInitialElection3A (§5.2): with no faults a leader appears within ~5 yardsticks, all
/// peers agree on a term ≥ 1, and — stronger than 6.824, which only warns — the term does not
/// change during 2 quiet yardsticks, and there is still exactly one leader.
#[test]
fn initial_election_3a() {
    run_seeds(scenario!("initial_election_3a"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("initial_election_3a"),
            config(3, seed, Net::Reliable),
        );
        h.check_one_leader();
        h.sleep(scaled(50));
        let term1 = h.check_terms();
        h.check(term1.0 >= 1, || {
            format!("term is {term1:?}, but a leader election needs term >= 1")
        });
        h.sleep(2 * ELECTION_TIMEOUT_MS);
        let term2 = h.check_terms();
        h.check(term1 == term2, || {
            format!("term changed from {term1:?} to {term2:?} with no failures (spurious election)")
        });
        h.check_one_leader();
    });
}

/// TestReElection3A (§5.2): a lost leader is replaced; the old leader rejoins without
/// disturbing the new one (PreVote/CheckQuorum: same leader, same term after it rejoins); no
/// leader can be elected without a majority; a majority restored elects one.
#[test]
fn re_election_3a() {
    run_seeds(scenario!("re_election_3a"), SEEDS, |seed| {
        let mut h = Harness::new(scenario!("re_election_3a"), config(3, seed, Net::Reliable));
        let leader1 = h.check_one_leader();

        // If the leader disconnects, a new one should be elected.
        h.disconnect(leader1);
        let new_leader = h.check_one_leader();
        let term_new = h.term(new_leader).unwrap();

        // The old leader rejoins: it must not disturb the new leader.
        h.connect(leader1);
        let leader2 = h.check_one_leader();
        h.check(leader2 == new_leader && h.term(leader2) == Some(term_new), || {
            format!(
                "old leader {leader1:?} rejoining disturbed the cluster: leader {new_leader:?}@{term_new:?} \
                 became {leader2:?}@{:?}",
                h.term(leader2)
            )
        });
        h.check(!h.is_leader(leader1), || {
            format!("old leader {leader1:?} still claims leadership after rejoining")
        });

        // No quorum: no leader should be elected.
        h.disconnect(leader2);
        h.disconnect(h.peer(leader2, 1));
        h.sleep(2 * ELECTION_TIMEOUT_MS);
        h.check_no_leader();

        // A quorum returns: a leader is elected.
        h.connect(h.peer(leader2, 1));
        h.check_one_leader();

        // Re-join of the last node shouldn't prevent leaders from existing.
        h.connect(leader2);
        h.check_one_leader();
    });
}

/// TestManyElections3A (§5.2): 7 peers; 10 rounds (6.824's loop runs 9, the issue asks for
/// 10) of disconnecting 3 random indices (1–3 distinct peers, so ≥ 4 stay and form a
/// majority): the connected peers must have one leader each round (the old one or a new
/// one); finally one leader.
#[test]
fn many_elections_3a() {
    run_seeds(scenario!("many_elections_3a"), SEEDS, |seed| {
        let mut h = Harness::new(
            scenario!("many_elections_3a"),
            config(7, seed, Net::Reliable),
        );
        h.check_one_leader();
        for _round in 0..10 {
            let picks = [h.random_node(), h.random_node(), h.random_node()];
            for &i in &picks {
                h.disconnect(i);
            }
            // Either the current leader should still be alive, or the remaining four should
            // elect a new one.
            h.check_one_leader();
            for &i in &picks {
                h.connect(i);
            }
        }
        h.check_one_leader();
    });
}
