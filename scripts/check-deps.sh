#!/usr/bin/env bash
# Enforces the one-way crate arrows of DESIGN.md: the pure crates depend on no crate of ours,
# and nothing deterministic pulls in tokio, sockets or an async runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
ours="raft storage replica sim bench kv check proto server client nemesis cli"
deps_of() { cargo tree -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u; }
for pure in raft; do
  for d in $(deps_of "$pure"); do
    [ "$d" = "$pure" ] && continue
    for o in $ours; do
      if [ "$d" = "$o" ]; then echo "dependency rule: $pure must not depend on $o"; fail=1; fi
    done
  done
done
for det in raft storage replica sim kv; do
  for d in $(deps_of "$det"); do
    case "$d" in
      tokio|mio|async-std|smol|socket2) echo "dependency rule: $det must not depend on $d"; fail=1 ;;
    esac
  done
done
if grep -rn --include='*.rs' -E 'std::time::(Instant|SystemTime)|SystemTime::now|Instant::now|thread_rng|std::net' crates/raft/src crates/replica/src crates/storage/src crates/sim/src >/dev/null; then
  echo "determinism rule: wall clock, unseeded RNG or sockets used in a deterministic crate:"
  grep -rn --include='*.rs' -E 'std::time::(Instant|SystemTime)|SystemTime::now|Instant::now|thread_rng|std::net' crates/raft/src crates/replica/src crates/storage/src crates/sim/src
  fail=1
fi
[ "$fail" = 0 ] && echo "dependency rules: ok"
exit "$fail"
