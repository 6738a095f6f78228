"""Backups you can prove: create, validate against the manifest, restore-verify drills,
and rollback restores, on SQLite and PostgreSQL."""
