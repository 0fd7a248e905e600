"""Everything that touches live processes: py-spy, per-thread CPU from /proc, local-variable
dumps, following dora's logs and the processes' exits, and the inspect and rehearsal sessions
that write recordings. Nothing here formats output."""
