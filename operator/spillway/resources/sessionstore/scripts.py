"""The shell the session store's containers run, kept in its ConfigMap: the start scripts of Redis
and of the sentinels, the readiness probe, and Redis's preStop hook (a planned stop of the primary
becomes a switchover). Pure: strings.

Every script reads what varies from the environment (the pod's `SPILLWAY_*` variables), so the
ConfigMap is the same for every pod and tests/integration/test_redis_config.py runs them unchanged
on loopback. Passwords are read from the mounted Secret's files (or the env a secretKeyRef
fills), never from the ConfigMap; nothing is written outside the in-memory run dir, since the root
filesystem is read-only.
"""

from __future__ import annotations

from spillway.resources.sessionstore.config import REDIS_PORT, SENTINEL_PORT

# Redis's names, else Valkey's (its images and packages may have only valkey-server/valkey-cli).
_TOOLS = """cli=$(command -v redis-cli || command -v valkey-cli)
server=$(command -v redis-server || command -v valkey-server)
"""
# A command to a sentinel, as admin (the sentinels' default user is off); the password comes from
# the mounted Secret's file through the environment, never the command line.
_SENTINEL_CLI = """sentinel_cli() {  # sentinel_cli SECONDS HOST ARGS...
  seconds=$1; sentinel_host=$2; shift 2
  REDISCLI_AUTH="$(cat "$SPILLWAY_SECRET/admin-password" 2>/dev/null)" \\
  VALKEYCLI_AUTH="$(cat "$SPILLWAY_SECRET/admin-password" 2>/dev/null)" \\
    timeout "$seconds" "$cli" --no-auth-warning --user admin -h "$sentinel_host" -p "$SPILLWAY_SENTINEL_PORT" --raw "$@"
}
"""
_ASK_SENTINELS = _SENTINEL_CLI + """ask_sentinels() {  # primary: the first answering sentinel's; known_replicas: yes if it knows any
  primary=""; known_replicas=no
  for sentinel in $SPILLWAY_SENTINELS; do
    [ "$sentinel" = "$SPILLWAY_SELF" ] && continue
    answer=$(sentinel_cli 3 "$sentinel" SENTINEL get-master-addr-by-name "$SPILLWAY_MASTER" 2>/dev/null \\
      | head -n 1) || answer=""
    case "$answer" in *" "*|"") continue ;; esac
    primary="$answer"
    replicas=$(sentinel_cli 3 "$sentinel" SENTINEL replicas "$SPILLWAY_MASTER" 2>/dev/null) || replicas=""
    if [ -n "$replicas" ]; then known_replicas=yes; fi
    break
  done
  return 0
}
"""
START_REDIS = f"""#!/bin/sh
# Renders the running redis.conf (ConfigMap + Secret) into the in-memory run dir, then starts Redis.
set -eu
umask 077
{_TOOLS}run="$SPILLWAY_RUN/redis.conf"
cat "$SPILLWAY_CONFIG/redis.conf" "$SPILLWAY_SECRET/redis-auth.conf" > "$run"
printf 'dir %s\naclfile %s/users.acl\n' "$SPILLWAY_DATA" "$SPILLWAY_SECRET" >> "$run"
if [ "$SPILLWAY_MODE" = Sentinel ]; then
{_ASK_SENTINELS}  ask_sentinels
  # A pod the sentinels still name primary while they know replicas is a primary restarted under
  # its old name (deleted, or crashed). It never takes writes again on its own: the sentinels may
  # be failing over already, and what it accepted meanwhile would be dropped when it is demoted
  # (with an emptyDir it would even come back empty, and the replicas would copy that). It stays
  # down, so they fail over (down-after-milliseconds and an election), and follows the new
  # primary; after 120 s without a failover (no replica fit to promote) it starts as it was.
  waited=0
  while [ "$primary" = "$SPILLWAY_SELF" ] && [ "$known_replicas" = yes ] && [ "$waited" -lt 120 ]; do
    echo "spillway: the sentinels name this restarted pod primary while replicas exist: waiting for a failover" >&2
    sleep 2
    waited=$((waited + 2))
    ask_sentinels
  done
  primary="${{primary:-$SPILLWAY_SEED}}"
  printf 'replica-announce-ip %s\\n' "$SPILLWAY_SELF" >> "$run"
  [ "$primary" = "$SPILLWAY_SELF" ] || printf 'replicaof %s %s\\n' "$primary" "$SPILLWAY_REDIS_PORT" >> "$run"
fi
exec "$server" "$run" "$@"
"""
START_SENTINEL = f"""#!/bin/sh
# Renders sentinel.conf once per pod (redis-sentinel rewrites it afterwards), then starts it.
set -eu
umask 077
{_TOOLS}run="$SPILLWAY_RUN/sentinel.conf"
if [ ! -s "$run" ]; then
{_ASK_SENTINELS}  ask_sentinels
  primary="${{primary:-$SPILLWAY_SEED}}"
  {{
    cat "$SPILLWAY_CONFIG/sentinel.conf"
    printf 'dir %s\n' "$SPILLWAY_RUN"
    printf 'sentinel announce-ip %s\\n' "$SPILLWAY_SELF"
    printf 'sentinel monitor %s %s %s %s\\n' "$SPILLWAY_MASTER" "$primary" "$SPILLWAY_REDIS_PORT" "$SPILLWAY_QUORUM"
    cat "$SPILLWAY_CONFIG/sentinel-master.conf" "$SPILLWAY_SECRET/sentinel-auth.conf"
  }} > "$run.new"
  mv "$run.new" "$run"
fi
exec "$server" "$run" --sentinel "$@"
"""
# Ready: answers PING and, on a replica, is linked to its primary.
READY_REDIS = ('cli=$(command -v redis-cli || command -v valkey-cli); '
               'out=$(REDISCLI_AUTH="$SPILLWAY_EXPORTER_PASSWORD" VALKEYCLI_AUTH="$SPILLWAY_EXPORTER_PASSWORD" '
               '"$cli" --no-auth-warning --user exporter '
               f'-p {REDIS_PORT} INFO replication) && case "$out" in *role:master*) ;; '
               '*master_link_status:up*) ;; *) exit 1 ;; esac')
