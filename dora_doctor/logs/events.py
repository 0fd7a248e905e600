"""What dora's logs say about a stop, as typed facts: one :class:`LogEvent` per line that
matters, of one of these kinds.

Event kinds (``LogEvent.kind``):

- ``STOP_REQUEST``: a stop was asked for (coordinator's "sent stop", ``dora run``'s
  ``--stop-after`` or Ctrl-C, or dora-doctor's own ``dora stop``);
- ``NODE_EXIT``: dora saw the node end with a signal or a non-zero exit code;
- ``GRACE_KILL``: the daemon's own line: it SIGKILLed the node for not stopping within the
  grace; ``seconds`` is the kill point (1.5 × grace on dora ≥ 0.4, the grace on 0.3.x);
- ``KILLED``: the CLI's verdict on the same fact, ``node was killed by dora because it didn't
  react to a stop message in time (SIGKILL)``: ``signal`` 9, no seconds. Kept apart from
  ``GRACE_KILL`` so that reading both the daemon log and the CLI output does not count one
  kill twice; it is also what makes dora call the dataflow failed;
- ``NODE_FINISHED``: dora counted the node's end as a success. On dora 1.x that includes a
  SIGTERM during a planned stop (``treating as clean``), so read it with the ``NODE_EXIT``
  that comes before it: it does not mean the node's own cleanup ran;
- ``DROP_TOKEN``: a drop-token reply could not be sent (0.3.x logs one for every node it
  SIGKILLs, as the node's drop-token request dies with it);
- ``DATAFLOW_END``: the dataflow (or ``dora run``'s daemon) finished; the only end marker for
  nodes that exit cleanly under a detached ``dora start``.
- ``NODE_STOP_REQUEST`` / ``NODE_RESTART_REQUEST``: the coordinator accepted ``dora node stop``
  / ``dora node restart`` of one node (1.1.0); the dataflow runs on. Kept apart from
  ``STOP_REQUEST`` so that a single node's stop is never read as the dataflow's;
- ``FINISH_DRAIN``: the daemon escalates the stop of a node still alive after its dataflow
  finished and its finish grace ran out (1.1.0): the stop request of a dataflow that ended on
  its own;
- ``HEALTH_KILL`` / ``STARTUP_KILL``: the daemon killed a node that sent nothing within its
  ``health_check_timeout``, or did not connect within its ``startup_timeout`` (1.1.0);
- ``DAEMON_LEFT``: the coordinator says every daemon disconnected (1.1.0);
- ``DAEMON_GONE`` / ``COORDINATOR_GONE``: not parsed from a line; ``inspect`` saw the
  daemon's or coordinator's process end while it watched (a crash or a kill leaves no line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

STOP_REQUEST = "stop-request"  # the coordinator sent STOP (or dora-doctor asked for it)


NODE_EXIT = "node-exit"  # dora saw the node end with a signal or an exit code


GRACE_KILL = "grace-kill"  # dora killed the node for not stopping within the grace period


KILLED = "killed"  # the CLI says dora SIGKILLed the node for not reacting to STOP in time


NODE_FINISHED = "node-finished"  # dora counted the node's end as a success


DROP_TOKEN = "drop-token"  # a drop-token reply to a node failed (0.3.x, after a SIGKILL)


DATAFLOW_END = "dataflow-end"  # the dataflow, or `dora run`'s daemon, finished


NODE_STOP_REQUEST = "node-stop-request"  # `dora node stop` of one node was accepted


NODE_RESTART_REQUEST = "node-restart-request"  # `dora node restart` of one node was accepted

# the coordinator's word that one node alone was asked to stop (or restart)
NODE_REQUESTS = (NODE_STOP_REQUEST, NODE_RESTART_REQUEST)


HEALTH_KILL = "health-kill"  # killed for sending nothing within health_check_timeout


STARTUP_KILL = "startup-kill"  # killed for not connecting within startup_timeout


# The daemon's finish drain gave up on a node: its dataflow finished except that node, whose
# inputs all closed ``seconds`` ago; dora then stops it like `dora stop` (SIGTERM 10 s later,
# SIGKILL at 15 s, measured on 1.1.0). The stop of that node, asked by no one (1.1.0)
FINISH_DRAIN = "finish-drain"


# The coordinator's word that a daemon left ("all daemons disconnected"): dora going away,
# to be read with what the processes show (a daemon may also come back within its window)
DAEMON_LEFT = "daemon-left"


# Not from a log line: dora-doctor saw the process of dora's daemon or coordinator vanish
# while it watched (source "dora-doctor"; nothing else records a SIGKILLed daemon's end)
DAEMON_GONE = "daemon-gone"


COORDINATOR_GONE = "coordinator-gone"


@dataclass
class LogEvent:
    """One fact from a log line; ``time`` is Unix seconds (UTC), None if the line had none.

    ``clock`` is the time of day (``HH:MM:SS``, local time) of a line that carries no date,
    such as the dora CLI's; ``level`` is the line's log level as written (``INFO``, ``warn``…).
    """

    kind: str
    time: Optional[float]
    dataflow: Optional[str] = None
    node: Optional[str] = None
    signal: Optional[int] = None
    exit_code: Optional[int] = None
    seconds: Optional[float] = None
    source: str = ""
    pattern: str = ""
    text: str = ""
    clock: Optional[str] = None
    level: Optional[str] = None
    machine: Optional[str] = None  # dora's machine id the fact is about, when known
