"""The provisioned session store (`sessionStore.type: Redis`): Redis in Standalone or Sentinel
mode, as plain dicts ready for server-side apply. Pure: no I/O, no randomness — the reconcile
generates the password once and passes it in; a builder never makes one up.

What is built, for a ScalableService `<name>`:
- Secret `<name>-redis-password`: the generated password, created once by the reconcile and
  never rewritten; every other password derives from it. Secret `<name>-redis` (the servers' own): the ACL file and the two snippets that carry the
  admin password (`masteruser`/`masterauth`, `sentinel auth-user`/`auth-pass`), plus the
  admin's and the exporter's passwords. Secret `<name>-redis-connection` (the app's): only the
  app user's URL, host, port, name and password, and in Sentinel mode the master's name and the
  sentinels' addresses. `app_env` turns it into the app containers' env (secretKeyRefs only).
- ConfigMap `<name>-redis-<digest>`: redis.conf, Redis's start script and, in Sentinel mode, its
  preStop hook; in Sentinel mode also `<name>-sentinel-<digest>`: sentinel.conf and the
  sentinels' start script (`scripts`). Each is immutable and named by its content, so a change
  is a new ConfigMap that rolls only the pods mounting it. Neither holds a password: each container's command
  renders its running config into an in-memory emptyDir (`/run/spillway`) from the ConfigMap
  and the mounted Secret, then execs the server; the same emptyDir is where redis-sentinel
  REWRITES its config and Redis runs CONFIG REWRITE after a failover
  (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/).
- StatefulSet `<name>-redis` (1 pod, or in Sentinel mode a primary plus `replicas` replicas),
  headless Service `<name>-redis`, write Service `<name>-redis-primary` selecting
  `spillway.io/redis-role: primary` (static on the Standalone pod; in Sentinel mode the reconcile
  moves the label to the pod the sentinels name), PDB and NetworkPolicy `<name>-redis`; in
  Sentinel mode also StatefulSet, headless Service, PDB and NetworkPolicy `<name>-sentinel`
  (3 sentinels, quorum 2, so failover needs a majority).

Decisions:
- One generated password, several users: each user's password is HMAC-SHA256(password, user
  name) in hex, so the app's password never opens the admin or exporter users, every password is
  safe unquoted in a config file, and the ACL file holds only SHA-256 hashes (`#<hash>`).
- ACL (https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/): `default`
  is off with no password. `app` may touch keys under Spring Session's default namespace
  `spring:session:*` and under `<name>:*` (its own keys, or a custom Spring Session namespace);
  commands `+@all -@dangerous` (no FLUSHALL, FLUSHDB, KEYS, CONFIG, DEBUG, SHUTDOWN, MODULE, ACL,
  REPLICAOF/SLAVEOF, MIGRATE, MONITOR, SORT, RESTORE, CLIENT KILL/LIST, SAVE, ...) plus `+info`
  (Spring Boot's Redis health indicator runs INFO); scripts may run (every key they touch is
  still checked) but not be flushed, killed, debugged or loaded as functions. Channels: the key
  events Spring Session subscribes to and `spring:session:*`; PSUBSCRIBE is checked literally,
  so Spring Session's pattern for database 0 is listed as is. `exporter`: PING and INFO only, no
  key. `admin`: everything, for replication (`masteruser`) and the sentinels (`auth-user`).
- redis.conf: AOF as spec'd (`appendonly`, `appendfsync`, everysec by default) plus the default
  RDB snapshots; `maxmemory` is spec.maxMemory and the container's memory limit is 2.5 times it
  plus 64Mi: a fork for a snapshot or an AOF rewrite can copy every page in the worst case, and
  replica output buffers (not counted in maxmemory) are capped at half of it in all
  (https://redis.io/docs/latest/operate/oss_and_stack/management/admin/,
  https://redis.io/docs/latest/develop/reference/eviction/). `notify-keyspace-events Egx`:
  what Spring Session sets itself, so the app runs with `configure-action=none` and never needs
  CONFIG (https://redis.io/docs/latest/integrate/spring-framework-cache/session/,
  https://redis.io/docs/latest/develop/pubsub/keyspace-notifications/).
- A data volume claim per pod when persistence.size is above zero, an emptyDir otherwise; with an
  emptyDir a recreated primary starts empty, so Sentinel mode wants a size.
- Sentinels announce and resolve hostnames (pod DNS names of the headless Services), so a
  rescheduled pod keeps its identity. A starting Redis asks the sentinels who the primary is and
  follows it, else pod 0 is the primary; a starting sentinel asks its peers, else monitors pod 0.
- Sentinels authenticate (Sentinel ACL, https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/#acl-in-sentinel):
  `default` is off; `admin` (everything) is what the sentinels use with each other
  (`sentinel sentinel-user`/`sentinel-pass`), what the start scripts, the preStop hook and the
  operator use; `app` may only read the topology (SENTINEL get-master-addr-by-name, master(s),
  replicas, sentinels) and subscribe to the sentinels' events: no SENTINEL SET, REMOVE, MONITOR,
  FAILOVER, RESET, CONFIG, no PUBLISH. The app's sentinel password is its own (derived from the
  generated one under another name), not the app's Redis password: a rotation changes the one
  that opens the data and leaves this one, which opens nothing but the topology. The
  NetworkPolicy still admits only the app's, the Redis and the sentinel pods (and the operator).
- A planned stop of the primary (a drain, a rolling update, a deleted pod) is a switchover, not
  a failover: its preStop hook pauses writes, waits for the replicas to have them, asks a
  sentinel for SENTINEL FAILOVER and lets Redis stop once a quorum names the promoted replica
  (about 2 s without writes instead of down-after-milliseconds and an election). It runs as
  `admin` (CLIENT PAUSE is @admin); the grace period is its bound plus Redis's own stop time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass

from spillway import GROUP
from spillway.api.spec import ScalableServiceSpec
from spillway.api.units import parse_quantity
from spillway.resources.meta import Owner, child_name

REDIS = "redis"
SENTINEL = "sentinel"
ROLE_LABEL = f"{GROUP}/redis-role"
PRIMARY = "primary"
REDIS_PORT = 6379
SENTINEL_PORT = 26379
SENTINELS = 3
QUORUM = 2
UID = 999  # the official image's redis user
CONFIG_DIR = "/etc/spillway/config"
SECRET_DIR = "/etc/spillway/secret"
RUN_DIR = "/run/spillway"
DATA_DIR = "/data"
USERS = ("app", "exporter", "admin")
SENTINEL_APP = "sentinel:app"  # the name the app's sentinel password is derived under
# What the app's Sentinel client (Lettuce) may send a sentinel: its handshake (HELLO with AUTH,
# CLIENT SETNAME), the topology reads and the event subscriptions. Every name exists in Redis 7.0's
# Sentinel command table: an unknown one stops redis-sentinel at start.
SENTINEL_APP_COMMANDS = ("+ping", "+hello", "+auth", "+role", "+client|setname", "+client|getname", "+subscribe",
                         "+psubscribe", "+unsubscribe", "+punsubscribe", "+sentinel|get-master-addr-by-name",
                         "+sentinel|master", "+sentinel|masters", "+sentinel|replicas", "+sentinel|slaves",
                         "+sentinel|sentinels")
MIB = 2**20
MIN_MAX_MEMORY = 16 * MIB
# Spring Session's RedisIndexedSessionRepository: SUBSCRIBE __keyevent@<db>__:del|expired and
# PSUBSCRIBE <namespace>event:<db>:created:* (the namespace defaults to `spring:session:`).
SPRING_CHANNELS = ("__keyevent@*__:expired", "__keyevent@*__:del", "spring:session:*",
                   "spring:session:event:0:created:*")
ENV_KEYS = (("REDIS_URL", "url"), ("REDIS_HOST", "host"), ("REDIS_PORT", "port"), ("REDIS_USERNAME", "username"),
            ("REDIS_PASSWORD", "password"), ("SPRING_DATA_REDIS_URL", "url"))
SENTINEL_ENV_KEYS = (("SPRING_DATA_REDIS_SENTINEL_MASTER", "sentinel-master"),
                     ("SPRING_DATA_REDIS_SENTINEL_NODES", "sentinel-nodes"),
                     ("SPRING_DATA_REDIS_SENTINEL_USERNAME", "sentinel-username"),
                     ("SPRING_DATA_REDIS_SENTINEL_PASSWORD", "sentinel-password"))


def user_password(password: str, user: str) -> str:
    """The password of one Redis user, derived from the generated one (hex, 64 characters)."""
    return hmac.new(password.encode(), user.encode(), hashlib.sha256).hexdigest()


def _component_name(owner: Owner, component: str) -> str:
    # A StatefulSet's name leaves room for the 11 characters its controller-revision-hash label adds.
    return child_name(owner, component, limit=52)


def redis_name(owner: Owner) -> str:
    return _component_name(owner, REDIS)


def sentinel_name(owner: Owner) -> str:
    return _component_name(owner, SENTINEL)


def primary_name(owner: Owner) -> str:
    return child_name(owner, "redis-primary")


def password_name(owner: Owner) -> str:
    return child_name(owner, "redis-password")


def connection_name(owner: Owner) -> str:
    return child_name(owner, "redis-connection")


def master_name(owner: Owner) -> str:
    return owner.name


def sentinel_mode(spec: ScalableServiceSpec) -> bool:
    return spec.session_store.redis.mode == "Sentinel"


def _pod_host(owner: Owner, statefulset: str, ordinal: int) -> str:
    return f"{statefulset}-{ordinal}.{statefulset}.{owner.namespace}.svc"


def sentinel_nodes(owner: Owner) -> list[str]:
    return [f"{_pod_host(owner, sentinel_name(owner), i)}:{SENTINEL_PORT}" for i in range(SENTINELS)]


def max_memory_bytes(spec: ScalableServiceSpec) -> int:
    value = parse_quantity(spec.session_store.redis.max_memory)
    if value < MIN_MAX_MEMORY:
        raise ValueError("sessionStore.redis.maxMemory must be at least 16Mi (0 would mean no limit in Redis)")
    return value


def memory_limit(spec: ScalableServiceSpec) -> str:
    """The Redis container's memory limit (and request): 2.5 x maxmemory + 64Mi, in Mi."""
    return f"{math.ceil((max_memory_bytes(spec) * 5 // 2 + 64 * MIB) / MIB)}Mi"


