"""The recording: a versioned, append-only JSON Lines file, owned here once, so that a
shutdown can be analysed again long after the processes are gone.

``model`` (the Recording and what the reader skipped), ``codec`` (one checked encode/decode
per record type), ``writer``, ``reader`` and ``merge`` (reads through the reader, writes
through the writer)."""