# A sentinel is ready (and alive) when it answers PING to its admin.
READY_SENTINEL = ('cli=$(command -v redis-cli || command -v valkey-cli); '
                  'REDISCLI_AUTH="$(cat "$SPILLWAY_SECRET/admin-password")" '
                  'VALKEYCLI_AUTH="$(cat "$SPILLWAY_SECRET/admin-password")" '
                  f'"$cli" --no-auth-warning --user admin -p {SENTINEL_PORT} PING | grep -q PONG')

# The preStop hook's bound, all steps included: it runs under `timeout`, and the pod's grace
# period is this plus what Redis had before to stop (a final AOF fsync and RDB save). The script
# gives up on its own 5 s earlier, so that it resumes writes itself when the switchover fails.
SWITCHOVER_SECONDS = 20
# How long the paused primary waits for its replicas to have its whole stream. They acknowledge
# it only once a second (REPLCONF ACK) and CLIENT PAUSE WRITE holds WAIT, so a replica behind in
# the primary's INFO is asked its own offset.
CATCH_UP_SECONDS = 5
STOP_REDIS = f"""#!/bin/sh
# preStop, Sentinel mode: a planned stop of the primary (a drain, a rolling update, a deleted
# pod) becomes a switchover. When this Redis is the primary, has an online replica and a sentinel
# names it: pause writes here (CLIENT PAUSE WRITE: reads go on, writes wait), wait until every
# online replica has the whole stream, ask that sentinel for SENTINEL FAILOVER, and wait until a
# quorum of sentinels name the promoted replica (or this one reports role:slave). Then Redis
# stops; the writes it held fail with a closed connection, and their clients send them again to
# the primary the sentinels name, which holds every write this one acknowledged. Otherwise it
# returns without waiting and Redis stops as before (the sentinels fail over after
# down-after-milliseconds). It gives up after {SWITCHOVER_SECONDS - 5} s (if the sentinels still name this
# primary then, writes resume until Redis stops); `timeout` ends it at {SWITCHOVER_SECONDS} s, and the pause
# it set ends by itself. Runs as admin, on Redis (CLIENT PAUSE is @admin) and on the sentinels.
set -u
{_TOOLS}end=$(( $(date +%s) + {SWITCHOVER_SECONDS - 5} ))
me="$SPILLWAY_SELF:$SPILLWAY_REDIS_PORT"
say() {{  # into the container's log (Redis's stdout); a hook's own output is shown only when it fails
  line="spillway: switchover: $*"
  {{ echo "$line" >> "${{SPILLWAY_LOG:-/proc/1/fd/1}}"; }} 2>/dev/null || echo "$line" >&2
}}
here() {{  # a command to this Redis
  REDISCLI_AUTH="$admin" VALKEYCLI_AUTH="$admin" timeout 2 "$cli" --no-auth-warning --user admin \\
    -p "$SPILLWAY_REDIS_PORT" --raw "$@" 2>/dev/null | tr -d '\\r'
}}
field() {{ printf '%s\\n' "$info" | sed -n "s/^$1:\\(.*\\)$/\\1/p"; }}
{_SENTINEL_CLI}ask() {{  # a command to sentinel $1
  sentinel_cli 2 "$@" 2>/dev/null | tr -d '\\r'
}}
named() {{  # the primary sentinel $1 names, as host:port
  set -- $(ask "$1" SENTINEL get-master-addr-by-name "$SPILLWAY_MASTER")
  [ $# -eq 2 ] && echo "$1:$2"
}}
caught_up() {{  # there is an online replica, and every online one has all this primary wrote
  info=$(here INFO replication)
  offset=$(field master_repl_offset); online=0
  [ -n "$offset" ] || return 1
  # slave0:ip=<host>,port=<port>,state=online,offset=<acknowledged>,lag=<s> -> <host>:<port>=<acknowledged>
  online_replicas=$(field 'slave[0-9]*' \\
    | sed -n 's/^ip=\\([^,]*\\),port=\\([0-9]*\\),state=online,offset=\\([0-9]*\\),.*/\\1:\\2=\\3/p')
  for entry in $online_replicas; do
    acked="${{entry##*=}}"; replica="${{entry%=*}}"
    if [ "$acked" -lt "$offset" ]; then  # its last acknowledgement is older: ask the replica itself
      acked=$(REDISCLI_AUTH="$admin" VALKEYCLI_AUTH="$admin" timeout 2 "$cli" --no-auth-warning --user admin \\
        -h "${{replica%:*}}" -p "${{replica##*:}}" --raw INFO replication 2>/dev/null | tr -d '\\r' \\
        | sed -n 's/^slave_repl_offset:\\([0-9]*\\)$/\\1/p')
      [ "${{acked:-0}}" -ge "$offset" ] || return 1
    fi
    online=$((online + 1))
  done
  [ "$online" -gt 0 ]
}}
admin=$(cat "$SPILLWAY_SECRET/admin-password" 2>/dev/null) || exit 0
info=$(here INFO replication)
[ "$(field role)" = master ] || exit 0
[ "$(field connected_slaves)" -gt 0 ] 2>/dev/null || {{ say "no replica: Redis stops as the primary"; exit 0; }}
sentinel=""
for candidate in $SPILLWAY_SENTINELS; do
  if [ "$(named "$candidate")" = "$me" ]; then sentinel="$candidate"; break; fi
done
[ -n "$sentinel" ] || {{ say "no sentinel names this primary: Redis stops as it is"; exit 0; }}
[ "$(here CLIENT PAUSE {SWITCHOVER_SECONDS * 1000} WRITE)" = OK ] || {{ say "CLIENT PAUSE refused"; exit 0; }}
caught_up_by=$(( $(date +%s) + {CATCH_UP_SECONDS} ))
until caught_up; do
  if [ "$(date +%s)" -ge "$caught_up_by" ]; then
    here CLIENT UNPAUSE >/dev/null
    say "no online replica caught up in {CATCH_UP_SECONDS} s: Redis stops as the primary"; exit 0
  fi
  sleep 0.1
done
answer=$(ask "$sentinel" SENTINEL FAILOVER "$SPILLWAY_MASTER")
if [ "$answer" != OK ]; then
  here CLIENT UNPAUSE >/dev/null
  say "$sentinel refused SENTINEL FAILOVER ($answer): Redis stops as the primary"; exit 0
fi
say "writes paused, replicas caught up, $sentinel fails over"
while [ "$(date +%s)" -lt "$end" ]; do
  # Flags first, then the name: a failover that ends between the two shows as done, not given up.
  if ! ask "$sentinel" SENTINEL master "$SPILLWAY_MASTER" | grep -q failover_in_progress \\
     && [ "$(named "$sentinel")" = "$me" ]; then
    break  # given up (no replica promoted within failover-timeout)
  fi
  moved=0
  for candidate in $SPILLWAY_SENTINELS; do
    primary=$(named "$candidate") && [ "$primary" != "$me" ] && moved=$((moved + 1)) && promoted="$primary"
  done
  if [ "$moved" -ge "$SPILLWAY_QUORUM" ]; then say "$moved sentinels name $promoted: Redis stops"; exit 0; fi
  info=$(here INFO replication)
  if [ "$(field role)" = slave ]; then say "this Redis is a replica now: it stops"; exit 0; fi
  sleep 0.2
done
if [ "$(named "$sentinel")" = "$me" ]; then
  here CLIENT UNPAUSE >/dev/null; say "$sentinel still names this primary: writes resume until Redis stops"
else
  say "the sentinels have not agreed on the promoted replica in {SWITCHOVER_SECONDS - 5} s: Redis stops"
fi
exit 0
"""