# --- files ----------------------------------------------------------------------------------


ROTATE_ANNOTATION = f"{GROUP}/rotate-session-password"
ROTATION_CURRENT = f"{GROUP}/app-password-token"
ROTATION_PREVIOUS = f"{GROUP}/previous-app-password-token"


@dataclass(frozen=True)
class Rotation:
    """Which app passwords Redis accepts: the one of `current` (the token of the last rotation
    asked for; "" before any) and, while the app rolls onto it, the one of `previous`."""

    current: str = ""
    previous: str | None = None

    def tokens(self) -> tuple[str, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)


NO_ROTATION = Rotation()


def app_password(password: str, token: str = "") -> str:
    """The app user's password for a rotation token: a new token, a new password, and no token
    reveals another's."""
    return user_password(password, "app" if not token else f"app:{token}")


def password_hash(password: str) -> str:
    """How an ACL file and ACL SETUSER name a password without holding it."""
    return hashlib.sha256(password.encode()).hexdigest()


def acl_file(owner: Owner, password: str, rotation: Rotation = NO_ROTATION) -> str:
    def hashed(user: str) -> str:
        return "#" + password_hash(user_password(password, user))

    app = " ".join("#" + password_hash(app_password(password, t)) for t in rotation.tokens())
    channels = " ".join(f"&{c}" for c in (*SPRING_CHANNELS, f"{owner.name}:*"))
    return "\n".join([
        "user default off resetpass resetkeys resetchannels -@all",
        f"user app on {app} resetkeys ~spring:session:* ~{owner.name}:* resetchannels {channels} "
        "+@all -@dangerous +info -@scripting +eval +evalsha +eval_ro +evalsha_ro +script|load +script|exists",
        f"user exporter on {hashed('exporter')} resetkeys resetchannels -@all +ping +info +client|setname",
        f"user admin on {hashed('admin')} ~* &* +@all",
    ]) + "\n"


