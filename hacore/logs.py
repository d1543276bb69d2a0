"""Logging for the daemon: stderr (journald reads it), ``logfile``/``debugfile`` and syslog under
``logfacility``, as ha.cf says. Records go through a queue to a writer thread, so a slow disk or a
stuck syslog never delays the event loop, and with it the keepalives."""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys

from hacore.config.model import ClusterConfig

FORMAT = "%(asctime)s hacore[%(process)d]: %(levelname)s: %(message)s"
SYSLOG_FORMAT = "hacore[%(process)d]: %(levelname)s: %(message)s"


def setup(config: ClusterConfig | None, *, verbose: bool = False) -> logging.handlers.QueueListener:
    """Route the ``hacore`` logger through a queue; returns the started listener (stop it last)."""
    handlers: list[logging.Handler] = []
    formatter = logging.Formatter(FORMAT)
    level = logging.DEBUG if verbose or (config and config.debug) else logging.INFO

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(formatter)
    handlers.append(stderr)
    if config is not None:
        for path, file_level in ((config.logfile, logging.INFO), (config.debugfile, logging.DEBUG)):
            if path:
                try:
                    handler: logging.Handler = logging.FileHandler(path)
                except OSError as err:
                    print(f"hacore: cannot open log file {path}: {err.strerror}", file=sys.stderr)
                    continue
                handler.setLevel(file_level)
                handler.setFormatter(formatter)
                handlers.append(handler)
        facility = config.logfacility
        if facility and facility != "none" and os.path.exists("/dev/log"):
            code = logging.handlers.SysLogHandler.facility_names.get(facility)
            if code is not None:
                try:
                    syslog = logging.handlers.SysLogHandler("/dev/log", facility=code)
                    syslog.setFormatter(logging.Formatter(SYSLOG_FORMAT))
                    handlers.append(syslog)
                except OSError as err:
                    print(f"hacore: cannot reach syslog: {err.strerror}", file=sys.stderr)

    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger("hacore")
    root.handlers.clear()
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level)
    root.propagate = False
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    listener.start()
    return listener
