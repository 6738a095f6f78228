"""The ARIS3 contract aris3nb checks: the schema as SQLAlchemy models (``models``: tables,
the allowed status values, and the column types for money and UTC timestamps), and their
Alembic history, ``migrations/`` at the repository's top (shipped in the package; found through
``aris3nb.resources``, driven by ``aris3nb.migrate``), whose head the models are.

It holds no service code: the reference double (``aris3nb.reference``: app, seed, server)
implements this contract and imports it, never the other way round; library code reads the
contract from here and never imports the double.
"""
