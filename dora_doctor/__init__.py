"""dora-doctor: explain why Python nodes in dora-rs dataflows do not stop in time."""

__version__ = "0.1.0"
