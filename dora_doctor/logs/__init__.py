"""Reading dora's logs: the envelopes its lines come in, the table of message patterns, and
finding and scanning log files of any size."""
