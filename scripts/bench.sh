#!/usr/bin/env bash
# scripts/bench.sh -- kneepipe's benchmark against peers measured in the same
# run (`make bench` builds bin/kneepipe and versitygw, then runs this).
#
# What it measures (docs/benchmarks.md has the results and their reading):
#   s3      `kneepipe run -f examples/notebook.yaml` over a local S3 server
#           (versitygw) holding a synthetic bucket shaped like the real one
#           (3300 objects, ~114 MB), cold cache, vs the bare Go loop
#           (bench/peers/bareloop, 64 workers), `rclone hashsum SHA-256
#           --download --checkers 50`, and the notebook's own code
#           (bench/peers/notebook.py: boto3, 50 threads, pandas).
#   warm    the no-op rerun of the same command on the warm cache, vs the cold
#           run of the same round.
#   many    the same notebook.yaml over a bucket of 100,000 small (~1.5 KB)
#           PNGs in the same layout (s3://kneemany/datasets/, bench/gen many),
#           on the same server: a cold run (fresh cache), then the no-op rerun
#           on that cache, side by side, with objects listed and GETs from
#           run.json. Checks the cold run's CSVs against the reference and
#           the rerun's artifacts against the cold run's, byte for byte.
#   fingerprint  a cold list + fetch-hash over the 3300-object bucket with
#           near-duplicate fingerprints on vs off (bench/pipelines/fingerprint.yaml).
#   big     peak RSS (and time) hashing ONE 1 GiB object: list + fetch-hash
#           (bench/pipelines/fetch-hash.yaml) vs bareloop.
#   export  the training set: `kneepipe run -f bench/pipelines/export.yaml`
#           (list .. split, export Hugging Face Parquet + WebDataset shards)
#           over the s3 group's bucket, cold cache, vs the cold notebook.yaml
#           run of the same round; then a rerun on that cache into a new --out
#           (every stage cached, shards copied from the cache) and one with
#           --force=export (shards written again from the image cache), each
#           checked to download nothing and to write the same shards.
#   tail    the s3 group's kneepipe run through bench/faultproxy answering
#           10 % of GETs 503 SlowDown, cutting 4 % of bodies at half and
#           stalling 1 % for 120 s, vs the same run through the same proxy
#           without faults, in alternating rounds (issue 14: <= 3x).
#   tables  `kneepipe run -f examples/notebook-from-csv.yaml` on a
#           1,000,000-row raw_data.csv (fresh cache each time) vs pandas
#           (bench/peers/notebook_tables.py) vs DuckDB SQL
#           (bench/peers/duckdbsql); stage cache written and a no-op
#           rerun checked in every round.
#   tables10m  the same on a 10,000,000-row CSV (1.75 GB, generated once),
#           when enough memory is available.
# Every figure is reported as a ratio against a peer of the same group, from
# rounds in which the group's peers alternate (the order rotates each round);
# medians with min..max. Outputs are checked in every round: all peers that
# write the notebook's CSVs must write the same bytes.
#
# Usage: scripts/bench.sh            (from anywhere; prints the Markdown report)
# Knobs (environment):
#   BENCH_DIR           work dir, default REPO/.tools/bench (gitignored). Holds
#                       the generated data (kept and reused: generation is
#                       stamped), bin/, state/ (server), run/ (scratch, wiped)
#                       and results/<UTC time>/ (meta.tsv, results.tsv, logs/,
#                       report.md).
#   BENCH_ROUNDS        rounds for s3/warm (default 9); notebook.py (~20 s a
#                       run) takes part in the first BENCH_NOTEBOOK_ROUNDS (3)
#   BENCH_BIG_ROUNDS    rounds for big (default 3)
#   BENCH_TABLE_ROUNDS  rounds for tables (default 5)
#   BENCH_TABLE_BIG_ROUNDS  rounds for tables10m (default 1; pandas takes
#                       ~95 s a run)
#   BENCH_TABLE_BIG_MIN_GB  tables10m is skipped when less memory is
#                       available (default 18)
#   BENCH_TAIL_ROUNDS   rounds for tail (default 3)
#   BENCH_MANY_ROUNDS   rounds for many (default 2; a cold run takes ~20-27 s on a
#                       quiet 2-CPU machine, the rerun ~4 s)
#   BENCH_MANY_OBJECTS  objects in the many bucket (default 100000)
#   BENCH_CSV_ROWS      rows of the table benchmark's CSV (default 1000000)
#   BENCH_CSV_BIG_ROWS  rows of tables10m's CSV (default 10000000, 1.75 GB)
#   BENCH_BIG_SIZE      bytes of the big object (default 1073741824)
#   BENCH_TIMEOUT       seconds before one command is killed (default 600)
#   BENCH_QUIET_WAIT    seconds a round may wait for the machine to be quiet
#                       (default 15), BENCH_QUIET_BUDGET in all (default 90)
#   BENCH_EXPORT_ROUNDS rounds for export (default 3)
#   BENCH_KNEE_DEV      the knee-dev images the fingerprint group copies into a
#                       bucket of 3300 decodable PNGs (default ../shared/knee-dev)
#   BENCH_XRAY_CORPUS   chest radiographs for the neardup group, written by
#                       scripts/fetch-xray-corpus.sh (default .tools/xray-corpus;
#                       skipped when it has no images.csv)
#   BENCH_SKIP          space-separated groups to skip: s3 (with warm) many
#                       big export fingerprint tables tables10m neardup tail
#   BENCH_GROUPS        space-separated groups to run, the others skipped
#                       (default all), e.g. BENCH_GROUPS=export
#
# Needs: Go, and Debian packages rclone, python3-boto3, python3-pandas, time
# (installed with apt-get if missing; as root or through sudo).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"

