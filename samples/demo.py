"""`make demo`: the whole story on the bundled robot dataflow, on a private dora.

1. start a private dora coordinator and daemon (loopback, free ports, under .demo/),
2. start samples/robot.yml (a GIL-hogging C call, a slow pure-Python stop handler and two
   well-behaved nodes),
3. run `dora-doctor inspect robot --stop --grace-duration 2s`: it samples for a few seconds,
   asks dora to stop the dataflow, watches the shutdown and prints the diagnosis,
4. tear everything down, also on failure or Ctrl-C.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from dora_doctor.dora.private import LocalDora

HERE = Path(__file__).resolve().parent
GRACE = "2s"


def say(text: str) -> None:
    print(f"\n\033[1mdemo:\033[0m {text}", flush=True)


def main() -> int:
    workdir = HERE.parent / ".demo" / time.strftime("%Y%m%d-%H%M%S")
    # dora writes node logs next to the dataflow file: run a copy, keep samples/ clean
    dataflows = workdir / "samples"
    shutil.copytree(HERE, dataflows, ignore=shutil.ignore_patterns("out", "__pycache__"))
    record = workdir / "robot.ddrec"
    say(f"starting a private dora coordinator and daemon in {workdir}")
    with LocalDora.start(workdir / "dora") as dora:
        say(f"dora at 127.0.0.1:{dora.coordinator_port}; starting samples/robot.yml as 'robot'")
        dora.start_dataflow(dataflows / "robot.yml", "robot")
        pids = dora.wait_running("robot", nodes=4)
        say("nodes running: " + ", ".join(f"{n} (pid {p})" for n, p in sorted(pids.items())))
        command = ["inspect", "robot", "--stop", "--grace-duration", GRACE, "--record", str(record)]
        say("dora-doctor " + " ".join(command))
        code = subprocess.call([sys.executable, "-m", "dora_doctor", *command], env=dora.env)
        say(f"the recording is in {record}: `dora-doctor report {record}` shows it again")
        return code


if __name__ == "__main__":
    sys.exit(main())
