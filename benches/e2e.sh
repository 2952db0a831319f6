#!/usr/bin/env bash
# e2e.sh — coldkeep and restic on the same data, same machine, same run; prints ratios.
#
# Dataset: two versions of the Linux 6.1 source tree (benches/prepare-data.sh, from Debian's
# archive, puts them under $DATA). Sequence per tool (repo wiped first):
#   init; backup1 of A; backup2 of A unchanged; turn the work tree into B in place (rsync, only
#   changed files rewritten); backup3 of B; restore of the latest snapshot; verify (untimed,
#   diff -rq must find 0 differences).
# Warm cache by default (the tree was just copied); COLD=1 drops caches before each op (root).
#
# Two effects of this machine would otherwise swamp the tools' own costs (docs/BENCHMARKS.md):
#  * ext4 skips inodes freed in the last 60-360 s when it allocates new ones, so creating files
#    right after a mass delete is several times slower: every tool and round gets its own
#    directories, nothing is deleted until the end, and a leftover scratch dir from an earlier
#    run is deleted first followed by SETTLE seconds of waiting (default 360).
#  * guest memory touched for the first time costs a hypervisor fault per page (here ~350 MB/s):
#    PRETOUCH=1 (default) touches the free memory once before timing anything. Memory an op
#    frees is handed back to the hypervisor over the next seconds (free page reporting), and a
#    restore that starts meanwhile fills 1.3 GB of page cache against it: PAUSE seconds
#    (default 10) of idle after the sync that precedes every restore.
#
# Restores are the operation most at the mercy of the machine (every restored byte lands in a
# page-cache page the hypervisor may have to fault in, docs/BENCHMARKS.md), so RESTORE_PAIRS=N
# adds N more restores of the last round's snapshot, the tools alternating (same data, same
# moment, fresh directories): op restore_B_pairs.
#
# Tools: coldkeep (encrypted, as `init` makes it by default), coldkeep-plain (`init
# --no-encryption`: what encryption costs is the difference), restic, and coldkeep-at: another
# build of coldkeep, the binary CK_AT names (an older commit's: what the code's changes cost,
# measured in the same rounds rather than across days), with its own default `init`.
#
# Usage:  benches/e2e.sh                 # coldkeep + restic, 1 round
#         TOOLS="coldkeep coldkeep-plain restic" benches/e2e.sh
#         ROUNDS=2 TOOLS="coldkeep" benches/e2e.sh
#         RESTORE_PAIRS=5 benches/e2e.sh
#         CK_AT=/tmp/old/target/release/coldkeep TOOLS="coldkeep coldkeep-at restic" benches/e2e.sh
#         S3=1 benches/e2e.sh            # every repository in a bucket of a local SeaweedFS
#
# S3=1 starts the test S3 server (scripts/s3-server.sh: SeaweedFS on 127.0.0.1:8333, data under
# SCRATCH) and puts each tool's repository under its own prefix of its bucket without Object
# Lock: coldkeep with `--repo s3://…` (its catalog cached under SCRATCH), restic with its S3
# backend (`-r s3:http://…`). The server shares the machine's cores with the tool timed.
# repo_MB is then left empty (the bucket's size is not per tool).
# Env:    DATA ($HOME/bench-data)  SCRATCH (/tmp/ck-e2e)  OUT (./bench-results)  ROUNDS (1)
# Prereq: apt packages restic time rsync; a release build (done here).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DATA=${DATA:-$HOME/bench-data}
SCRATCH=${SCRATCH:-/tmp/ck-e2e}
OUT=${OUT:-$PWD/bench-results}
ROUNDS=${ROUNDS:-1}
RESTORE_PAIRS=${RESTORE_PAIRS:-0}
COLD=${COLD:-0}
SETTLE=${SETTLE:-360}
PRETOUCH=${PRETOUCH:-1}
PAUSE=${PAUSE:-10}
TOOLS=${TOOLS:-"coldkeep restic"}
S3=${S3:-0}
TREE=linux-source-6.1
SRC_A=$DATA/A/$TREE
SRC_B=$DATA/B/$TREE
export RESTIC_PASSWORD=bench-not-secret COLDKEEP_PASSWORD=bench-not-secret
[ -d "$SRC_A" ] && [ -d "$SRC_B" ] || { echo "datasets missing: run benches/prepare-data.sh (DATA=$DATA)" >&2; exit 1; }
for c in /usr/bin/time rsync; do command -v $c >/dev/null || { echo "missing $c (apt-get install time rsync)" >&2; exit 1; }; done

