"""The recording: a versioned, append-only JSON Lines file, owned here once (write, read,
merge), so that a shutdown can be analysed again long after the processes are gone."""
