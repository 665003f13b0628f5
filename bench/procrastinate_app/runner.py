"""procrastinate's side of bench/job_queues.py, run by the Python of procrastinate's own
virtualenv (requirements.txt beside this file), never the project's.

    python runner.py defer CONNINFO JOBS          # the schema, then JOBS jobs in one batch
    python runner.py work CONNINFO CONCURRENCY    # "ready", waits for a line on stdin, then works
                                                  # until the queue is empty (wait=False); prints
                                                  # {"done": jobs, "ended": monotonic seconds}

The task INSERTs one row into bench_done (made by bench/job_queues.py) through the app's own
connection pool, as a task with `pass_context` would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

import procrastinate
from procrastinate.types import JSONDict

# Its warning about an app made in `__main__` is for the CLI, which would import it a second
# time; this runner hands its app to the worker itself.
logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)


def make_app(conninfo: str, concurrency: int, done: list[int]) -> procrastinate.App:
    """The app and its one task, "store"; each job it runs is counted in `done`."""
    # Room for every job in flight, the worker's own queries and the spare the pool keeps.
    connector = procrastinate.PsycopgConnector(conninfo=conninfo, max_size=concurrency + 4)
    app = procrastinate.App(connector=connector)

    @app.task(name="store", pass_context=True)
    async def store(context: procrastinate.JobContext, n: int) -> None:
        await context.app.connector.execute_query_async(
            "INSERT INTO bench_done (job) VALUES (%(n)s)", n=n
        )
        done.append(n)

    return app


async def defer(conninfo: str, jobs: int) -> None:
    app = make_app(conninfo, 1, [])
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        arguments: list[JSONDict] = [{"n": n} for n in range(jobs)]
        await app.tasks["store"].batch_defer_async(*arguments)


async def work(conninfo: str, concurrency: int) -> None:
    done: list[int] = []
    app = make_app(conninfo, concurrency, done)
    async with app.open_async():
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await app.run_worker_async(
            wait=False,  # stop when a fetch finds no job
            concurrency=concurrency,
            listen_notify=False,  # nothing is deferred while it runs
            install_signal_handlers=False,
        )
        ended = time.monotonic()
    print(json.dumps({"done": len(done), "ended": ended}), flush=True)


def main() -> None:
    command, conninfo, number = sys.argv[1:4]
    asyncio.run(defer(conninfo, int(number)) if command == "defer" else work(conninfo, int(number)))


if __name__ == "__main__":
    main()
