"""Talking to dora: its CLI, the facts that differ per release, finding a dataflow's nodes and
their processes and machines, reading dataflow files, and a private coordinator + daemon."""
