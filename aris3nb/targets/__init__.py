"""The targets aris3nb judges. Today: the embedded default — the reference ARIS3 double,
migrated, seeded and served on loopback (``targets.embedded``), the only place outside the
reference package that starts it. The tooling's library code never imports the double.
"""