BENCH=${BENCH_DIR:-$REPO/.tools/bench}
ROUNDS=${BENCH_ROUNDS:-9}
NOTEBOOK_ROUNDS=${BENCH_NOTEBOOK_ROUNDS:-3}
TABLE_ROUNDS=${BENCH_TABLE_ROUNDS:-5}
TAIL_ROUNDS=${BENCH_TAIL_ROUNDS:-3}
BIG_ROUNDS=${BENCH_BIG_ROUNDS:-3}
MANY_ROUNDS=${BENCH_MANY_ROUNDS:-2}
EXPORT_ROUNDS=${BENCH_EXPORT_ROUNDS:-3}
MANY_OBJECTS=${BENCH_MANY_OBJECTS:-100000}
CSV_ROWS=${BENCH_CSV_ROWS:-1000000}
CSV_BIG_ROWS=${BENCH_CSV_BIG_ROWS:-10000000}
TABLE_BIG_ROUNDS=${BENCH_TABLE_BIG_ROUNDS:-1}
TABLE_BIG_MIN_GB=${BENCH_TABLE_BIG_MIN_GB:-18}
BIG_SIZE=${BENCH_BIG_SIZE:-1073741824}
TIMEOUT=${BENCH_TIMEOUT:-600}
SKIP=" ${BENCH_SKIP:-} "
ONLY=" ${BENCH_GROUPS:-} "
GO=${GO:-go}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
skipped() { [[ $SKIP == *" $1 "* ]] || [[ -n ${ONLY// /} && $ONLY != *" $1 "* ]]; }

T_START=${EPOCHREALTIME/[.,]/}
elapsed() { local t=${EPOCHREALTIME/[.,]/}; echo $(((10#$t - 10#$T_START) / 1000000)); }

# ------------------------------------------------------------------ deps
install_deps() {
	command -v dpkg-query >/dev/null || die "not a Debian system: install rclone, python3-boto3, python3-pandas and GNU time by hand"
	local p missing=()
	for p in rclone python3-boto3 python3-pandas time findimagedupes; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	local sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
		sudo=(sudo)
	fi
	log "installing ${missing[*]} (apt-get)"
	"${sudo[@]}" apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
}
install_deps
command -v "$GO" >/dev/null || die "go not found"

# ------------------------------------------------------------------ build
BIN=$BENCH/bin
mkdir -p "$BIN"
log "building bin/kneepipe and the bench tools"
"$GO" build -o bin/kneepipe ./cmd/kneepipe
"$GO" build -o "$BIN/" ./bench/gen ./bench/peers/bareloop ./bench/peers/duckdbsql ./bench/report ./bench/faultproxy
[[ -x .tools/bin/versitygw ]] || make -s -f scripts/tools.mk tools >&2

# ------------------------------------------------------------------ data
DATA=$BENCH/s3data # every top-level dir is a bucket
CSV=$BENCH/csv/raw_data.csv
CSV_BIG=$BENCH/csv-big/raw_data.csv
log "generating data (reused when stamped)"
"$BIN/gen" bucket -out "$DATA/kneebench/datasets" -stamp "$BENCH/stamps/bucket"
if ! skipped big; then
	"$BIN/gen" big -out "$DATA/kneebig/big/blob.png" -size "$BIG_SIZE" -stamp "$BENCH/stamps/big"
fi
if ! skipped tables; then
	"$BIN/gen" csv -out "$CSV" -rows "$CSV_ROWS" -stamp "$BENCH/stamps/csv"
fi
if ! skipped tables10m; then
	"$BIN/gen" csv -out "$CSV_BIG" -rows "$CSV_BIG_ROWS" -stamp "$BENCH/stamps/csv-big"
fi
if ! skipped many; then
	"$BIN/gen" many -out "$DATA/kneemany/datasets" -objects "$MANY_OBJECTS" -stamp "$BENCH/stamps/many"
fi
# The fingerprint group needs images that decode (bench/gen's IDATs are
# random bytes): 3300 objects from the real knee-dev PNGs (copies under
# c1..c4/), when $KNEE_DEV (BENCH_KNEE_DEV, default ../shared/knee-dev) exists.
KNEE_DEV=${BENCH_KNEE_DEV:-../shared/knee-dev}
FP_BUCKET=kneebench
if ! skipped fingerprint && [[ -d $KNEE_DEV ]]; then
	FP_BUCKET=kneefp
	if [[ ! -f $BENCH/stamps/kneefp ]]; then
		rm -rf "$DATA/kneefp"
		n=0
		for c in 1 2 3 4; do
			while IFS= read -r f; do
				((n++ < 3300)) || break
				rel=${f#"$KNEE_DEV"/}
				mkdir -p "$DATA/kneefp/datasets/c$c/$(dirname "$rel")"
				cp "$f" "$DATA/kneefp/datasets/c$c/$rel"
			done < <(find "$KNEE_DEV" -name '*.png' | LC_ALL=C sort)
		done
		mkdir -p "$BENCH/stamps" && touch "$BENCH/stamps/kneefp"
	fi
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH/results/$STAMP
LOGS=$RES/logs
WORK=$BENCH/run
rm -rf "$WORK"
mkdir -p "$LOGS" "$WORK"
META=$RES/meta.tsv
RESULTS=$RES/results.tsv
: >"$META"
: >"$RESULTS"
: >"$RES/stages.tsv"
: >"$RES/counts.tsv"
meta() { local IFS=$'\t'; printf '%s\n' "$*" >>"$META"; }

# ------------------------------------------------------------------ server
STATE=$BENCH/state
TAIL_PIDS=() # fault proxies of the tail group
cleanup() {
	local rc=$?
	((${#TAIL_PIDS[@]} == 0)) || kill -TERM "${TAIL_PIDS[@]}" 2>/dev/null || true
	scripts/s3server.sh stop "$STATE" || true
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A fresh server with the access log off: it would add a write per request
# to a server that shares the 2 cores with the client under test.
scripts/s3server.sh stop "$STATE"
env_file=$(KNEEPIPE_S3_ACCESS_LOG=0 KNEEPIPE_S3_WATCH_PID=$$ scripts/s3server.sh start "$DATA" "$STATE")
eval "$env_file"
EP=$KNEEPIPE_S3_ENDPOINT
SERVER_PID=$(cat "$STATE/pid")
log "versitygw pid $SERVER_PID on $EP"

# ------------------------------------------------------------------ machine
model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
memkb=$(awk '/^MemTotal/ {print $2}' /proc/meminfo)
dirty=$(git status --porcelain -- cmd runner stages internal go.mod 2>/dev/null | wc -l)
meta info "machine" "$(nproc) CPUs ($model), $((memkb / 1024 / 1024)) GiB RAM ($((memkb / 1024)) MiB), Linux $(uname -r)"
meta info "load average at start" "$(cut -d' ' -f1-3 /proc/loadavg)"
meta info "kneepipe" "$(git rev-parse --short HEAD 2>/dev/null || echo '?') with $dirty changed/untracked paths under cmd/ runner/ stages/ internal/; bin/kneepipe sha256 $(sha256sum bin/kneepipe | cut -c1-12)"
meta info "Go" "$("$GO" version | cut -d' ' -f3-)"
meta info "S3 server" "versitygw $(ls .tools/stamps 2>/dev/null | sed -n 's/^versitygw-//p' | tail -n 1) (posix backend, 127.0.0.1, access log off), same machine"
meta info "rclone" "$(rclone version 2>/dev/null | head -1)"
meta info "Python" "$(/usr/bin/python3 -c 'import sys, boto3, pandas; print(sys.version.split()[0], "boto3", boto3.__version__, "pandas", pandas.__version__)')"
meta info "bucket" "s3://kneebench/datasets/: $(find "$DATA/kneebench/datasets" -type f -name '*.png' | wc -l) objects, $(find "$DATA/kneebench/datasets" -type f -name '*.png' -printf '%s\n' | awk '{s+=$1} END {printf "%.1f MB", s/1e6}') (bench/gen bucket)"
skipped big || meta info "big object" "s3://kneebig/big/blob.png: $BIG_SIZE bytes"
skipped tables || meta info "table CSV" "$CSV_ROWS rows, $(($(stat -c %s "$CSV") / 1000000)) MB (bench/gen csv)"
[[ -f $CSV_BIG ]] && meta info "big table CSV" "$CSV_BIG_ROWS rows, $(($(stat -c %s "$CSV_BIG") / 1000000)) MB (bench/gen csv)"
meta info "page cache" "all inputs are in the page cache (24 GiB RAM, files read before the timed rounds); 'cold' means kneepipe's --cache is a fresh empty directory"

# ------------------------------------------------------------------ measure
# The machine may be shared: every measurement also records the CPU seconds
# of the command (user+sys, from GNU time), of our S3 server, and the share
# of the machine that other processes used meanwhile ("foreign" CPU, from
# /proc/stat), so a noisy round can be seen in results.tsv and the report.
NCPU=$(nproc)
TCK=$(getconf CLK_TCK)
cpu_busy() { # busy jiffies of the whole machine
	local _cpu user nice system idle iowait irq softirq steal _rest
	read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
	echo $((user + nice + system + irq + softirq + steal))
}
server_cpu() { # jiffies used by our versitygw
	local st
	[[ -n $SERVER_PID ]] && st=$(cat "/proc/$SERVER_PID/stat" 2>/dev/null) || { echo 0; return; }
	st=${st##*) }
	set -- $st
	echo $((${12} + ${13}))
}

# quiet_gate: before a round, wait (at most BENCH_QUIET_WAIT seconds per
# round, BENCH_QUIET_BUDGET in all) for a 1-second window in which other
# processes use less than half a CPU.
QUIET_WAIT=${BENCH_QUIET_WAIT:-15}
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-90}
quiet_gate() {
	local waited=0 b0 s0 b1 s1 foreign
	while :; do
		b0=$(cpu_busy) s0=$(server_cpu)
		sleep 1
		b1=$(cpu_busy) s1=$(server_cpu)
		foreign=$((b1 - b0 - (s1 - s0)))
		((foreign * 2 < TCK)) && return 0
		((waited < QUIET_WAIT && QUIET_BUDGET > 0)) || {
			log "  machine busy (other processes used $((foreign * 100 / TCK))% of a CPU); measuring anyway"
			return 0
		}
		((waited += 1, QUIET_BUDGET -= 1)) || true
	done
}

# measure GROUP PEER ROUND NAME CMD...: runs CMD (stdout to logs/NAME.out,
# stderr to logs/NAME.err), records wall seconds, peak RSS, CPU seconds and
# foreign CPU share. ROUND 0 is a warm-up: not recorded. A failing command
# stops the benchmark.
LAST_SECS= LAST_REST=
measure() {
	local group=$1 peer=$2 round=$3 name=$4
	shift 4
	local tf=$WORK/time.out t0 t1 b0 b1 s0 s1 rc=0
	b0=$(cpu_busy) s0=$(server_cpu)
	t0=${EPOCHREALTIME/[.,]/}
	/usr/bin/time -f '%M %U %S' -o "$tf" timeout -k 10 "$TIMEOUT" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
	t1=${EPOCHREALTIME/[.,]/}
	b1=$(cpu_busy) s1=$(server_cpu)
	if ((rc != 0)); then
		log "$name failed (exit $rc): $*"
		tail -n 20 "$LOGS/$name.err" >&2
		exit 1
	fi
	local us=$((10#$t1 - 10#$t0)) rss usr sys
	read -r rss usr sys < <(tail -n 1 "$tf")
	LAST_SECS=$(printf '%d.%06d' $((us / 1000000)) $((us % 1000000)))
	LAST_REST=$(awk -v rss="$rss" -v u="$usr" -v s="$sys" -v db=$((b1 - b0)) -v ds=$((s1 - s0)) \
		-v tck="$TCK" -v wall="$LAST_SECS" -v n="$NCPU" 'BEGIN {
			f = (db - ds) / tck - (u + s); if (f < 0) f = 0
			printf "%s\t%.2f\t%.2f\t%.3f", rss, u + s, ds / tck, f / (wall * n)
		}')
	if ((round > 0)); then
		printf '%s\t%s\t%s\t%s\t%s\n' "$group" "$peer" "$round" "$LAST_SECS" "$LAST_REST" >>"$RESULTS"
	fi
	log "  $group/$peer round $round: ${LAST_SECS}s, rss KB / cpu s / server cpu s / foreign share: ${LAST_REST//$'\t'/ }"
}

# rotate N ITEMS...: ITEMS rotated left by N.
rotate() {
	local n=$1
	shift
	local -a a=("$@")
	n=$((n % ${#a[@]}))
	printf '%s\n' "${a[@]:n}" "${a[@]:0:n}"
}

# stages GROUP PEER ROUND RUN_JSON: per-stage seconds from kneepipe's
# run.json into stages.tsv (the report's breakdown table), with the run's
# total and what the process spent outside it (start-up, config, exit),
# from the wall time just measured.
stages() {
	(($3 > 0)) || return 0
	/usr/bin/python3 -c '
import json, sys
group, peer, rnd, path, wall = sys.argv[1:6]
rep = json.load(open(path))
for s in rep["stages"]:
    print(group, peer, rnd, s["name"], s.get("seconds", 0), sep="\t")
print(group, peer, rnd, "(run.json total: stages, waiting for cache writes, artifacts)", rep["seconds"], sep="\t")
print(group, peer, rnd, "(process wall time minus run.json total)", float(wall) - rep["seconds"], sep="\t")
' "$@" "$LAST_SECS" >>"$RES/stages.tsv"
}

# run_counts GROUP PEER ROUND RUN_JSON: objects listed, GET requests and
# stages taken from the cache, from kneepipe's run.json, into counts.tsv
# (the report prints them under the group's table); prints the GETs. GETs
# are fetch-hash's and export's counts.downloaded when the stage ran. A cached stage
# replays the counts of the run that computed it, but sends no request, so
# it counts as 0 GETs. (The server's access log, which would count them at
# the other end, is off for speed.)
run_counts() {
	/usr/bin/python3 -c '
import json, sys
group, peer, rnd, path, tsv = sys.argv[1:6]
rep = json.load(open(path))
st = rep["stages"]
gets = sum(s.get("counts", {}).get("downloaded", 0) for s in st if s["kind"] in ("fetch-hash", "export") and s["status"] != "cached")
rows = [("objects listed", rep["objects"]["listed"]),
        ("GET requests (fetch-hash and export downloads; 0 when the stage is cached)", gets),
        ("stages taken from the cache (of %d)" % len(st), sum(s["status"] == "cached" for s in st))]
if int(rnd) > 0:
    with open(tsv, "a") as f:
        for what, v in rows:
            print(group, peer, rnd, what, v, sep="\t", file=f)
print(gets)
' "$@" "$RES/counts.tsv"
}

# artifacts RUN_JSON: the artifact files a run wrote, one per line.
artifacts() {
	/usr/bin/python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["artifacts"]))' "$1"
}

same() { # same FILE_A FILE_B WHAT
	cmp -s "$1" "$2" || die "output check failed: $3 ($1 differs from $2)"
}

# bench_reference: the notebook's CSVs over the bench bucket's directory,
# which every kneepipe run over it must write byte for byte.
bench_reference() {
	[[ -s $WORK/ref/raw_data.csv ]] && return 0
	log "reference outputs: testdata/reference/notebook.py over the bucket's directory"
	/usr/bin/python3 testdata/reference/notebook.py "$DATA/kneebench/datasets" "$WORK/ref" >"$LOGS/reference.out" 2>&1 ||
		die "reference notebook failed: $(tail -5 "$LOGS/reference.out")"
}

KP_S3=(bin/kneepipe run -f examples/notebook.yaml --source s3://kneebench/datasets/ --endpoint "$EP" --region us-east-1)
NB_CSVS=(raw_data deleted_paths different_severity normalized_data)
TABLE_CSVS=(deleted_paths different_severity normalized_data)

# ------------------------------------------------------------------ s3 + warm
if ! skipped s3; then
	meta group s3 "Cold run over S3: 3300 objects, ~114 MB (list, fetch + SHA-256/MD5, notebook tables)" bareloop
	meta peer s3 bareloop "bareloop (Go, 64 workers; list + GET + SHA-256 + MD5)" "bench/peers/bareloop -workers 64 -endpoint \$EP s3://kneebench/datasets/"
	meta peer s3 kneepipe "kneepipe notebook.yaml (cold cache)" "bin/kneepipe run -f examples/notebook.yaml --source s3://kneebench/datasets/ --endpoint \$EP --region us-east-1 --out OUT --cache FRESH_EMPTY_DIR"
	meta peer s3 rclone "rclone hashsum SHA-256 --download (SHA-256 only)" "rclone hashsum SHA-256 --download --checkers 50 kb:kneebench/datasets/   (remote kb from RCLONE_CONFIG_KB_* env: type s3, provider Other, force_path_style)"
	meta peer s3 notebook "notebook.py (boto3, 50 threads, pandas)" "/usr/bin/python3 bench/peers/notebook.py OUT   (S3_ENDPOINT=\$EP)"
	meta group warm "No-op rerun (warm cache) vs the cold run of the same round" cold "each the cold run, then the rerun on its cache"
	meta peer warm cold "kneepipe notebook.yaml, cold cache" "(the s3 group's kneepipe run)"
	meta peer warm warm "kneepipe notebook.yaml, rerun on that cache" "the same command again with the same --cache (new --out)"
	meta target s3 kneepipe ratio "<=" 1.2 "kneepipe cold run within 1.2x of bareloop"
	meta target s3 kneepipe rss_mb "<=" 100 "kneepipe cold run peak RSS <= 100 MB"
	meta target warm warm ratio "<=" 0.10 "kneepipe no-op rerun <= 10% of the cold run (issue 3)"

	bench_reference
	# Expected `sha256  relative_path` lines, as rclone prints them.
	awk -F, 'NR > 1 { split($2, h, ":"); print h[1] "  " $4 }' "$WORK/ref/raw_data.csv" | LC_ALL=C sort >"$WORK/ref/sha256.txt"
	# Expected bareloop manifest: key, size, sha256, md5.
	(cd "$DATA/kneebench" && find datasets -type f -name '*.png' -printf '%p\t%s\n' | LC_ALL=C sort) >"$WORK/ref/sizes.tsv"
	awk -F, 'NR > 1 { split($2, h, ":"); print "datasets/" $4 "\t" h[1] "\t" h[2] }' "$WORK/ref/raw_data.csv" | LC_ALL=C sort >"$WORK/ref/hashes.tsv"
	LC_ALL=C join -t $'\t' "$WORK/ref/sizes.tsv" "$WORK/ref/hashes.tsv" >"$WORK/ref/manifest.tsv"
	[[ $(wc -l <"$WORK/ref/manifest.tsv") == 3300 ]] || die "reference manifest has $(wc -l <"$WORK/ref/manifest.tsv") lines, want 3300 (a key with a tab or a comma?)"

	s3_kneepipe() {
		local r=$1 out=$WORK/s3/kneepipe.$1 cache=$WORK/s3/cache.$1
		rm -rf "$out" "$cache" "$out.warm"
		mkdir -p "$cache"
		measure s3 kneepipe "$r" "s3-kneepipe.$r" "${KP_S3[@]}" --out "$out" --cache "$cache"
		local cold=$LAST_SECS rest=$LAST_REST
		stages s3 kneepipe "$r" "$out/run.json"
		stages warm cold "$r" "$out/run.json"
		for f in "${NB_CSVS[@]}"; do same "$out/$f.csv" "$WORK/ref/$f.csv" "kneepipe $f.csv"; done
		if ((r > 0)); then
			printf 'warm\tcold\t%s\t%s\t%s\n' "$r" "$cold" "$rest" >>"$RESULTS"
		fi
		measure warm warm "$r" "s3-kneepipe-warm.$r" "${KP_S3[@]}" --out "$out.warm" --cache "$cache"
		stages warm warm "$r" "$out.warm/run.json"
		grep -q '"status": "cached"' "$out.warm/run.json" || die "warm rerun cached nothing ($out.warm/run.json)"
		grep -q '"raw_data": "copied"' "$out.warm/run.json" || die "warm rerun did not copy raw_data from the cache ($out.warm/run.json)"
		for f in "${NB_CSVS[@]}"; do same "$out.warm/$f.csv" "$WORK/ref/$f.csv" "kneepipe warm $f.csv"; done
		rm -rf "$out" "$out.warm" "$cache"
	}
	s3_bareloop() {
		local r=$1
		measure s3 bareloop "$r" "s3-bareloop.$r" "$BIN/bareloop" -workers 64 -endpoint "$EP" -manifest "$WORK/s3/bareloop.tsv" s3://kneebench/datasets/
		same "$WORK/s3/bareloop.tsv" "$WORK/ref/manifest.tsv" "bareloop manifest"
	}
	s3_rclone() {
		local r=$1
		measure s3 rclone "$r" "s3-rclone.$r" env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null \
			RCLONE_CONFIG_KB_TYPE=s3 RCLONE_CONFIG_KB_PROVIDER=Other RCLONE_CONFIG_KB_ENV_AUTH=false \
			RCLONE_CONFIG_KB_ENDPOINT="$EP" RCLONE_CONFIG_KB_REGION=us-east-1 RCLONE_CONFIG_KB_FORCE_PATH_STYLE=true \
			RCLONE_CONFIG_KB_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_KB_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
			rclone hashsum SHA-256 --download --checkers 50 kb:kneebench/datasets/
		LC_ALL=C sort "$LOGS/s3-rclone.$r.out" >"$WORK/s3/rclone.txt"
		same "$WORK/s3/rclone.txt" "$WORK/ref/sha256.txt" "rclone sha256 list"
	}
	s3_notebook() {
		local r=$1 out=$WORK/s3/notebook.$1
		rm -rf "$out"
		measure s3 notebook "$r" "s3-notebook.$r" env S3_ENDPOINT="$EP" AWS_DEFAULT_REGION=us-east-1 \
			BUCKET_NAME=kneebench DATASET_DIR=datasets/ /usr/bin/python3 bench/peers/notebook.py "$out"
		for f in "${NB_CSVS[@]}"; do same "$out/$f.csv" "$WORK/ref/$f.csv" "notebook.py $f.csv"; done
		rm -rf "$out"
	}
	mkdir -p "$WORK/s3"
	log "s3: warm-up round (not recorded) + $ROUNDS rounds ($NOTEBOOK_ROUNDS with notebook.py)"
	for ((r = 0; r <= ROUNDS; r++)); do
		quiet_gate
		for p in $(rotate "$r" kneepipe bareloop rclone notebook); do
			[[ $p == notebook ]] && ((r > NOTEBOOK_ROUNDS)) && continue
			"s3_$p" "$r"
		done
	done
	meta check "kneepipe (cold and warm) and notebook.py wrote raw_data.csv, deleted_paths.csv, different_severity.csv and normalized_data.csv byte-identical to testdata/reference/notebook.py run on the bucket's directory, every round"
	meta check "kneepipe's no-op rerun took every stage but the listing from the cache and copied raw_data from the cache's stored artifacts (run.json), every round"
	meta check "bareloop's manifest (key, size, sha256, md5) and rclone's SHA-256 list equal the reference's, every round"
	meta check "reference figures of the generated bucket (testdata/reference/notebook.py): $(grep -E '^(rows:|in-expert|disagreements)' "$LOGS/reference.out" | paste -sd'/' | sed 's|/| / |g')"
fi

# ------------------------------------------------------------------ tail
if ! skipped tail; then
	TAIL_MIX=(-slowdown 0.10 -cut 0.04 -stall 0.01 -stall-for 120s)
	meta group tail "Cold run through a fault proxy (bench/faultproxy): 10 % of GETs 503 SlowDown, 4 % of bodies cut at half, 1 % stalled 120 s; vs the same proxy without faults" clean
	meta gnote tail "Both peers are the s3 group's kneepipe command (examples/notebook.yaml, shipped parameters: stall_timeout 30 s, 4 attempts) with --endpoint at a bench/faultproxy in front of the same versitygw; rounds alternate which goes first. The fault of a request depends on a seed, its key and how often the key was requested before, so a round's faults differ from the last round's but the mix is the same. Without hedging each stall waits out stall_timeout."
	meta peer tail clean "kneepipe through the proxy, no faults" "bench/faultproxy -upstream \$EP -bucket kneebench; bin/kneepipe run -f examples/notebook.yaml ... --endpoint PROXY --out OUT --cache FRESH_EMPTY_DIR"
	meta peer tail faults "kneepipe through the proxy with the fault mix" "bench/faultproxy -upstream \$EP -bucket kneebench ${TAIL_MIX[*]}; the same kneepipe command"
	meta target tail faults ratio "<=" 3 "the same bytes through the fault mix in <= 3x the time without faults (issue 14)"
	bench_reference
	mkdir -p "$WORK/tail"
	# tail_proxy NAME ARGS...: starts a proxy, sets TAIL_URL to its address.
	tail_proxy() {
		local name=$1 deadline=$((SECONDS + 10))
		shift
		"$BIN/faultproxy" -upstream "$EP" -bucket kneebench "$@" >"$WORK/tail/$name.url" 2>"$LOGS/faultproxy-$name.err" &
		TAIL_PIDS+=($!)
		until [[ -s $WORK/tail/$name.url ]]; do
			((SECONDS < deadline)) || die "faultproxy $name did not start: $(cat "$LOGS/faultproxy-$name.err")"
			sleep 0.05
		done
		TAIL_URL=$(head -1 "$WORK/tail/$name.url")
	}
	tail_proxy clean
	TAIL_CLEAN=$TAIL_URL
	tail_proxy faults "${TAIL_MIX[@]}"
	TAIL_FAULTS=$TAIL_URL
	tail_run() {
		local peer=$1 r=$2 ep out=$WORK/tail/$1.$2 cache=$WORK/tail/cache.$1.$2 f
		[[ $peer == clean ]] && ep=$TAIL_CLEAN || ep=$TAIL_FAULTS
		rm -rf "$out" "$cache"
		mkdir -p "$cache"
		measure tail "$peer" "$r" "tail-$peer.$r" bin/kneepipe run -f examples/notebook.yaml --source s3://kneebench/datasets/ \
			--endpoint "$ep" --region us-east-1 --out "$out" --cache "$cache"
		stages tail "$peer" "$r" "$out/run.json"
		run_counts tail "$peer" "$r" "$out/run.json" >/dev/null
		/usr/bin/python3 -c '
import json, sys
group, peer, rnd, path, tsv = sys.argv[1:6]
fetch = [s for s in json.load(open(path))["stages"] if s["kind"] == "fetch-hash"][0].get("counts", {})
if int(rnd) > 0:
    with open(tsv, "a") as f:
        for k in ("throttled", "retried", "hedged", "hedges_won"):
            print(group, peer, rnd, "fetch " + k, fetch.get(k, 0), sep="\t", file=f)
' tail "$peer" "$r" "$out/run.json" "$RES/counts.tsv"
		for f in "${NB_CSVS[@]}"; do same "$out/$f.csv" "$WORK/ref/$f.csv" "tail: kneepipe $peer $f.csv"; done
		rm -rf "$out" "$cache"
	}
	log "tail: warm-up round (not recorded) + $TAIL_ROUNDS rounds"
	for ((r = 0; r <= TAIL_ROUNDS; r++)); do
		quiet_gate
		for p in $(rotate "$r" faults clean); do tail_run "$p" "$r"; done
	done
	kill -TERM "${TAIL_PIDS[@]}"
	wait "${TAIL_PIDS[@]}" || true
	TAIL_PIDS=()
	meta check "tail: kneepipe wrote raw_data.csv, deleted_paths.csv, different_severity.csv and normalized_data.csv byte-identical to testdata/reference/notebook.py through both proxies, every round (warm-up included); $(cat "$LOGS/faultproxy-faults.err") through the faulty proxy, $(cat "$LOGS/faultproxy-clean.err") through the clean one, over all rounds"
fi

# ------------------------------------------------------------------ many
if ! skipped many; then
	MANY_DIR=$DATA/kneemany/datasets
	KP_MANY=(bin/kneepipe run -f examples/notebook.yaml --source s3://kneemany/datasets/ --endpoint "$EP" --region us-east-1)
	meta info "many bucket" "s3://kneemany/datasets/: $(find "$MANY_DIR" -type f -name '*.png' | wc -l) objects, $(find "$MANY_DIR" -type f -name '*.png' -printf '%s\n' | awk '{s+=$1} END {printf "%.1f MB, mean %.0f bytes", s/1e6, s/NR}') (bench/gen many)"
	meta group many "$MANY_OBJECTS small objects (~1.5 KB): cold run vs no-op rerun" cold "each the cold run (fresh empty --cache), then the no-op rerun on its cache; no other peers"
	meta gnote many "The bucket s3://kneemany/datasets/ (bench/gen many) is laid out like the real one, MedicalExpert-I|II/<grade>/<Stem> (N).png, on the same versitygw as the s3 group. Its objects are small, so this measures the cost per object (listing pages, GETs, fetch journal, cache entries) rather than per byte."
	meta peer many cold "kneepipe notebook.yaml, cold cache" "bin/kneepipe run -f examples/notebook.yaml --source s3://kneemany/datasets/ --endpoint \$EP --region us-east-1 --out OUT --cache FRESH_EMPTY_DIR"
	meta peer many warm "kneepipe notebook.yaml, no-op rerun on that cache" "the same command again with the same --cache (new --out)"

	mkdir -p "$WORK/many"
	log "many: reference outputs over the $MANY_OBJECTS-object bucket's directory (also reads it into the page cache)"
	/usr/bin/python3 testdata/reference/notebook.py "$MANY_DIR" "$WORK/many/ref" >"$LOGS/reference-many.out" 2>&1 ||
		die "reference notebook failed on the many bucket: $(tail -5 "$LOGS/reference-many.out")"
	many_round() {
		local r=$1 out=$WORK/many/out.$1 cache=$WORK/many/cache.$1 gets f
		rm -rf "$out" "$out.warm" "$cache"
		mkdir -p "$cache"
		measure many cold "$r" "many-cold.$r" "${KP_MANY[@]}" --out "$out" --cache "$cache"
		stages many cold "$r" "$out/run.json"
		gets=$(run_counts many cold "$r" "$out/run.json")
		[[ $gets == "$MANY_OBJECTS" ]] || die "many: the cold run made $gets GETs, want $MANY_OBJECTS ($out/run.json)"
		for f in "${NB_CSVS[@]}"; do same "$out/$f.csv" "$WORK/many/ref/$f.csv" "many: kneepipe cold $f.csv"; done
		measure many warm "$r" "many-warm.$r" "${KP_MANY[@]}" --out "$out.warm" --cache "$cache"
		stages many warm "$r" "$out.warm/run.json"
		gets=$(run_counts many warm "$r" "$out.warm/run.json")
		((gets == 0)) || log "  many: the no-op rerun made $gets GETs"
		grep -q '"status": "cached"' "$out.warm/run.json" || die "many: the rerun cached nothing ($out.warm/run.json)"
		# The rerun must write the same artifact files, byte for byte.
		artifacts "$out/run.json" >"$WORK/many/artifacts.cold"
		artifacts "$out.warm/run.json" >"$WORK/many/artifacts.warm"
		[[ -s $WORK/many/artifacts.cold ]] || die "many: the cold run lists no artifacts ($out/run.json)"
		same "$WORK/many/artifacts.warm" "$WORK/many/artifacts.cold" "many: artifact list of the rerun"
		while IFS= read -r f; do
			cmp -s "$out.warm/$f" "$out/$f" && continue
			cp "$out/$f" "$LOGS/many-cold.$r.${f//\//_}"
			cp "$out.warm/$f" "$LOGS/many-warm.$r.${f//\//_}"
			die "many: the rerun's $f differs from the cold run's (both copied to $LOGS)"
		done <"$WORK/many/artifacts.cold"
		rm -rf "$out" "$out.warm" "$cache"
	}
	log "many: $MANY_ROUNDS rounds"
	for ((r = 1; r <= MANY_ROUNDS; r++)); do
		quiet_gate
		many_round "$r"
	done
	meta check "many: kneepipe's cold run wrote raw_data.csv, deleted_paths.csv, different_severity.csv and normalized_data.csv byte-identical to testdata/reference/notebook.py run on the many bucket's directory, and its fetch made one GET per listed object ($MANY_OBJECTS), every round; reference figures: $(grep -E '^(rows:|in-expert|disagreements)' "$LOGS/reference-many.out" | paste -sd'/' | sed 's|/| / |g')"
	meta check "many: the no-op rerun wrote the same $(wc -l <"$WORK/many/artifacts.cold") artifact files as the cold run ($(paste -sd' ' "$WORK/many/artifacts.cold")), byte-identical, every round"
fi

# ------------------------------------------------------------------ big
if ! skipped big; then
	meta group big "One $((BIG_SIZE >> 20)) MiB object: list + fetch + SHA-256/MD5" bareloop
	meta peer big bareloop "bareloop (Go, streaming)" "bench/peers/bareloop -endpoint \$EP s3://kneebig/big/"
	meta peer big kneepipe "kneepipe list + fetch-hash" "bin/kneepipe run -f bench/pipelines/fetch-hash.yaml --source s3://kneebig/big/ --endpoint \$EP --region us-east-1 --out OUT --cache FRESH_EMPTY_DIR"
	meta target big kneepipe rss_mb "<" 64 "kneepipe peak RSS hashing one 1 GiB object < 64 MB"
	big_kneepipe() {
		local r=$1 out=$WORK/big/kneepipe.$1 cache=$WORK/big/cache.$1
		rm -rf "$out" "$cache"
		mkdir -p "$cache"
		measure big kneepipe "$r" "big-kneepipe.$r" bin/kneepipe run -f bench/pipelines/fetch-hash.yaml \
			--source s3://kneebig/big/ --endpoint "$EP" --region us-east-1 --out "$out" --cache "$cache"
		stages big kneepipe "$r" "$out/run.json"
		tail -n +2 "$out/hashes.csv" | awk -F, '{ print $1 "\t" $2 "\t" $3 "\t" $4 }' >"$WORK/big/kneepipe.tsv"
		rm -rf "$out" "$cache"
	}
	big_bareloop() {
		measure big bareloop "$1" "big-bareloop.$1" "$BIN/bareloop" -endpoint "$EP" -manifest "$WORK/big/bareloop.tsv" s3://kneebig/big/
	}
	mkdir -p "$WORK/big"
	log "big: $BIG_ROUNDS rounds"
	for ((r = 1; r <= BIG_ROUNDS; r++)); do
		quiet_gate
		for p in $(rotate "$r" kneepipe bareloop); do "big_$p" "$r"; done
		same "$WORK/big/kneepipe.tsv" "$WORK/big/bareloop.tsv" "1 GiB object: kneepipe and bareloop hashes"
	done
	meta check "1 GiB object: kneepipe's key, size, sha256 and md5 equal bareloop's, every round"
fi

# ------------------------------------------------------------------ export
if ! skipped export; then
	KP_EXPORT=(bin/kneepipe run -f bench/pipelines/export.yaml --source s3://kneebench/datasets/ --endpoint "$EP" --region us-east-1)
	meta group export "Training-set export of the 3300-object bucket (split + Hugging Face Parquet and WebDataset shards) vs the cold notebook.yaml run" cold
	meta gnote export "export.yaml is the default pipeline without its report: list, fetch-hash, grade, de-duplicate, drop disagreements, split, export; its export stage downloads the clean images again (into its image cache under --cache, by SHA-256). rerun and reexport reuse the cold export's --cache, each into a new --out."
	meta peer export cold "kneepipe notebook.yaml, cold cache" "bin/kneepipe run -f examples/notebook.yaml --source s3://kneebench/datasets/ --endpoint \$EP --region us-east-1 --out OUT --cache FRESH_EMPTY_DIR"
	meta peer export export "kneepipe export.yaml, cold cache" "bin/kneepipe run -f bench/pipelines/export.yaml --source s3://kneebench/datasets/ --endpoint \$EP --region us-east-1 --out OUT --cache FRESH_EMPTY_DIR"
	meta peer export rerun "kneepipe export.yaml, rerun on that cache, new --out" "the same command with the export run's --cache and a new --out"
	meta peer export reexport "kneepipe export.yaml --force=export, new --out" "the same, with --force=export: the shards written again from the image cache"
	# shards OUT: the training set's files with their SHA-256, sorted.
	shards() { (cd "$1/training_set" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }
	export_cold() {
		local r=$1 out=$WORK/export/cold.$1 cache=$WORK/export/ccache.$1
		rm -rf "$out" "$cache"
		mkdir -p "$cache"
		measure export cold "$r" "export-cold.$r" "${KP_S3[@]}" --out "$out" --cache "$cache"
		stages export cold "$r" "$out/run.json"
		rm -rf "$out" "$cache"
	}
	export_export() {
		local r=$1 out=$WORK/export/export.$1 cache=$WORK/export/cache.$1 gets
		rm -rf "$out" "$out.rerun" "$out.reexport" "$cache"
		mkdir -p "$cache"
		measure export export "$r" "export-export.$r" "${KP_EXPORT[@]}" --out "$out" --cache "$cache"
		stages export export "$r" "$out/run.json"
		gets=$(run_counts export export "$r" "$out/run.json")
		shards "$out" >"$WORK/export/shards.$r"
		[[ -s $WORK/export/shards.$r ]] || die "export: no shards written ($out)"
		if [[ -s $WORK/export/shards ]]; then
			same "$WORK/export/shards.$r" "$WORK/export/shards" "export: round $r's shards vs round 1's"
		else
			cp "$WORK/export/shards.$r" "$WORK/export/shards"
		fi
		local peer args
		for peer in rerun reexport; do
			args=()
			[[ $peer == reexport ]] && args=(--force=export)
			measure export "$peer" "$r" "export-$peer.$r" "${KP_EXPORT[@]}" "${args[@]}" --out "$out.$peer" --cache "$cache"
			stages export "$peer" "$r" "$out.$peer/run.json"
			gets=$(run_counts export "$peer" "$r" "$out.$peer/run.json")
			((gets == 0)) || die "export: the $peer downloaded $gets images ($out.$peer/run.json)"
			shards "$out.$peer" >"$WORK/export/shards.$peer"
			same "$WORK/export/shards.$peer" "$WORK/export/shards.$r" "export: the $peer's shards vs the cold export's"
		done
		rm -rf "$out" "$out.rerun" "$out.reexport" "$cache"
	}
	mkdir -p "$WORK/export"
	rm -f "$WORK/export/shards"
	log "export: $EXPORT_ROUNDS rounds"
	for ((r = 1; r <= EXPORT_ROUNDS; r++)); do
		quiet_gate
		for p in $(rotate "$r" cold export); do "export_$p" "$r"; done
	done
	meta check "export: the cold export, the rerun into a new --out and the --force=export rerun wrote byte-identical shards ($(wc -l <"$WORK/export/shards") files: $(awk '{print $2}' "$WORK/export/shards" | sed 's|^\./||' | paste -sd' ')), every round; the reruns downloaded nothing (run.json: fetch-hash's and export's downloaded)"
fi

# ------------------------------------------------------------------ tables
# table_group GROUP CSV ROWS ROUNDS: the table stages on one generated CSV.
# Besides time and peak RSS, every kneepipe round records the bytes of
# stage cache it wrote (entries/; the stored artifact files are hard links
# to those in --out) and reruns on that cache: the no-op rerun must take
# every stage but the read from the cache, recompute none and copy every
# artifact byte for byte.
table_group() {
	local g=$1 csv=$2 rows=$3 rounds=$4 csv_bytes r p f
	csv_bytes=$(stat -c %s "$csv")
	meta group "$g" "Table stages on a $rows-row raw_data.csv, $((csv_bytes / 1000000)) MB (no network)" pandas
	meta peer "$g" pandas "pandas (notebook_tables.py)" "/usr/bin/python3 bench/peers/notebook_tables.py RAW_DATA_CSV OUT"
	meta peer "$g" kneepipe "kneepipe notebook-from-csv.yaml (fresh cache)" "MANIFEST=RAW_DATA_CSV bin/kneepipe run -f examples/notebook-from-csv.yaml --out OUT --cache FRESH_EMPTY_DIR"
	meta peer "$g" duckdb "DuckDB SQL (duckdbsql, Go + duckdb-go)" "bench/peers/duckdbsql RAW_DATA_CSV OUT"
	meta target "$g" kneepipe ratio:duckdb "<=" 1 "$g: kneepipe time <= DuckDB's"
	meta target "$g" kneepipe rss_ratio:pandas "<=" 0.5 "$g: kneepipe peak RSS <= half of pandas'"
	meta target "$g" kneepipe "count:stage cache, % of the input CSV's bytes" "<=" 100 "$g: stage cache written <= the input CSV's size (%)"
	local w=$WORK/$g
	mkdir -p "$w"
	log "$g: $rounds rounds on $csv"
	for ((r = 1; r <= rounds; r++)); do
		quiet_gate
		for p in $(rotate "$r" kneepipe pandas duckdb); do
			case $p in
			kneepipe)
				rm -rf "$w/kneepipe" "$w/rerun" "$w/cache"
				mkdir -p "$w/cache"
				measure "$g" kneepipe "$r" "$g-kneepipe.$r" env MANIFEST="$csv" \
					bin/kneepipe run -f examples/notebook-from-csv.yaml --out "$w/kneepipe" --cache "$w/cache"
				stages "$g" kneepipe "$r" "$w/kneepipe/run.json"
				local entries
				entries=$(du -sb "$w/cache/entries" | cut -f1)
				printf '%s\tkneepipe\t%s\tstage cache MB (entries/)\t%s\n' "$g" "$r" "$((entries / 1000000))" >>"$RES/counts.tsv"
				printf '%s\tkneepipe\t%s\tstage cache, %% of the input CSV'"'"'s bytes\t%s\n' "$g" "$r" "$((entries * 100 / csv_bytes))" >>"$RES/counts.tsv"
				MANIFEST="$csv" bin/kneepipe run -f examples/notebook-from-csv.yaml --out "$w/rerun" --cache "$w/cache" \
					>"$LOGS/$g-rerun.$r.out" 2>"$LOGS/$g-rerun.$r.err" || die "$g: the no-op rerun failed ($LOGS/$g-rerun.$r.err)"
				/usr/bin/python3 -c '
import json, sys
rep = json.load(open(sys.argv[1]))
bad = [s["name"] for s in rep["stages"] if s["kind"] != "read" and s["status"] != "cached"]
if bad or any(v != "copied" for v in rep["artifact_status"].values()):
    sys.exit("stages not cached: %s; artifacts: %s" % (bad, rep["artifact_status"]))
' "$w/rerun/run.json" || die "$g: the no-op rerun computed something ($w/rerun/run.json)"
				grep -q 'stage recomputed' "$LOGS/$g-rerun.$r.err" && die "$g: the no-op rerun recomputed a stage ($LOGS/$g-rerun.$r.err)"
				for f in "${TABLE_CSVS[@]}"; do same "$w/rerun/$f.csv" "$w/kneepipe/$f.csv" "$g: kneepipe rerun $f.csv"; done
				rm -rf "$w/rerun" "$w/cache"
				;;
			pandas)
				rm -rf "$w/pandas"
				measure "$g" pandas "$r" "$g-pandas.$r" /usr/bin/python3 bench/peers/notebook_tables.py "$csv" "$w/pandas"
				;;
			duckdb)
				rm -rf "$w/duckdb"
				measure "$g" duckdb "$r" "$g-duckdb.$r" "$BIN/duckdbsql" "$csv" "$w/duckdb"
				;;
			esac
		done
		for f in "${TABLE_CSVS[@]}"; do
			same "$w/kneepipe/$f.csv" "$w/pandas/$f.csv" "$g: kneepipe vs pandas $f.csv"
			same "$w/duckdb/$f.csv" "$w/pandas/$f.csv" "$g: duckdb vs pandas $f.csv"
		done
	done
	local counts
	counts=$(for f in "${TABLE_CSVS[@]}"; do printf '%s %d rows; ' "$f.csv" $(($(wc -l <"$w/pandas/$f.csv") - 1)); done)
	meta check "$g: kneepipe, pandas and DuckDB wrote byte-identical deleted_paths.csv, different_severity.csv and normalized_data.csv (no sorting: all three keep the CSV's row order), every round: ${counts%; }"
	meta check "$g: kneepipe's no-op rerun on each round's cache took every stage but the read from the cache, recomputed none and copied every artifact, byte-identical"
	[[ $g == tables ]] && meta info "DuckDB" "$(grep -oE 'duckdb v[0-9.]+' "$LOGS/$g-duckdb.1.err" | head -1)"
	rm -rf "$w"
}
if ! skipped tables; then
	table_group tables "$CSV" "$CSV_ROWS" "$TABLE_ROUNDS"
fi
# The 10M-row group needs about 16 GB (pandas and DuckDB included) and
# runs alone: it is skipped, and the report says so, when less memory is
# available.
if ! skipped tables10m; then
	avail_gb=$(($(awk '/^MemAvailable/ {print $2}' /proc/meminfo) / 1024 / 1024))
	if ((avail_gb < TABLE_BIG_MIN_GB)); then
		log "tables10m: skipped, $avail_gb GB available (BENCH_TABLE_BIG_MIN_GB=$TABLE_BIG_MIN_GB)"
		meta note "tables10m was skipped: $avail_gb GB of memory available, below BENCH_TABLE_BIG_MIN_GB=$TABLE_BIG_MIN_GB"
	else
		table_group tables10m "$CSV_BIG" "$CSV_BIG_ROWS" "$TABLE_BIG_ROUNDS"
	fi
fi

# ------------------------------------------------------------------ fingerprint
# What near-duplicate fingerprints (fetch-hash fingerprint: true, decoded from
# the bytes read for hashing) add to a cold list + fetch of 3300 objects: the
# same pipeline with them off and on, alternating, fresh cache each; both
# must make one GET per object and write the same hashes. On s3://kneefp/
# (knee-dev copies, decodable); without ../shared/knee-dev on kneebench,
# whose images do not decode: then only the copy and store are measured.
if ! skipped fingerprint; then
	meta group fingerprint "Cold list + fetch over S3, 3300 objects (s3://$FP_BUCKET/): near-duplicate fingerprints on vs off" off
	meta peer fingerprint off "kneepipe list + fetch-hash, fingerprint: false" "KNEEPIPE_FINGERPRINT=false bin/kneepipe run -f bench/pipelines/fingerprint.yaml --source s3://$FP_BUCKET/datasets/ --endpoint \$EP --region us-east-1 --out OUT --cache FRESH_EMPTY_DIR"
	meta peer fingerprint on "kneepipe list + fetch-hash, fingerprint: true" "KNEEPIPE_FINGERPRINT=true bin/kneepipe run -f bench/pipelines/fingerprint.yaml ... (the same)"
	meta target fingerprint on ratio "<=" 1.15 "fingerprinting adds <= 15% to the cold run (issue 10)"
	fingerprint_run() {
		local peer=$1 r=$2 out=$WORK/fingerprint/$1.$2 cache=$WORK/fingerprint/cache.$1.$2 gets
		rm -rf "$out" "$cache"
		mkdir -p "$cache"
		measure fingerprint "$peer" "$r" "fingerprint-$peer.$r" env KNEEPIPE_FINGERPRINT=$([[ $peer == on ]] && echo true || echo false) \
			bin/kneepipe run -f bench/pipelines/fingerprint.yaml --source "s3://$FP_BUCKET/datasets/" --endpoint "$EP" --region us-east-1 --out "$out" --cache "$cache"
		stages fingerprint "$peer" "$r" "$out/run.json"
		gets=$(run_counts fingerprint "$peer" "$r" "$out/run.json")
		[[ $gets == 3300 ]] || die "fingerprint/$peer: $gets GETs, want one per object (3300)"
		cp "$out/hashes.csv" "$WORK/fingerprint/hashes.$peer.csv"
		rm -rf "$out" "$cache"
	}
	mkdir -p "$WORK/fingerprint"
	log "fingerprint: warm-up round (not recorded) + $ROUNDS rounds"
	for ((r = 0; r <= ROUNDS; r++)); do
		quiet_gate
		for p in $(rotate "$r" off on); do fingerprint_run "$p" "$r"; done
		same "$WORK/fingerprint/hashes.on.csv" "$WORK/fingerprint/hashes.off.csv" "hashes with fingerprints on and off"
	done
	meta check "fingerprint: both settings made one GET per object (3300, run.json) and wrote the same hashes.csv, every round"
fi

# ------------------------------------------------------------------ neardup
# Near-duplicates (internal/neardup): grouping 1,000,000 synthetic
# fingerprints (time, memory), and with ../shared/knee-dev the planted-copy
# recall and false pairs beside findimagedupes at 90 and 95 %, and the
# throughput of both on the 1000 originals (bench/neardup); the same on
# chest radiographs when scripts/fetch-xray-corpus.sh has written them.
NEARDUP_OUT=()
if ! skipped neardup; then
	log "neardup: grouping 1,000,000 synthetic fingerprints"
	"$GO" test -run '^$' -bench '^BenchmarkFind1M$' -benchtime 1x ./internal/neardup >"$RES/neardup-1m.txt" 2>&1 ||
		die "neardup benchmark failed: $RES/neardup-1m.txt"
	NEARDUP_OUT+=("$RES/neardup-1m.txt")
	if [[ -d ../shared/knee-dev ]]; then
		log "neardup: knee-dev with planted copies, beside findimagedupes"
		"$GO" run ./bench/neardup -knee ../shared/knee-dev -work "$BENCH/neardup" -fid >"$RES/neardup-knee.txt" 2>&1 ||
			die "bench/neardup failed: $RES/neardup-knee.txt"
		NEARDUP_OUT+=("$RES/neardup-knee.txt")
	else
		log "neardup: no ../shared/knee-dev, knee measurements skipped"
	fi
	XRAY=${BENCH_XRAY_CORPUS:-$REPO/.tools/xray-corpus}
	if [[ -f $XRAY/images.csv ]]; then
		log "neardup: chest radiographs ($XRAY) with planted copies, hard negatives, beside findimagedupes"
		"$GO" run ./bench/neardup -corpus "$XRAY" -work "$BENCH/neardup-xray" -hardneg -fid >"$RES/neardup-xray.txt" 2>&1 ||
			die "bench/neardup -corpus failed: $RES/neardup-xray.txt"
		NEARDUP_OUT+=("$RES/neardup-xray.txt")
	else
		log "neardup: no $XRAY/images.csv (scripts/fetch-xray-corpus.sh), chest measurements skipped"
	fi
fi

meta info "load average at end" "$(cut -d' ' -f1-3 /proc/loadavg)"
meta info "benchmark wall time" "$(elapsed) s"
"$BIN/report" "$RES" | tee "$RES/report.md"
for f in "${NEARDUP_OUT[@]}"; do
	printf '\n## %s\n\n```\n' "$(basename "$f" .txt)" | tee -a "$RES/report.md"
	grep -vE '^(goos|goarch|pkg|cpu|PASS|ok) ' "$f" | tee -a "$RES/report.md"
	printf '```\n' | tee -a "$RES/report.md"
done
log "raw data and logs: $RES"
