#!/usr/bin/env bash
# benches/run-all.sh: the side-by-side comparison of issue 6, start to finish.
#
# Builds demo-web, loadgen, raw-ws and loopback-floor in release mode, installs the peers into local
# folders (benches/peers/.venv from PyPI, benches/peers/node_modules from npm; ngIRCd from
# Debian if missing), runs every scenario against every server with the server pinned to
# one core and loadgen to the other, takes the median of $RUNS runs per row, and writes the
# table between the result markers of docs/performance.md (the rest of the file is kept).
# Loopback only. Every process it starts is stopped on exit (trap), every run is bounded
# by `timeout`.
#
# Scale knobs (environment, defaults in brackets): RUNS [3], DURATION [4] seconds of
# sending, S1_SUBSCRIBERS [1000], S2_CHANNELS [100], S2_MEMBERS [10], S2_RATE [20]
# msgs/s per member, S7_WINDOW [8] messages in flight per member in scenario 7 (scenario 2's
# rooms at capacity), S4_CLIENTS [10000], S8_CLIENTS ["1000 5000 15000"] (scenario 8, the
# join storm: N clients into one channel), S9_CLIENTS [15000] (scenario 9, the reconnect
# storm of that many), S9_POSTS [10] (messages posted while they are away), S10_SUBSCRIBERS
# [1000] and S10_MESSAGES [2000] (scenario 10, the unwindowed burst), S10_STALLED [10]
# (members that never read, in scenario 10's second shape), SERVERS ["ours
# raw flask-gevent flask-threading node"], SCENARIOS ["1 2 3 4 5 6 7 8 9 10"] (6, cross-node,
# needs redis-server; 8 and 9 run ours at default settings and raw-ws only; 10 runs ours at
# default settings but flood control, raw-ws and the peers in SERVERS), SERVER_CPU
# [0], LOADGEN_CPU [1], SKIP_BUILD,
# DURABLE_ROWS ["1 7"]: scenarios that also get an "ours-durable" row (ours with its SQLite
# store in a fresh data directory; the other rows of ours run in memory),
# BEFORE_BIN [""]: a folder with another build's demo-web, measured as the rows "before",
# "before-tcp" and "before-2nodes" (SERVERS="ours before" compares a change with its parent),
# BEFORE_ARGS [""]: flags that build also gets (for a build that has the store and the
# per-address limits: "--data-dir none --login-rate-per-address 1000000/1000000
# --connect-rate-per-address 1000000/1000000 --max-connections-per-address 1000000"),
# SKIP_INSTALL, QUIET_WAIT [1200] seconds to wait for other builds to finish,
# NOMETRICS_ROWS ["1"]: scenarios that also get an "ours-nometrics" row (ours with
# `--metrics off`: no recorder installed, what the metrics cost on the hot path),
# NODELAY_ROWS [""]: scenarios that also get an "ours-nodelay" row (demo-web with
# TCP_NODELAY forced on by the LD_PRELOAD shim in tools/; demo-web sets TCP_NODELAY itself
# now, so such a row only shows the run-to-run spread).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PEERS=$HERE/peers
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
RUNS=${RUNS:-3}
DURATION=${DURATION:-4}
S1_SUBSCRIBERS=${S1_SUBSCRIBERS:-1000}
S2_CHANNELS=${S2_CHANNELS:-100}
S2_MEMBERS=${S2_MEMBERS:-10}
S2_RATE=${S2_RATE:-20}
S7_WINDOW=${S7_WINDOW:-8}
S4_CLIENTS=${S4_CLIENTS:-10000}
SERVERS=${SERVERS:-"ours raw flask-gevent flask-threading node"}
SCENARIOS=${SCENARIOS:-"1 2 3 4 5 6 7 8 9 10"}
S8_CLIENTS=${S8_CLIENTS:-"1000 5000 15000"}
S9_CLIENTS=${S9_CLIENTS:-15000}
S9_POSTS=${S9_POSTS:-10}
S10_SUBSCRIBERS=${S10_SUBSCRIBERS:-1000}
S10_MESSAGES=${S10_MESSAGES:-2000}
S10_STALLED=${S10_STALLED:-10}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
QUIET_WAIT=${QUIET_WAIT:-1200}
DURABLE_ROWS=${DURABLE_ROWS:-"1 7"}
NOMETRICS_ROWS=${NOMETRICS_ROWS:-"1"}
DOC=${DOC:-$ROOT/docs/performance.md}
RESULTS=${RESULTS:-$(mktemp -d /tmp/flack-bench.XXXXXX)}
PORT=${PORT:-18080}
COMMAND="$0 $*"
export S1_SUBSCRIBERS S2_CHANNELS S2_MEMBERS S2_RATE S4_CLIENTS S7_WINDOW S8_CLIENTS S9_CLIENTS S9_POSTS S10_SUBSCRIBERS S10_MESSAGES S10_STALLED
[ -n "${RUNS_ENV_NOTE:-}" ] || RUNS_ENV_NOTE="RUNS=$RUNS DURATION=$DURATION S1_SUBSCRIBERS=$S1_SUBSCRIBERS S2_CHANNELS=$S2_CHANNELS S2_MEMBERS=$S2_MEMBERS S2_RATE=$S2_RATE S4_CLIENTS=$S4_CLIENTS S7_WINDOW=$S7_WINDOW S8_CLIENTS=\"$S8_CLIENTS\" S9_CLIENTS=$S9_CLIENTS S9_POSTS=$S9_POSTS S10_SUBSCRIBERS=$S10_SUBSCRIBERS S10_MESSAGES=$S10_MESSAGES S10_STALLED=$S10_STALLED"

