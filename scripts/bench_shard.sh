#!/usr/bin/env bash
# scripts/bench_shard.sh -- a sharded run against one run (`make bench` runs
# it after scripts/bench.sh; `make bench-shard` alone).
#
# Over the bucket of BENCH_MANY_OBJECTS (100,000) small PNGs that bench.sh's
# "many" group uses (bench/gen many, on versitygw with the access log off),
# each round runs, in alternating order:
#   one      kneepipe run -f examples/notebook.yaml (fresh cache)
#   sharded  kneepipe shard plan --shards 4, then 4 `shard run` processes at
#            once (one per shard, each its own cache), then `shard merge`
#            (fresh cache), W a local directory
# and checks that the merge wrote the same bytes as the run. It prints the
# sharded total and the merge's time as ratios of the one run's (medians over
# the rounds), and what a shard keeps per object: its cache and part on disk
# (bytes/object) and its peak RSS. On this 2-core machine the 4 shards share
# 2 cores with the server, so the total ratio shows the overhead of
# sharding, not the speed-up of N machines (README: cost model).
#
# Then, what one shard keeps per object at BENCH_SHARD_STATE_OBJECTS
# (1,000,000) objects: a plan of 1 shard over a directory of that many small
# PNGs (bench/gen many; a directory source, so the S3 server's own cost
# stays out), its shard run's cache and part on disk and its peak RSS.
#
# Knobs: BENCH_DIR (default REPO/.tools/bench), BENCH_SHARD_ROUNDS (2; 0 skips the rounds),
# BENCH_MANY_OBJECTS (100000), BENCH_SHARDS (4), BENCH_TIMEOUT (600 s),
# BENCH_SHARD_STATE_OBJECTS (1000000; 0 skips that part).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"
BENCH=${BENCH_DIR:-$REPO/.tools/bench}
ROUNDS=${BENCH_SHARD_ROUNDS:-2}
OBJECTS=${BENCH_MANY_OBJECTS:-100000}
SHARDS=${BENCH_SHARDS:-4}
TIMEOUT=${BENCH_TIMEOUT:-600}
STATE_OBJECTS=${BENCH_SHARD_STATE_OBJECTS:-1000000}
GO=${GO:-go}

