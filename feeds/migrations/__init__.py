"""The content side's Alembic branch ("feeds") in `versions/`, and in `legacy/` the single history (0001..0011) that
databases made before each side owned its tables carry; `feeds.db` explains how those are brought over."""
