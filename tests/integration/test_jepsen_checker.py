"""The linearizability checker's own unit tests (tests/jepsen/test_checker.py),
collected here so that the README's test command runs them."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jepsen"))

from test_checker import *  # noqa: E402,F401,F403
