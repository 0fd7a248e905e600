"""`make demo`: the whole story on the bundled robot dataflow, on a private dora.

1. start a private dora coordinator and daemon (loopback, free ports, under .demo/),
2. start samples/robot.yml (a GIL-hogging C call, a slow pure-Python stop handler and two
   well-behaved nodes),
3. run `dora-doctor inspect robot` while the demo stops the dataflow with a 2 s grace,
4. print the diagnosis, then tear everything down, also on failure or Ctrl-C.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dora_doctor.localdora import LocalDora

HERE = Path(__file__).resolve().parent
WATCH_BEFORE_STOP_S = 6
GRACE = "2s"


def say(text: str) -> None:
    print(f"\n\033[1mdemo:\033[0m {text}", flush=True)


def main() -> int:
    workdir = HERE.parent / ".demo" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    record = workdir / "robot.ddrec"
    say(f"starting a private dora coordinator and daemon in {workdir}")
    with LocalDora.start(workdir) as dora:
        say(f"dora at 127.0.0.1:{dora.coordinator_port}; starting samples/robot.yml as 'robot'")
        dora.start_dataflow(HERE / "robot.yml", "robot")
        pids = dora.wait_running("robot", nodes=4)
        say(f"nodes running: {', '.join(f'{n} (pid {p})' for n, p in sorted(pids.items()))}")
        say(
            f"dora-doctor inspect robot --record {record.name}  (the demo stops the dataflow in {WATCH_BEFORE_STOP_S} s)"
        )
        inspect = subprocess.Popen(
            [sys.executable, "-m", "dora_doctor", "inspect", "robot", "--record", str(record)],
            env=dora.env,
        )
        try:
            deadline = time.monotonic() + WATCH_BEFORE_STOP_S
            while time.monotonic() < deadline and inspect.poll() is None:
                time.sleep(0.2)
            say(f"dora stop robot --grace-duration {GRACE}")
            stop = dora.stop_dataflow("robot", grace=GRACE)
            print((stop.stdout + stop.stderr).strip(), flush=True)
            code = inspect.wait(timeout=120)
        finally:
            if inspect.poll() is None:
                inspect.terminate()
                inspect.wait(timeout=30)
        say(f"done: the recording is in {record} (re-read it with `dora-doctor report {record}`)")
        return code


if __name__ == "__main__":
    sys.exit(main())
