"""Alembic environment: runs the revisions of the folders `feeds.core.database.migrate()` names, on the engine it
hands over (in `config.attributes`; there is no alembic.ini).

SQLite cannot alter most of a table in place, so batch migrations copy it to a new table and drop the old one; with
foreign keys enforced, that DROP would cascade into every table that refers to it (dropping `subscribers` would
delete `deliveries`). Foreign keys are off while migrations run and checked once they are done.
"""

from alembic import context
from sqlalchemy import text

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    is_sqlite = connection.dialect.name == "sqlite"
    if is_sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside any transaction, or SQLite ignores it
    context.configure(connection=connection, render_as_batch=is_sqlite)
    with context.begin_transaction():
        context.run_migrations()
    if is_sqlite:
        broken = connection.execute(text("PRAGMA foreign_key_check")).all()
        if broken:
            raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    connection.commit()