log() { printf 'bench-shard: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t / 1000))"; } # ms
[[ -x /usr/bin/time ]] || die "GNU time missing (apt-get install time)"

mkdir -p "$BENCH/bin"
"$GO" build -o bin/kneepipe ./cmd/kneepipe
"$GO" build -o "$BENCH/bin/" ./bench/gen
[[ -x .tools/bin/versitygw ]] || make -s -f scripts/tools.mk tools >&2
DATA=$BENCH/s3data
"$BENCH/bin/gen" many -out "$DATA/kneemany/datasets" -objects "$OBJECTS" -stamp "$BENCH/stamps/many"

STATE=$BENCH/state-shard
RUN=$BENCH/run-shard
cleanup() {
	local rc=$?
	scripts/s3server.sh stop "$STATE" || true
	rm -rf "$RUN"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
scripts/s3server.sh stop "$STATE"
eval "$(KNEEPIPE_S3_ACCESS_LOG=0 KNEEPIPE_S3_WATCH_PID=$$ scripts/s3server.sh start "$DATA" "$STATE")"
SRC=(-f examples/notebook.yaml --source s3://kneemany/datasets/ --endpoint "$KNEEPIPE_S3_ENDPOINT" --region us-east-1)
KP=(timeout "$TIMEOUT" bin/kneepipe)

one_round() { # $1 round -> ms
	local d=$RUN/$1 t0
	t0=$(now)
	"${KP[@]}" run "${SRC[@]}" --out "$d/one" --cache "$d/one-cache" 2>"$d/one.log" || die "run failed: $(tail -3 "$d/one.log")"
	echo $(($(now) - t0))
}

sharded_round() { # $1 round -> "total plan shards merge" ms
	local d=$RUN/$1 t0 t1 t2 t3 i pids=()
	t0=$(now)
	"${KP[@]}" shard plan "${SRC[@]}" --shards "$SHARDS" --work "$d/work" --cache "$d/plan-cache" >"$d/plan.out" 2>"$d/plan.log" ||
		die "plan failed: $(tail -3 "$d/plan.log")"
	t1=$(now)
	for ((i = 0; i < SHARDS; i++)); do
		/usr/bin/time -f %M -o "$d/rss.$i" "${KP[@]}" shard run "${SRC[@]}" --shard "$i/$SHARDS" --work "$d/work" 2>"$d/shard.$i.log" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || die "shard $i failed: $(tail -3 "$d/shard.$i.log")"; done
	t2=$(now)
	"${KP[@]}" shard merge "${SRC[@]}" --work "$d/work" --out "$d/merged" --cache "$d/merge-cache" 2>"$d/merge.log" ||
		die "merge failed: $(tail -3 "$d/merge.log")"
	t3=$(now)
	echo "$((t3 - t0)) $((t1 - t0)) $((t2 - t1)) $((t3 - t2))"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratios=() merges=() plans=() ones=() totals=()
for ((r = 1; r <= ROUNDS; r++)); do
	rm -rf "$RUN"
	mkdir -p "$RUN/$r"
	if ((r % 2)); then
		one=$(one_round "$r")
		read -r total plan shards merge < <(sharded_round "$r")
	else
		read -r total plan shards merge < <(sharded_round "$r")
		one=$(one_round "$r")
	fi
	diff -r -x run.json "$RUN/$r/one" "$RUN/$r/merged" >/dev/null || die "round $r: the merge's artifacts differ from the run's"
	log "round $r: one run ${one} ms; sharded ${total} ms (plan ${plan}, $SHARDS shards ${shards}, merge ${merge}); artifacts identical"
	ones+=("$one") totals+=("$total")
	ratios+=("$(awk -v a="$total" -v b="$one" 'BEGIN {printf "%.3f", a/b}')")
	merges+=("$(awk -v a="$merge" -v b="$one" 'BEGIN {printf "%.3f", a/b}')")
	plans+=("$(awk -v a="$plan" -v b="$one" 'BEGIN {printf "%.3f", a/b}')")
	if ((r == ROUNDS)); then
		d=$RUN/$r
		per_shard=$(sed -n 's/.*(\(.*\)).*/\1/p' "$d/plan.out" | cut -d, -f1 | tr -d ' ')
		disk0=$(($(du -sb "$d/work/cache/shards/0-of-$SHARDS" | cut -f1) + $(du -cb "$d/work/parts/0-of-$SHARDS"* | tail -1 | cut -f1)))
		rss0=$(cat "$d/rss.0")
		rps=$(awk -v n="$per_shard" -v s="$shards" 'BEGIN {printf "%.0f", n/(s/1000)}')
	fi
done
m() { printf '%s\n' "$@" | median; }
((ROUNDS > 0)) && cat <<EOF2
## Sharded run ($OBJECTS objects, $SHARDS shards as $SHARDS processes on this machine, $ROUNDS rounds, medians)

| figure | value |
| --- | --- |
| one run | $(m "${ones[@]}") ms |
| sharded total (plan + shards + merge) | $(m "${totals[@]}") ms |
| sharded total / one run | $(m "${ratios[@]}") |
| merge / one run | $(m "${merges[@]}") |
| plan / one run | $(m "${plans[@]}") |
| shard 0: objects | $per_shard |
| shard 0: objects/s (its $SHARDS shards sharing 2 cores) | $rps |
| shard 0: cache + part on disk | $disk0 bytes, $((disk0 / per_shard)) bytes/object |
| shard 0: peak RSS | $rss0 KiB, $((rss0 * 1024 / per_shard)) bytes/object |
EOF2

((STATE_OBJECTS > 0)) || exit 0
DIR=$BENCH/dir$STATE_OBJECTS/datasets
"$BENCH/bin/gen" many -out "$DIR" -objects "$STATE_OBJECTS" -stamp "$BENCH/stamps/dir$STATE_OBJECTS"
d=$RUN/state
mkdir -p "$d"
DSRC=(-f examples/notebook.yaml --source "$DIR")
log "state: one shard of $STATE_OBJECTS objects (directory source)"
timeout "$((TIMEOUT * 4))" bin/kneepipe shard plan "${DSRC[@]}" --shards 1 --work "$d/work" --cache "$d/plan-cache" >"$d/plan.out" 2>"$d/plan.log" ||
	die "state: plan failed: $(tail -3 "$d/plan.log")"
/usr/bin/time -f '%M %e' -o "$d/rss" timeout "$((TIMEOUT * 4))" bin/kneepipe shard run "${DSRC[@]}" --shard 0/1 --work "$d/work" 2>"$d/shard.log" ||
	die "state: shard failed: $(tail -3 "$d/shard.log")"
read -r rss secs <"$d/rss"
disk=$(($(du -sb "$d/work/cache/shards/0-of-1" | cut -f1) + $(du -cb "$d/work/parts/0-of-1"* | tail -1 | cut -f1)))
record=$(du -cb "$d/work/cache/shards/0-of-1/state" | tail -1 | cut -f1)
cat <<EOF2

## What one shard keeps, $STATE_OBJECTS objects

| figure | value |
| --- | --- |
| shard run time | $secs s |
| cache + part on disk | $disk bytes, $((disk / STATE_OBJECTS)) bytes/object |
| of which fetch-hash's record (resume after kill -9) | $record bytes, $((record / STATE_OBJECTS)) bytes/object |
| peak RSS | $rss KiB, $((rss * 1024 / STATE_OBJECTS)) bytes/object |
EOF2