log() { printf '[run-all %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

SERVER_PID=""
EXTRA_PIDS=""   # the second node and redis-server of the cross-node scenario
ALSO=()         # loadgen's --also arguments (the other nodes)
stop_pid() {
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}
stop_server() {
    stop_pid "$SERVER_PID"
    for pid in $EXTRA_PIDS; do stop_pid "$pid"; done
    SERVER_PID=""; EXTRA_PIDS=""; ALSO=()
}
cleanup() { stop_server; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# 10,000 connections need 10,000 descriptors in loadgen and in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "open files limit: $(ulimit -n)"

if [ -z "${SKIP_BUILD:-}" ]; then
    log "building demo-web, loadgen, raw-ws and loopback-floor (release)"
    (cd "$ROOT" && cargo build --release -p demo-web -p benches --bins)
fi
if [ -z "${SKIP_INSTALL:-}" ]; then
    log "installing the peers into benches/peers/.venv and benches/peers/node_modules"
    [ -x "$PEERS/.venv/bin/python" ] || python3 -m venv "$PEERS/.venv"
    "$PEERS/.venv/bin/pip" install --quiet -r "$PEERS/requirements.txt"
    (cd "$PEERS" && npm ci --no-audit --no-fund --silent)
    if ! command -v ngircd >/dev/null && [ -x /usr/sbin/ngircd ]; then :; fi
    if ! command -v ngircd >/dev/null && ! [ -x /usr/sbin/ngircd ]; then
        log "installing ngircd from Debian"
        apt-get install -y -qq ngircd >/dev/null || log "cannot install ngircd: scenario 5 will lack it"
    fi
fi
NGIRCD=$(command -v ngircd || echo /usr/sbin/ngircd)
# The TCP_NODELAY shim for the "ours-nodelay" rows (what disabling Nagle would gain).
NODELAY_SO=$RESULTS/nodelay.so
NODELAY_ROWS=${NODELAY_ROWS:-""}
cc -shared -fPIC -O2 -o "$NODELAY_SO" "$HERE/tools/nodelay_preload.c" -ldl || NODELAY_ROWS=""

# Measure on a quiet machine: before each run, wait while other builds, tests or browsers
# run (all waits together at most $QUIET_WAIT seconds); count the runs that overlapped.
busy() {
    pgrep -x 'cargo|rustc|cc1|ld|chromium|chromedriver' >/dev/null 2>&1 \
        || pgrep -f '/deps/[^ ]*-[0-9a-f]{16}' >/dev/null
}
QUIET_LEFT=$QUIET_WAIT
WAITED=0
NOISY_RUNS=0
TOTAL_RUNS=0
wait_quiet() {
    local announced=""
    while busy; do
        if [ "$QUIET_LEFT" -le 0 ]; then return 1; fi
        [ -n "$announced" ] || log "other builds, tests or browsers are running; waiting (${QUIET_LEFT}s of waiting left)"
        announced=yes
        sleep 5
        QUIET_LEFT=$((QUIET_LEFT - 5)); WAITED=$((WAITED + 5))
    done
}

wait_port() { # PORT: until something listens, at most 30 s
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

wait_port_any() { # PORT: until something listens, at most 30 s
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# demo-web builds with an IRC listener bind 127.0.0.1:6667 unless told otherwise; the rows
# that do not measure IRC turn it off (an older build, BEFORE_BIN, has no such flag).
irc_off() { if "$1/demo-web" --help 2>/dev/null | grep -q -- '--irc '; then echo "--irc off"; fi; }

# start_server NAME: sets SERVER_PID, ADDR and PROTO. Fresh process per run.
start_server() {
    local name=$1
    # `before*` rows run the same way from BEFORE_BIN: the build a change is compared with.
    local bin=$BIN
    # Ours keeps its state in memory unless the row says durable (a fresh data directory per
    # run); the build before the store has no such flag.
    local store=(--data-dir none)
    # Every loadgen client comes from 127.0.0.1: lift the per-address limits (the build
    # before them has no such flags).
    store+=(--login-rate-per-address 1000000/1000000 --connect-rate-per-address 1000000/1000000
        --max-connections-per-address 1000000)
    case $name in
        # BEFORE_ARGS: flags for a before build that has them (the store and the
        # per-address lifts ours gets); the build before them takes none.
        before*) bin=$BEFORE_BIN; name=ours${name#before}; read -r -a store <<<"${BEFORE_ARGS:-}" ;;
        ours-durable) name=ours; store=(--data-dir "$RESULTS/data-$PORT" "${store[@]:2}") ;;
        ours-nometrics) name=ours; store+=(--metrics off) ;;
    esac
    PORT=$((PORT + 2))
    ADDR=127.0.0.1:$PORT
    PROTO=ws
    local pin=(taskset -c "$SERVER_CPU")
    case $name in
        ours|ours-tcp|ours-nodelay|ours-irc)
            local preload="" lines=(--tcp "127.0.0.1:$((PORT + 1))") irc=()
            [ "$name" = ours-tcp ] && PROTO=tcp
            [ "$name" = ours-nodelay ] && preload=$NODELAY_SO
            # ours-irc: scenario 5 through the IRC transport, the loadgen's IRC client (the
            # one ngIRCd is measured with) on the port the TCP lines would have used.
            if [ "$name" = ours-irc ]; then
                PROTO=irc; lines=(--tcp off); irc=(--irc "127.0.0.1:$((PORT + 1))")
            else
                read -r -a irc <<<"$(irc_off "$bin")"
            fi
            LD_PRELOAD=$preload RUST_LOG=warn "${pin[@]}" "$bin/demo-web" "${store[@]}" --listen "127.0.0.1:$PORT" \
                "${lines[@]}" "${irc[@]}" --log-level warn \
                --message-rate 1000000/1000000 --channel-create-rate 1000000/1000000 \
                --idle-timeout 10m --max-sessions 200000 >"$RESULTS/server.log" 2>&1 &
            SERVER_PID=$!
            [ "$name" = ours-tcp ] || [ "$name" = ours-irc ] && ADDR=127.0.0.1:$((PORT + 1)) ;;
        ours-defaults|ours-burst)
            # The storms' goal is at default settings: only the addresses, the store (memory,
            # as the other rows) and the log level change.
            # The loadgen's clients all come from 127.0.0.1, where real ones come from many
            # addresses: the per-address limits are lifted, nothing else. The burst's sender
            # posts far faster than a person: ours-burst lifts its flood control too.
            local flood=()
            [ "$name" = ours-burst ] && flood=(--message-rate 1000000/1000000)
            RUST_LOG=warn "${pin[@]}" "$bin/demo-web" "${store[@]}" "${flood[@]}" --listen "127.0.0.1:$PORT" \
                --tcp off --irc off --log-level warn >"$RESULTS/server.log" 2>&1 &
            SERVER_PID=$! ;;
        ours-2nodes)
            # Two demo-web nodes and the redis-server they share, all on the server core.
            local redis_port=$((PORT + 5)) node_b=$((PORT + 1))
            mkdir -p "$RESULTS/redis"
            "${pin[@]}" redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
                --dir "$RESULTS/redis" >"$RESULTS/redis.log" 2>&1 &
            EXTRA_PIDS="$!"
            wait_port_any "$redis_port" || { log "redis-server did not start"; return 1; }
            local node_args=(--log-level warn --message-rate 1000000/1000000 --channel-create-rate 1000000/1000000
                --idle-timeout 10m --max-sessions 200000 --tcp off --redis "redis://127.0.0.1:$redis_port")
            local irc=(); read -r -a irc <<<"$(irc_off "$bin")"; node_args+=("${irc[@]}")
            RUST_LOG=warn "${pin[@]}" "$bin/demo-web" --listen "127.0.0.1:$node_b" "${node_args[@]}" "${store[@]:2}" \
                >"$RESULTS/server-b.log" 2>&1 &
            EXTRA_PIDS="$EXTRA_PIDS $!"
            wait_port_any "$node_b" || { log "node B did not start"; return 1; }
            RUST_LOG=warn "${pin[@]}" "$bin/demo-web" --listen "$ADDR" "${node_args[@]}" "${store[@]:2}" >"$RESULTS/server.log" 2>&1 &
            SERVER_PID=$!
            ALSO=(--also "127.0.0.1:$node_b") ;;
        raw)
            "${pin[@]}" "$BIN/raw-ws" --listen "$ADDR" --max-seconds 600 >"$RESULTS/server.log" 2>&1 &
            SERVER_PID=$! ;;
        flask-gevent|flask-threading)
            PROTO=socketio
            "${pin[@]}" "$PEERS/.venv/bin/python" "$PEERS/flask_server.py" --mode "${name#flask-}" \
                --port "$PORT" >"$RESULTS/server.log" 2>&1 &
            SERVER_PID=$! ;;
        node)
            PROTO=socketio
            "${pin[@]}" node "$PEERS/node_server.js" "$PORT" >"$RESULTS/server.log" 2>&1 &
            SERVER_PID=$! ;;
        ngircd)
            PROTO=irc
            mkdir -p "$RESULTS/ngircd"
            sed -e "s|@PORT@|$PORT|" -e "s|@DIR@|$RESULTS/ngircd|" "$PEERS/ngircd.conf.in" >"$RESULTS/ngircd/ngircd.conf"
            "${pin[@]}" "$NGIRCD" --nodaemon --config "$RESULTS/ngircd/ngircd.conf" >"$RESULTS/server.log" 2>&1 &
            SERVER_PID=$! ;;
        *) log "unknown server $name"; return 1 ;;
    esac
    local port=${ADDR##*:}
    if ! wait_port "$port"; then
        log "$name did not start: $(tail -3 "$RESULTS/server.log" | tr '\n' ' ')"
        stop_server
        return 1
    fi
}

