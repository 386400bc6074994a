"""Alembic migrations of the one Gazette database (both packages' tables)."""
