#!/usr/bin/env bash
# scripts/s3server.sh -- run a local versitygw S3 server for tests/benchmarks.
#
#   scripts/s3server.sh start DATA_DIR STATE_DIR   start (or reuse) a server
#   scripts/s3server.sh stop STATE_DIR             stop it (no-op if not running)
#   scripts/s3server.sh status STATE_DIR           exit 0 and print env if up
#
# The server is versitygw's posix backend over DATA_DIR: every top-level
# directory of DATA_DIR is a bucket, files below it are objects (key = path
# relative to the bucket dir). It listens on 127.0.0.1 on a kernel-chosen free
# port (it binds port 0; the port is then read back from /proc, so there is no
# pick-then-bind race).
#
# `start` waits (KNEEPIPE_S3_START_TIMEOUT seconds, default 10) until the
# server answers HTTP, then writes into STATE_DIR:
#   env         `export KEY=VALUE` lines (AWS_ENDPOINT_URL_S3,
#               KNEEPIPE_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#               AWS_REGION, KNEEPIPE_S3_ACCESS_LOG, KNEEPIPE_S3_DATA_DIR);
#               values are single-quoted only if they contain characters
#               outside [A-Za-z0-9_./:@%+=,-]
#   pid         server pid           port   server port
#   access.log  S3 access log (one line per request, e.g. "... s3_GetObject
#               KEY /BUCKET/KEY 200 ..."; first line is "log starts ...").
#               Written before the response is sent. Truncated at each fresh
#               start.
#   server.log  server stdout/stderr
# and prints the env file on stdout (so `eval "$(s3server.sh start D S)"`
# works). Messages go to stderr.
#
# `start` is idempotent: if a server from STATE_DIR is already up over the
# same DATA_DIR it is reused. Concurrent start/stop on one STATE_DIR are
# serialised with flock. Use one STATE_DIR per independent user (e.g. per Go
# test package); `stop` stops it for everyone using that STATE_DIR.
#
# Environment knobs:
#   VERSITYGW                 binary (default REPO/.tools/bin/versitygw; built
#                             with `make -f scripts/tools.mk tools` if missing)
#   KNEEPIPE_S3_ACCESS_KEY    root access key (default kneepipe-test)
#   KNEEPIPE_S3_SECRET_KEY    root secret key (default kneepipe-test-secret)
#   KNEEPIPE_S3_ACCESS_LOG    1 (default) writes STATE_DIR/access.log, 0 = off
#   KNEEPIPE_S3_META          auto (default) | xattr | sidecar | nometa.
#                             auto = xattrs, falling back to a sidecar dir
#                             (STATE_DIR/meta) if DATA_DIR's filesystem has no
#                             user xattrs
#   KNEEPIPE_S3_DEFAULT_ETAG  ETag served for files placed on disk directly
#                             (they have no stored ETag; default: none/"")
#   KNEEPIPE_S3_START_TIMEOUT seconds to wait for readiness (default 10)
#   KNEEPIPE_S3_WATCH_PID     if set, a watcher stops the server once this pid
#                             is gone (Go TestMain: pass os.Getpid() so a
#                             crashed/killed test binary does not leak it)
set -euo pipefail
# A caller that dies mid-start must not kill this script before the watcher
# is up (that would leak the server): ignore SIGPIPE, tolerate failed writes.
trap "" PIPE

readonly HEALTH_PATH=/_kneepipe_health   # bucket names cannot contain '_'
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly REPO

log() { printf 's3server: %s\n' "$*" >&2 || true; }
die() { log "error: $*"; exit 1; }

usage() {
	cat >&2 <<-EOF
	usage: $0 start DATA_DIR STATE_DIR
	       $0 stop STATE_DIR
	       $0 status STATE_DIR
	EOF
	exit 2
}

