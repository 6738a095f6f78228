"""tests/targets/ holds foreign ARIS3-like targets that run under their *own* interpreters.

aris3nb's test session must not collect a target's smoke test as one of its own tests (it
would run under aris3nb's interpreter, from the wrong rootdir): the tests that use a target
live beside this file and run its smoke test with ``foreign_target.ensure_venv``.
"""

collect_ignore = ["foreign"]