def redis_conf(spec: ScalableServiceSpec) -> str:
    store = spec.session_store.redis
    persistence = store.persistence
    max_memory = max_memory_bytes(spec)
    replicas = store.replicas if sentinel_mode(spec) else 1
    buffer_hard = max(8 * MIB, max_memory // (2 * replicas))
    return "\n".join([
        "# Rendered by Spillway. At start, the script appends dir, aclfile and the replication auth (from the Secret).",
        f"port {REDIS_PORT}",
        "bind * -::*",
        # The default user is off and has no password: protected mode has nothing to protect.
        "protected-mode no",
        'logfile ""',
        f"appendonly {'yes' if persistence.append_only else 'no'}",
        f"appendfsync {persistence.fsync}",
        "save 3600 1 300 100 60 10000",
        f"maxmemory {max_memory}",
        f"maxmemory-policy {store.eviction_policy}",
        f"client-output-buffer-limit replica {buffer_hard} {buffer_hard // 2} 60",
        "notify-keyspace-events Egx",
        # Redis 7's defaults, stated: DEBUG and MODULE are off for every user, admin included.
        "enable-debug-command no",
        "enable-module-command no",
        "replica-read-only yes",
        "tcp-keepalive 60",
    ]) + "\n"


def sentinel_users(password: str) -> str:
    """The sentinels' ACL users (in the Secret's sentinel-auth.conf: Sentinel reads users from
    its config, not from an ACL file), passwords as SHA-256 hashes."""
    admin = password_hash(user_password(password, "admin"))
    app = password_hash(user_password(password, SENTINEL_APP))
    return "\n".join([
        "user default off resetpass resetkeys resetchannels -@all",
        f"user admin on #{admin} ~* &* +@all",
        f"user app on #{app} resetkeys resetchannels &* -@all {' '.join(SENTINEL_APP_COMMANDS)}",
    ]) + "\n"


def sentinel_conf() -> str:
    return "\n".join([
        "# Rendered by Spillway. At start, the script appends dir, announce-ip, monitor, users and auth lines (from the Secret).",
        f"port {SENTINEL_PORT}",
        # The default user is off: protected mode has nothing to protect.
        "protected-mode no",
        "sentinel resolve-hostnames yes",
        "sentinel announce-hostnames yes",
        "sentinel deny-scripts-reconfig yes",
    ]) + "\n"


def sentinel_master_conf(owner: Owner) -> str:
    # failover-timeout also paces a failover tried again after a split vote (twice it): 10 s, not
    # the default 180 s, so a split costs about 20 s; session data is small, so replicas
    # reconfigure well within it (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/).
    master = master_name(owner)
    return (f"sentinel down-after-milliseconds {master} 5000\n"
            f"sentinel failover-timeout {master} 10000\n"
            f"sentinel parallel-syncs {master} 1\n")
