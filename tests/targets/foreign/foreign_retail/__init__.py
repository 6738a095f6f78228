"""foreign_retail: a small ARIS3-like retail backend, written as a *foreign* target for aris3nb.

It plays a deployment of a different ARIS3 codebase: its own schema (merchants, outlets,
inventory units, consignments, tills, receipts, report exports), its own Alembic history,
its own HTTP contract and its own Python environment. Nothing here imports aris3nb.
"""

__version__ = "2.4.1"
SERVICE_NAME = "foreign"
