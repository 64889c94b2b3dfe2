"""The demo's load: logged-in users ask the session app `GET /whoami?ms=N` through the phases of a
profile, open loop (arrivals at each phase's rate whatever the service's speed, so a slow service
gets a queue, not fewer requests), writing one JSON line a second. It must never send a request
outside the test bed (loopback and the local cluster's ranges; no DNS names, no redirects, no
proxies), never hold more than `--max-in-flight` requests, and always end by itself: after the
phases plus at most one timeout to drain (the logins before them, paced at 20 a second, take that long plus at most two timeouts).
SIGTERM ends the sending early; the drain and the summary line still follow.

A 200 whose `user` is not the asking user's name counts as OK (the service answered) and as that
user's logout (`logged_out` counts distinct users); the user logs in again and goes on.

    python -m demo.load --url http://10.96.0.20:80 --phase steady:60:20 --phase surge:120:90 \
        --phase calm:120:10 --users 200 --work-ms 200 --log load.jsonl [--timeout 10]

In a pod of another cluster (`make demo CLUSTER=current`, `demo.incluster`), `--allow ADDRESS`
adds the one address the demo read from that cluster, its sample's Service; `--log /dev/stdout`
writes the lines for `kubectl logs`. The module imports nothing of the project's, so it runs as a
lone file there (`python load.py`).

The pure parts (phases, arrivals, the URL check, cookies, quantiles, the lines written) come
first; `Load` is the only part that does I/O.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import ipaddress
import itertools
import json
import math
import random
import resource
import signal
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

MAX_SECONDS = 1800.0  # no profile runs longer than this, whatever it says
MAX_RPS = 2000.0
LOGIN_CONCURRENCY = 20
LOGINS_PER_SECOND = 20.0
# The test bed's own addresses (tests/cluster): loopback, the Service CIDR, the pod CIDRs (which
# hold the real node's 10.245.0.0/24) and the node's address.
TEST_BED = tuple(ipaddress.ip_network(n) for n in
                 ("127.0.0.0/8", "::1/128", "10.96.0.0/12", "10.244.0.0/15", "10.245.0.1/32"))
OVERLOADED = "client overloaded"
DRAIN = "drain"  # the phase named in lines written after the last phase, while answers drain


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    rps: float


def parse_phase(text: str) -> Phase:
    """`name:seconds:requests-per-second`, e.g. `surge:120:90`."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0] or parts[0] == DRAIN:
        raise ValueError(f"{text!r}: a phase is name:seconds:requests-per-second (name not {DRAIN!r})")
    try:
        seconds, rps = float(parts[1]), float(parts[2])
    except ValueError:
        raise ValueError(f"{text!r}: seconds and requests-per-second must be numbers") from None
    if not 0 < seconds <= MAX_SECONDS or not 0 <= rps <= MAX_RPS:
        raise ValueError(f"{text!r}: seconds must be in (0, {MAX_SECONDS:g}], requests-per-second in [0, {MAX_RPS:g}]")
    return Phase(parts[0], seconds, rps)


def phase_at(phases: Sequence[Phase], offset: float) -> int | None:
    """The index of the phase running `offset` seconds after the start; None after the last."""
    end = 0.0
    for index, phase in enumerate(phases):
        end += phase.seconds
        if offset < end:
            return index
    return None


def arrivals(phases: Sequence[Phase], rng: random.Random | None = None) -> Iterator[tuple[float, int]]:
    """(seconds from the start, phase index) of every request, in order: a Poisson process at each
    phase's rate when `rng` is given, else evenly spaced."""
    start = 0.0
    for index, phase in enumerate(phases):
        if phase.rps > 0:
            offset = rng.expovariate(phase.rps) if rng else 0.0
            k = 0
            while offset < phase.seconds:
                yield start + offset, index
                k += 1
                offset = (offset + rng.expovariate(phase.rps)) if rng else k / phase.rps
        start += phase.seconds


