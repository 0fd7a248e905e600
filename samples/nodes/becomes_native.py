"""A node whose process runs no Python: it registers with dora, then becomes ``/bin/sleep``.

dora 1.1.0 starts no node until every node of the dataflow has registered, and no native
(Rust/C++) node that speaks dora comes from PyPI without compiling. So this script does the
registering through the Python API and then replaces itself with ``os.execv``: the PID that
``dora node list`` reports keeps running, as a plain C program. It never reacts to STOP.

dora-doctor should find: not a Python process (py-spy: no Python interpreter), so it is
skipped, not an error; at a stop it ends by SIGTERM (Signal(15)) at the grace.
"""

import os

from dora import Node


def main() -> None:
    Node()  # returns once every node of the dataflow has registered
    os.execv("/bin/sleep", ["sleep", "infinity"])


if __name__ == "__main__":
    main()
