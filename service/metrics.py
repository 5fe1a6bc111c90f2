"""Prometheus metrics of every worker in one scrape, on the API's port (admin key) or a bind of their own.

Under `intake serve`, each worker writes its counters to files in a folder the server made for this
run (the Prometheus client's multiprocess mode); a scrape adds them all up, whichever worker (or the
separate listener in the supervising process) answers it. An app built directly, as tests do, counts
in its own registry.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

MULTIPROCESS_FOLDER_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_between_workers() -> None:
    """Before anything imports the Prometheus client: a fresh folder for this run's counters.

    A folder left by an earlier run would add its counts to this one's, so it is never reused.
    """
    folder = tempfile.mkdtemp(prefix="intake-metrics-")
    os.environ[MULTIPROCESS_FOLDER_VARIABLE] = folder
    supervisor = os.getpid()
    atexit.register(lambda: os.getpid() == supervisor and shutil.rmtree(folder, ignore_errors=True))


def exposition(own_registry) -> tuple[bytes, str]:
    """The text a scrape gets: every worker's counts when they share a folder, else this app's own."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    if os.environ.get(MULTIPROCESS_FOLDER_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(own_registry), CONTENT_TYPE_LATEST


def serve_metrics_separately(bind: str) -> None:
    """A listener of its own for the scraper (INTAKE_METRICS_BIND, host:port), in the supervising process."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    host, _, port = bind.rpartition(":")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=registry)
