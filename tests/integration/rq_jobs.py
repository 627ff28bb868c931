"""Jobs for the RQ end-to-end test (imported by `rq worker -P tests/integration`)."""
import time


def double(i):
    time.sleep(0.02)
    return 2 * i
