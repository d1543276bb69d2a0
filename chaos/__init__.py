"""``python -m chaos``: random faults on a three-node hacore cluster, judged by issue 7's
invariants (``chaos.run``, ``chaos.invariants``). ``make chaos`` runs it for 10 minutes."""