def refusal(url: str, also: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address] = ()) -> str | None:
    """Why the load must not go to `url`, or None when it may: an address of the test bed, or one
    of `also`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        return f"{url}: only http:// URLs"
    if parts.query or parts.fragment:
        return f"{url}: give the service's base URL; the generator adds /login and /whoami"
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return f"{url}: {host!r} is not an IP address with a valid port (no DNS names: one could resolve anywhere)"
    if address not in also and not any(address in network for network in TEST_BED):
        named = ", ".join([*map(str, TEST_BED), *map(str, also)])
        return f"{url}: {address} is outside the test bed ({named})"
    return None


def allowed(url: str, also: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address] = ()) -> bool:
    return refusal(url, also) is None


def _expired(attributes: Sequence[str], now: float) -> bool:
    """Max-Age wins over Expires (RFC 6265 §5.3)."""
    pairs = [(key.strip().lower(), value.strip()) for key, _, value in (a.partition("=") for a in attributes)]
    for key, value in pairs:
        if key == "max-age" and value.lstrip("-").isdigit():
            return int(value) <= 0
    for key, value in pairs:
        if key == "expires":
            try:
                return email.utils.parsedate_to_datetime(value).timestamp() <= now
            except (TypeError, ValueError):
                return False
    return False


def merge_set_cookies(jar: Mapping[str, str], set_cookies: Iterable[str], now: float) -> dict[str, str]:
    """The jar after a response's Set-Cookie headers: new values replace old, expired ones go."""
    merged = dict(jar)
    for line in set_cookies:
        first, *attributes = line.split(";")
        name, equals, value = first.partition("=")
        if not equals or not name.strip():
            continue
        if _expired(attributes, now):
            merged.pop(name.strip(), None)
        else:
            merged[name.strip()] = value.strip()
    return merged


def cookie_header(jar: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def quantile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-quantile (one of the values); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


@dataclass
class Tally:
    """What happened in one window (a second or a phase): requests sent, latencies of the OK
    answers, errors by kind, the replicas that answered, failed logins (counted per second only)."""

    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)
    replicas: set[str] = field(default_factory=set)
    login_errors: int = 0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(self.error_kinds.values())


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _counts(tally: Tally) -> dict[str, Any]:
    return {"sent": tally.sent, "ok": tally.ok, "errors": tally.errors,
            "error_kinds": dict(sorted(tally.error_kinds.items())),
            **{f"p{round(q * 100)}": _seconds(quantile(tally.latencies, q)) for q in (0.5, 0.95, 0.99)}}


def second_line(tally: Tally, *, t: float, phase: str, target_rps: float, in_flight: int, logged_out: int,
                logins: int) -> dict[str, Any]:
    """The log's line for one second: requests sent in it, answers and errors completed in it."""
    return {"t": round(t, 3), "phase": phase, "target_rps": target_rps, **_counts(tally), "in_flight": in_flight,
            "logged_out": logged_out, "logins": logins, "login_errors": tally.login_errors,
            "replicas_seen": len(tally.replicas)}


def summary_line(phases: Sequence[Phase], tallies: Sequence[Tally], *, started_at: float, t: float,
                 duration_seconds: float, logged_out: int, logins: int, login_errors: int,
                 params: Mapping[str, Any]) -> dict[str, Any]:
    """The log's last line: totals (requests counted in the phase that sent them), each phase's
    counts and quantiles, and the run's parameters."""
    total = Tally(sent=sum(t.sent for t in tallies), latencies=[x for t in tallies for x in t.latencies],
                  error_kinds=sum((t.error_kinds for t in tallies), Counter()))
    starts = itertools.accumulate((p.seconds for p in phases), initial=started_at)
    return {"summary": True, "t": round(t, 3), **_counts(total), "logged_out": logged_out, "logins": logins,
            "login_errors": login_errors, "duration": round(duration_seconds, 3), **params,
            "phases": [{"name": p.name, "seconds": p.seconds, "target_rps": p.rps, "start": round(start, 3),
                        **_counts(tally)} for p, tally, start in zip(phases, tallies, starts, strict=False)]}


@dataclass(frozen=True)
class Settings:
    url: str
    phases: tuple[Phase, ...]
    users: int
    work_ms: int
    log: Path
    timeout_seconds: float = 10.0
    max_in_flight: int = 1000
    poisson: bool = True
    seed: int = 1


@dataclass
class User:
    name: str
    cookies: dict[str, str] = field(default_factory=dict)
    generation: int = 0  # successful logins; 0: never logged in, so an anonymous answer is no logout
    logging_in: bool = False


