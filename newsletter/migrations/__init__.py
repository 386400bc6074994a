"""The audience side's Alembic branch ("newsletter"): its revisions are in `versions/`."""