# measure SCENARIO SERVER RUN [loadgen args...]: one bounded run, JSON to the results dir.
# ROW (optional, environment) names the report's row instead of SERVER (`ours:1000`).
measure() {
    local scenario=$1 server=$2 run=$3; shift 3
    local out="$RESULTS/s$scenario-${ROW:-$server}-$run.json"
    local noisy=""
    wait_quiet || noisy=yes
    if ! start_server "$server"; then
        echo '{"error":"server did not start"}' >"$out"; return 0
    fi
    log "scenario $scenario, $server, run $run"
    timeout -k 5 300 taskset -c "$LOADGEN_CPU" "$BIN/loadgen" --protocol "$PROTO" --addr "$ADDR" \
        --server-pid "$SERVER_PID" --label "s$scenario $server" --json "${ALSO[@]}" "$@" >"$out" 2>"$out.err" || true
    busy && noisy=yes
    TOTAL_RUNS=$((TOTAL_RUNS + 1))
    if [ -n "$noisy" ]; then NOISY_RUNS=$((NOISY_RUNS + 1)); log "this run overlapped other activity"; fi
    [ -s "$out" ] || echo "{\"error\":\"loadgen produced no report: $(tail -1 "$out.err" | tr '"' "'")\"}" >"$out"
    stop_server
}

