"""`spillway.ports.RedisPort` over the Redis protocol (redis-py): asks each sentinel which
primary it monitors and whether it sees a quorum, and changes the app user's passwords on each
Redis during a rotation; both as the admin user. The store's NetworkPolicies admit the
operator's pods to both."""

from __future__ import annotations

import logging

import redis

from spillway.resources.sessionstore.state import SentinelView

log = logging.getLogger(__name__)


class RedisClient:
    def ask(self, addresses: list[str], port: int, master: str, admin_password: str,
            timeout_seconds: float) -> SentinelView:
        primaries: list[str | None] = []
        quorum: list[bool] = []
        problems: list[str] = []
        for address in addresses:
            client = redis.Redis(host=address, port=port, username="admin", password=admin_password,
                                 socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
                                 decode_responses=True)
            try:
                answer = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master)
                primaries.append(str(answer[0]) if answer else None)
                try:
                    client.execute_command("SENTINEL", "CKQUORUM", master)
                    quorum.append(True)
                except redis.ResponseError as err:  # NOQUORUM / NOAUTH: the sentinel's own words
                    quorum.append(False)
                    problems.append(f"{address}: {err}")
            except (redis.RedisError, OSError, IndexError, TypeError) as err:
                primaries.append(None)
                quorum.append(False)
                problems.append(f"{address}: {type(err).__name__}: {err}")
            finally:
                client.close()
        if problems:
            log.debug("sentinels of %s: %s", master, "; ".join(problems))
        return SentinelView(primaries=tuple(primaries), quorum=tuple(quorum), problem="; ".join(problems))

    def set_user(self, addresses: list[str], port: int, admin_password: str, user: str, rules: list[str],
                 timeout_seconds: float) -> str:
        problems = []
        for address in addresses:
            client = redis.Redis(host=address, port=port, username="admin", password=admin_password,
                                 socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
            try:
                client.execute_command("ACL", "SETUSER", user, *rules)
            except (redis.RedisError, OSError) as err:
                problems.append(f"{address}: {type(err).__name__}: {err}")
            finally:
                client.close()
        return "; ".join(problems)