(cd "$ROOT" && cargo build --release -q -p coldkeep-cli)
CK=$ROOT/target/release/coldkeep
CK_AT=${CK_AT:-}
case " $TOOLS " in *" coldkeep-at "*) [ -x "$CK_AT" ] || { echo "coldkeep-at needs CK_AT=<a coldkeep binary>" >&2; exit 1; } ;; esac
if [ -e "$SCRATCH" ]; then
  echo ">> removing $SCRATCH from an earlier run, then waiting ${SETTLE}s for ext4 to settle" >&2
  rm -rf "$SCRATCH"; sync; sleep "$SETTLE"
fi
if [ "$PRETOUCH" = 1 ]; then
  echo ">> touching free memory once (first-touch faults would otherwise land in the timings)" >&2
  python3 -c "
import re
free = int(re.search(r'MemAvailable:\s+(\d+)', open('/proc/meminfo').read()).group(1)) * 1024
b = bytearray(max(free - (3 << 30), 1 << 30))
b[::4096] = b'\x01' * (len(b) // 4096)
"
fi
mkdir -p "$OUT" "$SCRATCH"
if [ "$S3" = 1 ]; then
  mkdir -p "$SCRATCH/s3"
  eval "$("$ROOT/scripts/s3-server.sh" start "$SCRATCH/s3")"
  trap '"$ROOT/scripts/s3-server.sh" stop "$SCRATCH/s3"' EXIT
  BUCKET=${COLDKEEP_TEST_S3_NOLOCK#s3://}
fi
STAMP=$(date +%Y%m%d-%H%M%S)
TSV=$OUT/e2e-$STAMP.tsv
LOG=$OUT/e2e-$STAMP.log
printf 'tool\tround\top\twall_s\tMB_s\tcpu_s\trss_MB\trepo_MB\n' > "$TSV"
BYTES_A=$(du -sb "$SRC_A" | cut -f1); BYTES_B=$(du -sb "$SRC_B" | cut -f1)

# Every tool and round has its own directories: nothing is deleted while timing.
repo_of() { echo "$SCRATCH/r$round/repo-$1"; }
# Where a tool's repository is, as its --repo / -r takes it.
repo_arg() {
  if [ "$S3" != 1 ]; then repo_of "$1"
  elif [ "$1" = restic ]; then echo "s3:$AWS_ENDPOINT_URL/$BUCKET/r$round-$1"
  else echo "s3://$BUCKET/r$round-$1 --cache-dir $SCRATCH/r$round/cache-$1"; fi
}
work_of() { echo "$SCRATCH/r$round/work-$1/$TREE"; }
restore_of() { echo "$SCRATCH/r$round/restore-$1"; }
run_op() {  # tool round op bytes cmd
  local tool=$1 round=$2 op=$3 bytes=$4 cmd=$5 tf rc t0 t1
  tf=$(mktemp)
  sync  # the op before leaves dirty pages: their writeback must not land in this op's time
  case $op in restore*) sleep "$PAUSE" ;; esac
  [ "$COLD" = 1 ] && { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null || true
  echo "### $tool r$round $op: $cmd" >>"$LOG"
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$tf" bash -c "$cmd" >>"$LOG" 2>&1 && rc=0 || rc=$?
  t1=$(date +%s.%N)
  local wall rss cpu repo mbs
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  rss=$(awk -F: '/Maximum resident set size/{gsub(/ /,"",$2); printf "%.0f", $2/1024}' "$tf")
  cpu=$(awk -F: '/User time|System time/{s+=$2} END{printf "%.1f", s}' "$tf")
  repo=$(du -sb "$(repo_of "$tool")" 2>/dev/null | awk '{printf "%.1f", $1/1e6}' || true)
  mbs=$(awk -v n="$bytes" -v w="$wall" 'BEGIN{printf "%.1f", n/1e6/w}')
  [ $rc -ne 0 ] && { op="$op(FAILED rc=$rc)"; echo "!! $tool $op failed, see $LOG" >&2; }
  printf '%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\n' "$tool" "$round" "$op" "$wall" "$mbs" "$cpu" "$rss" "$repo" | tee -a "$TSV"
  rm -f "$tf"
}
cmd() {  # tool op
  local repo work restore; repo=$(repo_arg "$1"); work=$(work_of "$1"); restore=$(restore_of "$1")
  case "$1:$2" in
    coldkeep:init)    echo "$CK --repo $repo init" ;;
    coldkeep-plain:init) echo "$CK --repo $repo init --no-encryption" ;;
    coldkeep-at:init) echo "$CK_AT --repo $repo init" ;;
    coldkeep-at:backup)  echo "$CK_AT --repo $repo backup $work" ;;
    coldkeep-at:restore) echo "$CK_AT --repo $repo restore latest --target $restore" ;;
    coldkeep*:backup)  echo "$CK --repo $repo backup $work" ;;
    coldkeep*:restore) echo "$CK --repo $repo restore latest --target $restore" ;;
    restic:init)      echo "restic --repo $repo init --repository-version 2" ;;
    restic:backup)    echo "restic --repo $repo --cache-dir $(repo_of "$1")-cache backup --compression auto $work" ;;
    restic:restore)   echo "restic --repo $repo --cache-dir $(repo_of "$1")-cache restore latest --target $restore" ;;
  esac
}
restored() { [ "$1" = restic ] && echo "$(restore_of "$1")$(work_of "$1")" || restore_of "$1"; }