# The machine's floor for scenario 3: a bare writer and reader on loopback sockets (no
# server, no WebSocket), pinned as the server and the loadgen are; once at scenario 3's
# rate, once with each message alone (20 ms apart).
floor() {
    local run=$1
    wait_quiet || true
    log "scenario 3 floor (loopback-floor), run $run"
    floor_run "$RESULTS/floor-rate-$run.json" --rate "$S3_RATE" --rounds $((S3_RATE * DURATION))
    floor_run "$RESULTS/floor-alone-$run.json" --rate 0 --gap-ms 20 --rounds 200
}

floor_run() {
    local out=$1; shift
    timeout -k 5 120 "$BIN/loopback-floor" --sockets "$S1_SUBSCRIBERS" --writer-cpu "$SERVER_CPU" \
        --reader-cpu "$LOADGEN_CPU" --json "$@" >"$out" 2>"$out.err" \
        || echo "{\"error\":\"$(tail -1 "$out.err" | tr '"' "'")\"}" >"$out"
}

nodelay_for() { case " $NODELAY_ROWS " in *" $1 "*) echo ours-nodelay ;; esac; }
durable_for() { case " $DURABLE_ROWS " in *" $1 "*) echo ours-durable ;; esac; }
nometrics_for() { case " $NOMETRICS_ROWS " in *" $1 "*) echo ours-nometrics ;; esac; }
s1_args=(--clients $((S1_SUBSCRIBERS + 1)) --channels 1 --senders 1 --window 64 --duration "$DURATION")
# A scenario's runs go round the servers (run 1 of each, then run 2 of each, ...): this
# machine's speed drifts over minutes, and grouping one server's runs would hand that drift
# to the comparison.
for scenario in $SCENARIOS; do
    case $scenario in
        1) for r in $(seq 1 "$RUNS"); do for s in $SERVERS $(nodelay_for 1) $(durable_for 1) $(nometrics_for 1); do measure 1 "$s" "$r" "${s1_args[@]}"; done; done ;;
        2) for r in $(seq 1 "$RUNS"); do for s in $SERVERS; do
               measure 2 "$s" "$r" --clients $((S2_CHANNELS * S2_MEMBERS)) --channels "$S2_CHANNELS" \
                   --senders $((S2_CHANNELS * S2_MEMBERS)) --rate "$S2_RATE" --window 16 --duration "$DURATION"
           done; done ;;
        3) # 50 % of our own scenario-1 maximum (median), in messages per second.
           S3_RATE=${S3_RATE:-$(python3 "$HERE/summarize.py" --s3-rate "$RESULTS" "$S1_SUBSCRIBERS")}
           log "scenario 3 offered rate: $S3_RATE messages/s"
           for r in $(seq 1 "$RUNS"); do floor "$r"; for s in $SERVERS $(nodelay_for 3); do
               measure 3 "$s" "$r" --clients $((S1_SUBSCRIBERS + 1)) --channels 1 --senders 1 \
                   --rate "$S3_RATE" --window 1024 --duration "$DURATION"
           done; done ;;
        4) for r in $(seq 1 "$RUNS"); do for s in $SERVERS; do
               measure 4 "$s" "$r" --clients "$S4_CLIENTS" --channels 100 --senders 0 --duration 2 \
                   --drain 0 --settle 2 --connect-concurrency 256 --setup-budget 90
           done; done ;;
        5) # ngIRCd accepts about 60 connections a second: give its setup more time. ours-irc
           # is the same fan-out through our IRC transport, with the same IRC client as ngIRCd.
           for r in $(seq 1 "$RUNS"); do for s in ours-tcp ours-irc ${BEFORE_BIN:+before-tcp} ngircd; do
               measure 5 "$s" "$r" "${s1_args[@]}" --connect-timeout 60
           done; done ;;
        7) # Scenario 2's rooms with every member sending as fast as its window allows: what
           # each server can do in that shape, where scenario 2's fixed rate may cap it.
           for r in $(seq 1 "$RUNS"); do for s in $SERVERS $(durable_for 7); do
               measure 7 "$s" "$r" --clients $((S2_CHANNELS * S2_MEMBERS)) --channels "$S2_CHANNELS" \
                   --senders $((S2_CHANNELS * S2_MEMBERS)) --rate 0 --window "$S7_WINDOW" --duration "$DURATION"
           done; done ;;
        8) # The join storm: N clients connect, log in and join one channel, as fast as 128 at
           # a time allow; ours at default settings, raw-ws (accept and subscribe only).
           for n in $S8_CLIENTS; do for r in $(seq 1 "$RUNS"); do for s in ours-defaults raw; do
               ROW="${s%-defaults}:$n" measure 8 "$s" "$r" --join-storm "$n" --setup-budget 120
           done; done; done ;;
        9) # The reconnect storm: after the joins every socket is reset at once and every
           # client comes back (token, last id) while S9_POSTS messages are posted; raw-ws
           # keeps no history, so it gets no posts and comes back by name.
           for r in $(seq 1 "$RUNS"); do for s in ours-defaults raw; do
               posts=$S9_POSTS; [ "$s" = raw ] && posts=0
               ROW="${s%-defaults}:$S9_CLIENTS" measure 9 "$s" "$r" --join-storm "$S9_CLIENTS" \
                   --reconnect-storm --storm-posts "$posts" --setup-budget 120 --drain 10
           done; done ;;
        10) # The unwindowed burst: one sender posts S10_MESSAGES at once (its window is larger
            # than the burst: no flow control) to a channel of S10_SUBSCRIBERS; then 4 KB
            # messages paced by 100 readers, with S10_STALLED more members that never read:
            # who cuts them, and what they cost in memory meanwhile.
            burst_peers=$(for s in $SERVERS; do case $s in ours*|before*|raw) ;; *) echo "$s" ;; esac; done)
            for r in $(seq 1 "$RUNS"); do for s in ours-burst raw $burst_peers; do
                ROW="${s%-burst}" measure 10 "$s" "$r" --clients $((S10_SUBSCRIBERS + 1)) --channels 1 \
                    --senders 1 --rate 0 --window 4096 --max-messages "$S10_MESSAGES" --duration 30 --drain 60
                ROW="${s%-burst}+stalled" measure 10 "$s" "$r" --clients 101 --channels 1 --senders 1 \
                    --rate 0 --window 64 --size 4000 --max-messages 6000 --stalled "$S10_STALLED" \
                    --duration 30 --drain 10
            done; done ;;
        6) if ! command -v redis-server >/dev/null; then log "scenario 6 skipped: no redis-server"; continue; fi
           for r in $(seq 1 "$RUNS"); do for s in ours ours-2nodes ${BEFORE_BIN:+before before-2nodes}; do
               measure 6 "$s" "$r" "${s1_args[@]}"
           done; done ;;
    esac
done

if [ "$NOISY_RUNS" -eq 0 ]; then
    QUIET="yes: none of the $TOTAL_RUNS runs overlapped other builds, tests or browsers (waited ${WAITED}s for them in all)"
else
    QUIET="no: $NOISY_RUNS of $TOTAL_RUNS runs overlapped other builds, tests or browsers (after waiting ${WAITED}s in all)"
fi
MACHINE="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(uname -sr)"
python3 "$HERE/summarize.py" --doc "$DOC" --results "$RESULTS" --machine "$MACHINE" --quiet "$QUIET" \
    --command "$RUNS_ENV_NOTE $COMMAND" --runs "$RUNS"
log "results in $RESULTS; table written to $DOC"
