"""The scaling engine: pure decisions from signals and spec. No I/O, no clock of its own."""
