"""The Alembic environment every side's migrations run in (env.py, script.py.mako): a package only so that it is installed."""
