"""Benchmarks: failover, planned moves, footprint and scale of hacore, side by side with the real
Heartbeat 3.0.6 and keepalived 2.2.7, each in its own network namespaces (``python -m bench``).

Modules: ``profiles`` (the timings compared), ``keepalived`` (its configuration and process),
``peers`` (a two-node cluster of each system behind one interface), ``measure`` (what the
client saw, what crossed the wire, what the daemons cost, CPU load), ``hacore_log`` (event times
from hacore's own log), ``scenarios`` (the two-node scenarios), ``scale`` (hacore at 2 to 16
nodes), ``results`` (samples and summaries), ``report`` (table, JSON, plot).

Results go to ``bench/results/`` (git-ignored); ``docs/performance.md`` holds the latest figures.
"""
