"""A bounded request loop that runs as a pod beside the app under test, so traffic goes the way
it does in a cluster: the Service's DNS name through CoreDNS, its ClusterIP through kube-proxy.

Sends one request at a time to URL, a new connection each, every INTERVAL seconds; stops when
the file STOP appears or after MAX_SECONDS, whichever comes first. Prints a JSON summary line
every second and a final one with "done": true: ok count, the pods that answered, and the
failures (status or error) with their times. Refusals before the first answer are counted apart
(`before_first`): the pod may start before kube-proxy has programmed the Service it calls."""

import json
import os
import time
import urllib.error
import urllib.request

URL = os.environ["URL"]
INTERVAL = float(os.environ.get("INTERVAL", "0.02"))
MAX_SECONDS = float(os.environ.get("MAX_SECONDS", "300"))
STOP = os.environ.get("STOP", "/run/client/stop")

started = time.monotonic()
ok, pods, failures, before_first = 0, {}, [], 0
last_report = started


def report(done: bool) -> None:
    print(json.dumps({"done": done, "ok": ok, "pods": pods, "failures": failures[-50:],
                      "failed": len(failures), "before_first": before_first,
                      "elapsed": round(time.monotonic() - started, 1)}), flush=True)


while time.monotonic() - started < MAX_SECONDS and not os.path.exists(STOP):
    at = round(time.monotonic() - started, 2)
    try:
        with urllib.request.urlopen(URL, timeout=3) as response:
            body = json.loads(response.read())
            ok += 1
            pods[body["pod"]] = pods.get(body["pod"], 0) + 1
    except urllib.error.HTTPError as err:
        failures.append({"at": at, "status": err.code, "body": err.read().decode(errors="replace")[:200]})
    except Exception as err:  # noqa: BLE001 - every failure is what the test looks for
        if ok == 0 and "Connection refused" in repr(err):
            before_first += 1  # the Service's rules are not in place yet
        else:
            failures.append({"at": at, "error": repr(err)[:200]})
    if time.monotonic() - last_report >= 1:
        report(False)
        last_report = time.monotonic()
    time.sleep(INTERVAL)
report(True)