{
  echo "# e2e.sh $STAMP — $(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GiB, cold=$COLD"
  echo "# A: $SRC_A ($BYTES_A bytes, $(find "$SRC_A" -type f | wc -l) files)  B: $SRC_B ($BYTES_B bytes)"
  echo "# $(restic version 2>/dev/null | head -1) | coldkeep $($CK --version)${CK_AT:+ | coldkeep-at $CK_AT}"
  if [ "$S3" = 1 ]; then echo "# repositories in S3: SeaweedFS $("$("$ROOT/scripts/install-deps.sh" --weed-path)" version 2>&1 | head -1) at $AWS_ENDPOINT_URL, bucket $BUCKET"; fi
} | tee "$OUT/e2e-$STAMP.header"

for round in $(seq 1 "$ROUNDS"); do
  for tool in $TOOLS; do
    WORK=$(work_of "$tool")
    mkdir -p "$(dirname "$WORK")"; cp -a "$SRC_A" "$WORK"; sync
    run_op "$tool" "$round" init 0 "$(cmd "$tool" init)"
    run_op "$tool" "$round" backup1_A "$BYTES_A" "$(cmd "$tool" backup)"
    run_op "$tool" "$round" backup2_A_nochg "$BYTES_A" "$(cmd "$tool" backup)"
    rsync -rlp --checksum --delete "$SRC_B"/ "$WORK"/ >>"$LOG" 2>&1; sync
    run_op "$tool" "$round" backup3_B "$BYTES_B" "$(cmd "$tool" backup)"
    run_op "$tool" "$round" restore_B "$BYTES_B" "$(cmd "$tool" restore)"
    ndiff=$(diff -rq --no-dereference "$WORK" "$(restored "$tool")" 2>&1 | wc -l || true)
    echo "# verify $tool r$round: $ndiff differing entries" | tee -a "$OUT/e2e-$STAMP.header"
  done
done

