"""The provisioned session store (`sessionStore.type: Redis`) and the External reference.

`config`: names, the rendered files and the decisions behind them; `scripts`: the shell the
containers run (start scripts, readiness probe, the primary's switchover on a planned stop);
`objects`: the Kubernetes objects and the app's env; `state`: what the live store means
(primary, labels, readiness, status). Pure: no I/O.
"""

from spillway.resources.sessionstore.config import *  # noqa: F403
from spillway.resources.sessionstore.config import _component_name, _pod_host  # noqa: F401
from spillway.resources.sessionstore.objects import *  # noqa: F403
from spillway.resources.sessionstore.scripts import *  # noqa: F403
from spillway.resources.sessionstore.state import *  # noqa: F403
