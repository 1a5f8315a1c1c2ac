#!/usr/bin/env bash
# demo.sh: a five-node smudge cluster on 127.0.0.1, end to end.
#
# Builds bin/smudge, starts five nodes (nodes 2-5 join node 1), then:
#   1. waits until every node has printed ALIVE for all five;
#   2. broadcasts a line from node 1 and waits until nodes 2-5 print it;
#   3. kill -9's node 5 and waits until nodes 1-4 print it DEAD;
#   4. sends SIGTERM to nodes 1-4 and waits until they exit (status 0).
# Every wait is bounded: once bin/smudge is built (a cached build takes about
# a second; a cold one is bounded at 120 s), the run stops by itself within
# 55 s and exits non-zero, saying which phase failed, if anything goes wrong. Each node's
# output (stdout and stderr) is shown prefixed with [nodeN].
#
# Environment: SMUDGE_DEMO_BASE_PORT (default 19101): the first port tried;
# a busy port is skipped. GO: the go command (default go).
#
# The nodes run with the defaults, multicast discovery included (they also
# find each other on 127.0.0.1 by multicast), in a cluster named for this run
# alone, so that other smudge nodes on this host, and other runs, are not
# part of the demo.
set -euo pipefail

readonly NODES=5
readonly RUN_SECONDS=55   # the cluster part, build excluded
readonly BUILD_SECONDS=120 # a cold build on a busy machine can be slow
readonly BASE_PORT=${SMUDGE_DEMO_BASE_PORT:-19101}
readonly MAX_PORT_TRIES=20
readonly GO=${GO:-go}
readonly CLUSTER=demo-$$-$RANDOM

cd "$(dirname "$0")/.."
readonly ROOT=$PWD
readonly BIN=$ROOT/bin/smudge
readonly B0=$SECONDS
T0=$SECONDS                         # set again when the build is done
HARD_DEADLINE=$((T0 + BUILD_SECONDS)) # every wait ends by then

tmp=""
node_pids=()   # node i's pid at index i-1
reader_pids=() # output prefixers
input_fds=()   # the script's end of each node's stdin FIFO
ports=()
addrs=()

say() { printf 'demo: %s\n' "$*"; }
banner() { printf '\ndemo: ===== %s =====\n' "$*"; }
fail() {
	printf '\ndemo: FAILED after %ss: %s\n' "$((SECONDS - T0))" "$*" >&2
	exit 1
}