for pair in $(seq 1 "$RESTORE_PAIRS"); do
  for tool in $TOOLS; do
    target="$SCRATCH/pairs/$tool-$pair"
    mkdir -p "$SCRATCH/pairs"
    run_op "$tool" "$round" restore_B_pairs "$BYTES_B" "$(cmd "$tool" restore | sed "s|--target [^ ]*|--target $target|")"
  done
done

echo
{ cat "$OUT/e2e-$STAMP.header"; echo
  awk -F'\t' 'NR==1{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n|---|---|---|---:|---:|---:|---:|---:|\n",$1,$2,$3,$4,$5,$6,$7,$8; next}
              {printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n",$1,$2,$3,$4,$5,$6,$7,$8}' "$TSV"
  echo
  echo "| op | restic / coldkeep wall time (median over rounds) | coldkeep peak RSS MB | restic repo MB / coldkeep repo MB |"
  echo "|---|---:|---:|---:|"
  median() { sort -n | awk '{v[NR]=$1} END{ if (NR==0) print ""; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }
  col() { awk -F'\t' -v t="$1" -v op="$2" -v c="$3" '$1==t && $3==op {print $c}' "$TSV"; }
  for op in backup1_A backup2_A_nochg backup3_B restore_B restore_B_pairs; do
    ck=$(col coldkeep $op 4 | median); rs=$(col restic $op 4 | median)
    [ -z "$ck" ] && [ -z "$rs" ] && continue
    rss=$(col coldkeep $op 7 | sort -n | tail -1)
    ckr=$(col coldkeep $op 8 | median); rsr=$(col restic $op 8 | median)
    if [ -n "$ck" ] && [ -n "$rs" ]; then
      awk -v op="$op" -v a="$rs" -v b="$ck" -v rss="$rss" -v ra="$rsr" -v rb="$ckr" \
        'BEGIN{printf "| %s | %.2fx | %s | %.3f |\n", op, a/b, rss, ra/rb}'
    else
      echo "| $op | (no restic) | $rss | |"
    fi
  done
  if grep -q '^coldkeep-plain' "$TSV"; then
    echo
    echo "| op | coldkeep (encrypted) / coldkeep-plain wall time (median) | repo MB, encrypted / plain |"
    echo "|---|---:|---:|"
    for op in backup1_A backup2_A_nochg backup3_B restore_B restore_B_pairs; do
      ck=$(col coldkeep $op 4 | median); pl=$(col coldkeep-plain $op 4 | median)
      [ -n "$ck" ] && [ -n "$pl" ] || continue
      awk -v op="$op" -v a="$ck" -v b="$pl" -v ra="$(col coldkeep $op 8 | median)" -v rb="$(col coldkeep-plain $op 8 | median)" \
        'BEGIN{printf "| %s | %.3f | %.3f |\n", op, a/b, ra/rb}'
    done
  fi
  if grep -q '^coldkeep-at' "$TSV"; then
    echo
    echo "| op | coldkeep / coldkeep-at wall time (median) | restic / coldkeep-at (median) | repo MB, coldkeep / coldkeep-at |"
    echo "|---|---:|---:|---:|"
    for op in backup1_A backup2_A_nochg backup3_B restore_B restore_B_pairs; do
      ck=$(col coldkeep $op 4 | median); at=$(col coldkeep-at $op 4 | median); rs=$(col restic $op 4 | median)
      [ -n "$ck" ] && [ -n "$at" ] || continue
      awk -v op="$op" -v a="$ck" -v b="$at" -v r="${rs:-0}" -v ra="$(col coldkeep $op 8 | median)" -v rb="$(col coldkeep-at $op 8 | median)" \
        'BEGIN{printf "| %s | %.3f | %s | %.3f |\n", op, a/b, (r > 0 ? sprintf("%.2fx", r/b) : ""), ra/rb}'
    done
  fi
  echo
  echo "scratch kept for inspection: $SCRATCH (delete it when done)"
} | tee "$OUT/e2e-$STAMP.md"
echo "results: $TSV $OUT/e2e-$STAMP.md log: $LOG"
