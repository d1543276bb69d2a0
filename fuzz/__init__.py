"""Coverage-guided fuzzing of everything hacore reads from outside: datagrams (the wire decoder,
the envelope with a real key, membership behind it) and configuration files (ha.cf, authkeys,
haresources, cluster.toml). ``python -m fuzz --help``; the targets and their contracts are in
``fuzz/targets.py``. Nothing here is imported by hacore."""
