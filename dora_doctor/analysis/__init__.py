"""Pure functions from recordings and log events to a diagnosis: the shutdown timeline, what
happened to each node and why, grace suggestions, post-mortems. Never talks to a process."""