cleanup() {
	local rc=$? pid fd i alive
	trap - EXIT INT TERM
	for pid in "${node_pids[@]}"; do
		[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
	done
	for fd in "${input_fds[@]}"; do
		[[ -n $fd ]] && exec {fd}>&- || true
	done
	for pid in "${node_pids[@]}"; do
		[[ -n $pid ]] && wait "$pid" 2>/dev/null || true
	done
	# The prefixers end when their node's output closes; give them 2 s.
	for ((i = 0; i < 20; i++)); do
		alive=0
		for pid in "${reader_pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${reader_pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	[[ -n $tmp ]] && rm -rf -- "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

# deadline SECONDS: the time (in $SECONDS) a wait of that length must end,
# capped by the whole run's deadline.
deadline() {
	local d=$((SECONDS + $1))
	((d > HARD_DEADLINE)) && d=$HARD_DEADLINE
	echo "$d"
}

# wait_until TIMEOUT WHAT COMMAND...: runs COMMAND until it succeeds; fails
# the demo with WHAT after TIMEOUT seconds.
wait_until() {
	local timeout=$1 what=$2 end
	shift 2
	end=$(deadline "$timeout")
	until "$@"; do
		((SECONDS < end)) || fail "timed out after ${timeout}s waiting for $what"
		sleep 0.1
	done
}

# has_status LOG ADDR STATUS: LOG has a line "<time> ADDR STATUS" (nothing
# after it: a DEAD node that left shows as "DEAD (left)" and does not count).
has_status() {
	awk -v a="$2" -v s="$3" '$2 == a && $3 == s && NF == 3 { found = 1 } END { exit !found }' "$1"
}

# has_broadcast LOG ORIGIN PAYLOAD
has_broadcast() {
	awk -v a="$2" -v p="$2 BROADCAST $3" '$2 == a && substr($0, index($0, " ") + 1) == p { found = 1 } END { exit !found }' "$1"
}

# alive_or_exited I: node I printed its own ALIVE line, or exited.
alive_or_exited() {
	has_status "$tmp/node$1.log" "${addrs[$1 - 1]}" ALIVE || ! kill -0 "${node_pids[$1 - 1]}" 2>/dev/null
}

# prefix NAME LOG: copies stdin to LOG and to stdout, prefixed with [NAME].
prefix() {
	local line
	while IFS= read -r line || [[ -n $line ]]; do
		printf '%s\n' "$line" >>"$2"
		printf '[%s] %s\n' "$1" "$line"
	done
}

# start_node I [FLAGS...]: starts node I on the first free port from
# ports[I-1] on; sets ports[I-1], addrs[I-1] and node_pids[I-1].
start_node() {
	local i=$1 tries port fd pid reader f
	shift
	local in=$tmp/node$i.in out=$tmp/node$i.out log=$tmp/node$i.log
	mkfifo "$in"
	exec {fd}<>"$in" # read-write: never blocks, and the node never sees EOF
	input_fds[i - 1]=$fd
	for ((tries = 0; tries < MAX_PORT_TRIES; tries++)); do
		port=$next_port
		next_port=$((next_port + 1))
		ports[i - 1]=$port
		addrs[i - 1]=127.0.0.1:$port
		rm -f "$out"
		mkfifo "$out"
		: >"$log"
		prefix "node$i" "$log" <"$out" &
		reader=$!
		reader_pids+=("$reader")
		# The node must not hold the script's ends of the stdin FIFOs.
		(
			for f in "${input_fds[@]}"; do
				exec {f}>&-
			done
			exec "$BIN" -cluster "$CLUSTER" -port "$port" "$@" <"$in" >"$out" 2>&1
		) &
		pid=$!
		node_pids[i - 1]=$pid
		wait_until 10 "node$i to start on port $port" alive_or_exited "$i"
		if kill -0 "$pid" 2>/dev/null; then
			return 0
		fi
		wait "$pid" 2>/dev/null || true
		node_pids[i - 1]=""
		wait "$reader" || true # all its output is in the log now
		if grep -q 'address already in use' "$log"; then
			say "port $port is busy; trying $next_port"
			continue
		fi
		fail "node$i exited at start (see its output above)"
	done
	fail "no free port for node$i in $MAX_PORT_TRIES tries from ${ports[i - 1]}"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/smudge-demo.XXXXXX")

banner "build: bin/smudge"
mkdir -p "$ROOT/bin"
CGO_ENABLED=0 timeout "$BUILD_SECONDS" "$GO" build -trimpath -o "$BIN" ./example ||
	fail "go build failed or took more than ${BUILD_SECONDS}s"
say "built in $((SECONDS - B0))s"
T0=$SECONDS
HARD_DEADLINE=$((T0 + RUN_SECONDS))

banner "start $NODES nodes on 127.0.0.1 (heartbeat 250 ms)"
next_port=$BASE_PORT
start_node 1 -hbf 250
for ((i = 2; i <= NODES; i++)); do
	start_node "$i" -hbf 250 -node "${addrs[0]}"
done
say "nodes: ${addrs[*]}"

banner "phase 1: wait until every node sees all $NODES ALIVE (15 s max)"
t=$SECONDS
all_alive() {
	local i a
	for ((i = 1; i <= NODES; i++)); do
		for a in "${addrs[@]}"; do
			has_status "$tmp/node$i.log" "$a" ALIVE || return 1
		done
	done
}
wait_until 15 "every node to print ALIVE for all $NODES nodes" all_alive
say "phase 1 done in $((SECONDS - t))s: every node sees all $NODES ALIVE"

banner "phase 2: broadcast from node1, wait until nodes 2-$NODES print it (10 s max)"
t=$SECONDS
payload="hello from node1 at $(date +%T)"
printf '%s\n' "$payload" >&"${input_fds[0]}"
all_got_broadcast() {
	local i
	for ((i = 2; i <= NODES; i++)); do
		has_broadcast "$tmp/node$i.log" "${addrs[0]}" "$payload" || return 1
	done
}
wait_until 10 "nodes 2-$NODES to print the broadcast" all_got_broadcast
say "phase 2 done in $((SECONDS - t))s: nodes 2-$NODES received \"$payload\""

banner "phase 3: kill -9 node$NODES, wait until nodes 1-$((NODES - 1)) print it DEAD (15 s max)"
t=$SECONDS
victim=${addrs[NODES - 1]}
{ # (bash's "Killed" job notice goes to /dev/null)
	kill -KILL "${node_pids[NODES - 1]}"
	wait "${node_pids[NODES - 1]}" || true
} 2>/dev/null
node_pids[NODES - 1]=""
all_see_dead() {
	local i
	for ((i = 1; i < NODES; i++)); do
		has_status "$tmp/node$i.log" "$victim" DEAD || return 1
	done
}
wait_until 15 "nodes 1-$((NODES - 1)) to print $victim DEAD" all_see_dead
say "phase 3 done in $((SECONDS - t))s: nodes 1-$((NODES - 1)) see $victim DEAD"

banner "phase 4: SIGTERM nodes 1-$((NODES - 1)), wait until they exit (10 s max)"
t=$SECONDS
for ((i = 1; i < NODES; i++)); do
	kill -TERM "${node_pids[i - 1]}"
done
all_exited() {
	local i
	for ((i = 1; i < NODES; i++)); do
		! kill -0 "${node_pids[i - 1]}" 2>/dev/null || return 1
	done
}
wait_until 10 "nodes 1-$((NODES - 1)) to exit after SIGTERM" all_exited
bad=""
for ((i = 1; i < NODES; i++)); do
	rc=0
	wait "${node_pids[i - 1]}" || rc=$?
	node_pids[i - 1]=""
	((rc == 0)) || bad+=" node$i=$rc"
done
for pid in "${reader_pids[@]}"; do
	wait "$pid" 2>/dev/null || true
done
reader_pids=()
[[ -z $bad ]] || fail "nodes exited with non-zero status:$bad"
say "phase 4 done in $((SECONDS - t))s: nodes 1-$((NODES - 1)) left and exited 0"

banner "PASSED in $((SECONDS - T0))s"
