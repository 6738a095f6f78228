"""The targets aris3nb judges: their profiles (``profile``, ``builtin/``, ``init``), their code
reached in their own interpreter (``code`` through the standalone ``probe``), their code revision
(``revision``), and the embedded default — the reference ARIS3 double, migrated, seeded and served
on loopback (``embedded``), the only place outside the reference package that starts it.
"""
