"""Evidence of a playbook run: the notebook runner (``runner``), the bundle with its digests,
hash chain and signature (``bundle``), the offline HTML pages and the runs index (``render``,
``index``), and the display helpers the notebooks call (``display``).
"""
