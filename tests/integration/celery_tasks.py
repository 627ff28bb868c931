"""The Celery app of the Celery end-to-end test (the worker imports it by
`-A celery_tasks` with tests/integration on its path). Broker and result
backend are cairn, at CAIRN_CELERY_URL."""
import os
import time

from celery import Celery

URL = os.environ.get("CAIRN_CELERY_URL", "redis://127.0.0.1:6380/0")
app = Celery("cairn_celery_test", broker=URL, backend=URL)
app.conf.update(
    task_acks_late=True,  # a task taken by a worker that dies is delivered again
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"socket_timeout": 20, "socket_connect_timeout": 5},
    redis_socket_timeout=20,
    result_expires=3600,
)


@app.task
def add(x, y):
    time.sleep(0.02)
    return x + y


@app.task
def total(values):
    return sum(values)