class Load:
    """One run: logins, then the arrivals, a line a second, the drain and the summary."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.settings, self.session = settings, session
        base = settings.url.rstrip("/")
        self.login_url, self.whoami_url = f"{base}/login", f"{base}/whoami?ms={settings.work_ms}"
        self.users = [User(f"user-{i:04d}") for i in range(1, settings.users + 1)]
        self.second, self.phases = Tally(), [Tally() for _ in settings.phases]
        self.in_flight: set[asyncio.Task[None]] = set()
        self.background: set[asyncio.Task[bool]] = set()
        self.logged_out: set[str] = set()
        self.logins = self.login_errors = self.seconds_written = 0
        self.login_slots = asyncio.Semaphore(LOGIN_CONCURRENCY)
        self.loop = asyncio.get_running_loop()
        self.start, self.started_at = self.loop.time(), time.time()

    def _both(self, index: int) -> tuple[Tally, Tally]:
        return self.second, self.phases[index]

    def _login_later(self, user: User) -> None:
        user.logging_in = True  # now, not when the task starts: a second anonymous answer must not log in again
        task = asyncio.create_task(self.login(user))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def login(self, user: User) -> bool:
        user.logging_in = True
        try:
            async with self.login_slots, self.session.post(
                    self.login_url, data={"user": user.name}, allow_redirects=False,
                    headers={"Cookie": cookie_header(user.cookies)}) as response:
                await response.read()
                ok = response.status == 200
                if ok:  # merged, not replaced: HAProxy sets its affinity cookie only when a request lacks one
                    user.cookies = merge_set_cookies(user.cookies, response.headers.getall("Set-Cookie", []),
                                                     time.time())
        except (TimeoutError, aiohttp.ClientError, OSError):
            ok = False
        finally:
            user.logging_in = False
        if not ok:
            self.second.login_errors += 1
            self.login_errors += 1
            return False
        user.generation += 1
        self.logins += 1
        return True

    async def _whoami(self, user: User, generation: int) -> tuple[str, dict[str, Any] | None]:
        """("", the answer) for a 200 with a JSON object, else (the error's kind, None)."""
        try:
            async with self.session.get(self.whoami_url, allow_redirects=False,
                                        headers={"Cookie": cookie_header(user.cookies)}) as response:
                body = await response.read()
                if generation == user.generation:  # not a stale answer from before a new login
                    user.cookies = merge_set_cookies(user.cookies, response.headers.getall("Set-Cookie", []),
                                                     time.time())
                if response.status != 200:
                    return str(response.status), None
            answer = json.loads(body)
        except TimeoutError:
            return "timeout", None
        except (aiohttp.ClientError, OSError):
            return "connection", None
        except ValueError:
            return "bad answer", None
        return ("", answer) if isinstance(answer, dict) else ("bad answer", None)

    async def ask(self, user: User, index: int) -> None:
        generation, started = user.generation, self.loop.time()
        try:
            kind, answer = await self._whoami(user, generation)
        except asyncio.CancelledError:
            for tally in self._both(index):
                tally.error_kinds["unfinished"] += 1
            raise
        for tally in self._both(index):
            if answer is None:
                tally.error_kinds[kind] += 1
            else:
                tally.latencies.append(self.loop.time() - started)
                tally.replicas.add(str(answer.get("replica")))
        if answer is None or answer.get("user") == user.name:
            return
        if generation == user.generation and not user.logging_in:
            if generation > 0:  # an anonymous answer before the first login is no logout
                self.logged_out.add(user.name)
            self._login_later(user)

    async def _send(self) -> None:
        rng = random.Random(self.settings.seed) if self.settings.poisson else None
        users = itertools.cycle(self.users)
        for offset, index in arrivals(self.settings.phases, rng):
            delay = self.start + offset - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            user = next(users)
            for tally in self._both(index):
                tally.sent += 1
            if len(self.in_flight) >= self.settings.max_in_flight:
                for tally in self._both(index):
                    tally.error_kinds[OVERLOADED] += 1
                continue
            if user.generation == 0 and not user.logging_in:
                self._login_later(user)
            task = asyncio.create_task(self.ask(user, index))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    def _write_second(self, out: IO[str], t: float, offset: float) -> None:
        """The line of the window starting `offset` seconds after the start and ending now."""
        index = phase_at(self.settings.phases, offset)
        phase = self.settings.phases[index] if index is not None else Phase(DRAIN, 0.0, 0.0)
        tally, self.second = self.second, Tally()
        line = second_line(tally, t=t, phase=phase.name, target_rps=phase.rps, in_flight=len(self.in_flight),
                           logged_out=len(self.logged_out), logins=self.logins)
        out.write(json.dumps(line) + "\n")
        out.flush()

    async def _tick(self, out: IO[str]) -> None:
        for second in itertools.count(1):
            await asyncio.sleep(max(0.0, self.start + second - self.loop.time()))
            self._write_second(out, self.started_at + second, second - 1)
            self.seconds_written = second

    async def run(self) -> dict[str, Any]:
        timeout = self.settings.timeout_seconds
        logins = []
        for user in self.users:  # paced: a burst of logins would itself be a surge
            logins.append(asyncio.create_task(self.login(user)))
            await asyncio.sleep(1 / LOGINS_PER_SECOND)
        await asyncio.wait(logins, timeout=2 * timeout)
        self.background.update(t for t in logins if not t.done())
        self.start, self.started_at = self.loop.time(), time.time()
        with self.settings.log.open("a") as out:
            ticker, sender = asyncio.create_task(self._tick(out)), asyncio.create_task(self._send())
            self.loop.add_signal_handler(signal.SIGTERM, sender.cancel)  # stop sending; drain and summarize
            try:
                await asyncio.wait({sender})
            finally:
                self.loop.remove_signal_handler(signal.SIGTERM)
            if self.in_flight:
                _, unfinished = await asyncio.wait(set(self.in_flight), timeout=timeout + 0.5)
                await _cancelled(unfinished)
            ticker.cancel()
            await _cancelled(self.background | {ticker})
            duration = self.loop.time() - self.start
            self._write_second(out, time.time(), self.seconds_written)  # the last, partial second
            summary = summary_line(self.settings.phases, self.phases, started_at=self.started_at, t=time.time(),
                                   duration_seconds=duration, logged_out=len(self.logged_out), logins=self.logins,
                                   login_errors=self.login_errors,
                                   params={**self._params(), "interrupted": sender.cancelled()})
            out.write(json.dumps(summary) + "\n")
        return summary

    def _params(self) -> dict[str, Any]:
        s = self.settings
        return {"url": s.url, "users": s.users, "work_ms": s.work_ms, "timeout_seconds": s.timeout_seconds,
                "max_in_flight": s.max_in_flight, "arrivals": "poisson" if s.poisson else "even"}


async def _cancelled(tasks: Iterable[asyncio.Task[Any]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def run(settings: Settings) -> dict[str, Any]:
    """The whole run; returns the summary line. No cookie jar in the session (each `User` keeps
    its own) and no proxies from the environment (trust_env is off)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=settings.max_in_flight + LOGIN_CONCURRENCY),
                                     cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds)) as session:
        return await Load(settings, session).run()


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard),
                                                    hard))


def _phase_argument(text: str) -> Phase:
    try:
        return parse_phase(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _address_argument(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not one IP address") from None


def _arguments(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m demo.load", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", required=True, help="the service's base URL, an address of the test bed")
    parser.add_argument("--phase", action="append", type=_phase_argument, required=True,
                        help="name:seconds:requests-per-second, repeated in order")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--work-ms", type=int, default=200, help="how long each request holds a server thread")
    parser.add_argument("--log", type=Path, required=True, help="JSON lines, appended, one a second")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds, per request")
    parser.add_argument("--max-in-flight", type=int, default=1000)
    parser.add_argument("--arrivals", choices=("poisson", "even"), default="poisson")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--allow", action="append", type=_address_argument, default=[], metavar="ADDRESS",
                        help="one more IP address the load may go to (not a network), e.g. a Service's ClusterIP")
    args = parser.parse_args(argv)
    reason = refusal(args.url, tuple(args.allow))
    if reason:
        parser.error(reason)
    if sum(p.seconds for p in args.phase) > MAX_SECONDS:
        parser.error(f"the phases last more than {MAX_SECONDS:g} s")
    for name, value, low, high in (("--users", args.users, 1, 100_000), ("--work-ms", args.work_ms, 0, 10_000),
                                   ("--timeout", args.timeout, 0.1, 120), ("--max-in-flight", args.max_in_flight, 1,
                                                                          10_000)):
        if not low <= value <= high:
            parser.error(f"{name} must be in [{low}, {high}]")
    return Settings(args.url, tuple(args.phase), args.users, args.work_ms, args.log, args.timeout,
                    args.max_in_flight, args.arrivals == "poisson", args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    settings = _arguments(argv)
    _raise_open_files(settings.max_in_flight + LOGIN_CONCURRENCY + 64)
    summary = asyncio.run(run(settings))
    print(f"load: {summary['sent']} sent, {summary['ok']} ok, {summary['errors']} errors {summary['error_kinds']}, "
          f"{summary['logged_out']} users logged out, {summary['logins']} logins in {summary['duration']:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
