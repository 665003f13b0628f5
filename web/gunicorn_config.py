"""gunicorn's settings for the web process: `gunicorn -c python:web.gunicorn_config
'web:create_app()'` (the Procfile's `web`). Command-line flags and `GUNICORN_CMD_ARGS` still
override any of them; gunicorn itself binds to `$PORT` where a platform sets it.

Sync workers, a few per core: each answers one request at a time, and Twilio's webhooks are
short writes (see bench/README.md). The app is built once, in the master, and each worker is a
fork of it: a worker replaced after `max_requests` starts in milliseconds instead of importing
and building the app again (0.65 s of a core, measured: a third of a millisecond added to each
of its 2 000 requests). `/metrics` adds up what every worker process counted
through prometheus_client's multiprocess mode, which needs `PROMETHEUS_MULTIPROC_DIR` set
before any worker starts, and emptied at each start: set here, in the master, before it forks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from scheduler.collector import freeze_loaded

_CORES = os.cpu_count() or 1

workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * _CORES + 1, 9))
worker_class = "sync"
preload_app = True  # `create_app` leaves no database connection open to be shared by the forks
timeout = 30  # a request still running after this is stopped, and its worker replaced
graceful_timeout = 30  # on SIGTERM, requests in progress have this long to finish
keepalive = 5  # seconds a proxy's idle connection is kept (nginx, a platform's router)
max_requests = 2000  # each worker is replaced after this many requests (memory stays flat)
max_requests_jitter = 200  # not all at once
errorlog = "-"

_OWN_DIRECTORY = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_DIRECTORY:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="postventa-metrics-")


def on_starting(_server: Any) -> None:
    """Counts left by an earlier run would be added to this one's: the directory starts empty."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))


def child_exit(_server: Any, worker: Any) -> None:
    """A worker process that ended (replaced, or killed) leaves its counts; its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(_server: Any) -> None:
    if _OWN_DIRECTORY:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def pre_fork(_server: Any, _worker: Any) -> None:
    """The app's objects, built in the master, are frozen before each fork: a worker's garbage
    collections then never walk them (a full one went through every object of the app) nor
    write to their pages, which stay shared with the master."""
    freeze_loaded()
