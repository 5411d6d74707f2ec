"""Simulated network: seeded random streams, the event queue, the link, NIC and transport model
and the discrete-event driver that feeds sans-I/O nodes. No wall clock, no ``ray``."""