# alive PID: true if PID exists and is not a zombie (a zombie still answers
# kill -0, and in containers nobody may ever reap it).
alive() {
	local pid=$1 stat
	[[ -n $pid && $pid =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }   # strip "pid (comm) "; comm may contain spaces
	[[ ${stat%% *} != Z ]]
}

# is_vgw PID: alive and is a versitygw process.
is_vgw() {
	alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q versitygw
}

# listen_port PID: the TCP port PID listens on (from /proc), or nothing.
listen_port() {
	local pid=$1 fd l inodes=""
	for fd in /proc/"$pid"/fd/*; do
		l=$(readlink "$fd" 2>/dev/null) || continue
		if [[ $l == socket:\[*\] ]]; then
			l=${l#socket:[}
			inodes+="${l%]} "
		fi
	done
	[[ -n $inodes ]] || return 0
	local hex
	hex=$(awk -v inodes="$inodes" '
		BEGIN { n = split(inodes, a, " "); for (i = 1; i <= n; i++) s[a[i]] = 1 }
		FNR > 1 && $4 == "0A" && ($10 in s) { split($2, p, ":"); print p[2]; exit }
	' "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6" 2>/dev/null)
	[[ -n $hex ]] && printf '%d\n' "0x$hex"
	return 0
}

# healthy PORT: the server answers GET $HEALTH_PATH with 200.
healthy() {
	local port=$1 line=""
	# Plain bash /dev/tcp: no curl needed. Subshell so the fd always closes.
	line=$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$HEALTH_PATH" >&3
		IFS= read -r -t 2 l <&3 || true
		printf '%s' "$l"
	) || return 1
	[[ $line == "HTTP/1."?" 200"* ]]
}

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t / 1000)); }

quote() {
	if [[ $1 =~ ^[A-Za-z0-9_./:@%+=,-]*$ ]]; then
		printf '%s' "$1"
	else
		printf "'%s'" "${1//\'/\'\\\'\'}"
	fi
}

lock_state() {
	local state=$1
	exec 9>"$state/.lock"
	flock -w 60 9 || die "timed out waiting for lock $state/.lock"
}

find_binary() {
	if [[ -n ${VERSITYGW:-} ]]; then
		[[ -x $VERSITYGW ]] || die "VERSITYGW=$VERSITYGW is not executable"
		printf '%s' "$VERSITYGW"
		return
	fi
	local bin=$REPO/.tools/bin/versitygw
	if [[ ! -x $bin ]]; then
		command -v make >/dev/null || die "$bin missing and make not found; run: make -f scripts/tools.mk tools"
		log "building versitygw into $REPO/.tools/bin (one-time, may take a minute or two)"
		mkdir -p "$REPO/.tools"
		# Serialise concurrent builds (parallel go test packages).
		(
			flock -w 600 8 || die "timed out waiting for $REPO/.tools/.build.lock"
			[[ -x $bin ]] || make -s -C "$REPO" -f scripts/tools.mk "$bin" >&2 # versitygw only: MinIO takes minutes
		) 8>"$REPO/.tools/.build.lock"
		[[ -x $bin ]] || die "building versitygw failed"
	fi
	printf '%s' "$bin"
}

stop_pid() { # stop_pid PID NAME
	local pid=$1 i
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do      # 10 s graceful
		alive "$pid" || return 0
		sleep 0.1
	done
	log "$2 (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	die "$2 (pid $pid) did not exit"
}

do_stop() { # caller holds the lock
	local state=$1 pid wpid
	wpid=$(cat "$state/watch.pid" 2>/dev/null || true)
	pid=$(cat "$state/pid" 2>/dev/null || true)
	if [[ -n $wpid ]] && alive "$wpid"; then kill -TERM "$wpid" 2>/dev/null || true; fi
	if [[ -n $pid ]] && is_vgw "$pid"; then
		stop_pid "$pid" versitygw
	fi
	rm -f "$state/pid" "$state/port" "$state/env" "$state/watch.pid" "$state/data_dir"
}

cmd_stop() {
	[[ $# -eq 1 ]] || usage
	local state=$1
	[[ -d $state ]] || return 0
	lock_state "$state"
	do_stop "$state"
}

cmd_status() {
	[[ $# -eq 1 ]] || usage
	local state=$1 pid port
	pid=$(cat "$state/pid" 2>/dev/null) || return 1
	port=$(cat "$state/port" 2>/dev/null) || return 1
	is_vgw "$pid" && [[ -f $state/env ]] && healthy "$port" || return 1
	cat "$state/env"
}

cmd_start() {
	[[ $# -eq 2 ]] || usage
	[[ -d $1 ]] || die "DATA_DIR $1 is not a directory"
	mkdir -p "$2"
	local data state
	data=$(cd "$1" && pwd -P)
	state=$(cd "$2" && pwd -P)
	lock_state "$state"

	# Reuse a running server over the same data dir.
	local pid port
	pid=$(cat "$state/pid" 2>/dev/null || true)
	if [[ -n $pid ]] && is_vgw "$pid"; then
		port=$(cat "$state/port" 2>/dev/null || true)
		if [[ $(cat "$state/data_dir" 2>/dev/null) == "$data" && -f $state/env && -n $port ]] && healthy "$port"; then
			log "reusing versitygw pid $pid on 127.0.0.1:$port"
			cat "$state/env"
			return 0
		fi
		if [[ -f $state/data_dir && $(cat "$state/data_dir") != "$data" ]]; then
			die "a server from $state already serves $(cat "$state/data_dir"); stop it first"
		fi
		log "restarting unhealthy versitygw pid $pid"
	fi
	do_stop "$state"

	local bin
	bin=$(find_binary)

	local access_key=${KNEEPIPE_S3_ACCESS_KEY:-kneepipe-test}
	local secret_key=${KNEEPIPE_S3_SECRET_KEY:-kneepipe-test-secret}
	local timeout=${KNEEPIPE_S3_START_TIMEOUT:-10}
	[[ $timeout =~ ^[0-9]+$ ]] || die "KNEEPIPE_S3_START_TIMEOUT must be whole seconds, got '$timeout'"
	local meta=${KNEEPIPE_S3_META:-auto}

	local -a gwargs=(--port 127.0.0.1:0 --access "$access_key" --secret "$secret_key"
		--region us-east-1 --quiet --keep-alive --health "$HEALTH_PATH")
	rm -f "$state/access.log"
	if [[ ${KNEEPIPE_S3_ACCESS_LOG:-1} != 0 ]]; then
		gwargs+=(--access-log "$state/access.log")
	fi

	local -a modes
	case $meta in
	auto) modes=(xattr sidecar) ;;
	xattr | sidecar | nometa) modes=("$meta") ;;
	*) die "KNEEPIPE_S3_META must be auto|xattr|sidecar|nometa, got '$meta'" ;;
	esac

	local mode i deadline
	for mode in "${modes[@]}"; do
		# --bucketlinks: a top-level symlink to a directory is served as a
		# bucket, so tests can expose e.g. testdata/sample without copying.
		local -a pxargs=(--bucketlinks)
		case $mode in
		sidecar) mkdir -p "$state/meta"; pxargs+=(--sidecar "$state/meta") ;;
		nometa) pxargs+=(--nometa) ;;
		esac
		if [[ -n ${KNEEPIPE_S3_DEFAULT_ETAG:-} ]]; then
			pxargs+=(--default-etag "$KNEEPIPE_S3_DEFAULT_ETAG")
		fi

		# Scrub env vars versitygw reads as flag defaults (ROOT_*, VGW_*,
		# LOGFILE, WEBHOOK) so the caller's environment cannot change it.
		# 9>&- : do not leak the state lock into the long-lived server.
		(
			unset LOGFILE WEBHOOK
			for v in $(compgen -e); do
				[[ $v == VGW_* || $v == ROOT_* ]] && unset "$v"
			done
			exec "$bin" "${gwargs[@]}" posix "${pxargs[@]}" "$data"
		) </dev/null >"$state/server.log" 2>&1 9>&- &
		pid=$!
		echo "$pid" >"$state/pid"

		port=""
		deadline=$(($(now_ms) + timeout * 1000))
		while :; do
			if ! alive "$pid"; then
				wait "$pid" 2>/dev/null || true
				if [[ $mode == xattr && ${#modes[@]} -gt 1 ]] && grep -q 'xattr check failed' "$state/server.log"; then
					log "no user xattrs on $data's filesystem; using sidecar metadata dir $state/meta"
					continue 2
				fi
				rm -f "$state/pid"
				die "versitygw exited during startup; $state/server.log:
$(tail -n 20 "$state/server.log")"
			fi
			[[ -n $port ]] || port=$(listen_port "$pid")
			if [[ -n $port ]] && healthy "$port"; then
				break 2
			fi
			if (($(now_ms) >= deadline)); then
				stop_pid "$pid" versitygw || true
				rm -f "$state/pid"
				die "versitygw did not answer on 127.0.0.1:${port:-?} within ${timeout}s; $state/server.log:
$(tail -n 20 "$state/server.log")"
			fi
			sleep 0.05
		done
	done
	echo "$port" >"$state/port"
	echo "$data" >"$state/data_dir"

	local url=http://127.0.0.1:$port
	{
		echo "export AWS_ENDPOINT_URL_S3=$url"
		echo "export KNEEPIPE_S3_ENDPOINT=$url"
		echo "export AWS_ACCESS_KEY_ID=$(quote "$access_key")"
		echo "export AWS_SECRET_ACCESS_KEY=$(quote "$secret_key")"
		echo "export AWS_REGION=us-east-1"
		if [[ ${KNEEPIPE_S3_ACCESS_LOG:-1} != 0 ]]; then
			echo "export KNEEPIPE_S3_ACCESS_LOG=$(quote "$state/access.log")"
		fi
		echo "export KNEEPIPE_S3_DATA_DIR=$(quote "$data")"
	} >"$state/env.tmp"
	mv -f "$state/env.tmp" "$state/env"

	if [[ -n ${KNEEPIPE_S3_WATCH_PID:-} ]]; then
		local watch=$KNEEPIPE_S3_WATCH_PID
		alive "$watch" || log "warning: KNEEPIPE_S3_WATCH_PID=$watch is not running"
		(
			trap '' HUP INT
			while alive "$watch" && alive "$pid"; do sleep 1; done
			if is_vgw "$pid"; then stop_pid "$pid" versitygw; fi
		) </dev/null >/dev/null 2>&1 9>&- &
		echo $! >"$state/watch.pid"
	fi

	log "versitygw pid $pid serving $data on $url (${mode} metadata)"
	cat "$state/env"
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
status) cmd_status "$@" ;;
*) usage ;;
esac
