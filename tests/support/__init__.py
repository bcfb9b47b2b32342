"""Test infrastructure: real servers in subprocesses, Node clients, CI rules."""
