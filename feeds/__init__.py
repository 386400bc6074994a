"""The content side of Gazette: sources, fetching, parsing, the article store, views and feeds.

    settings   TOML + environment -> Settings          parse      bytes -> RawEntry
    fetch      files and http(s), conditional GET      normalise  RawEntry -> Article (sanitised)
    db/store   tables, migrations, ArticleStore        ingest     fetch + parse + normalise + store
    render     FeedDoc -> RSS / Atom / JSON Feed       publish    which feeds, cached bytes
    core       the shared layer (see feeds.core)       web        feed routes, OPML, health
    views      view counting, signed redirects, ranking api        the admin API of this side
    partners   keys, licensing, embargo, usage         partner_web keyed partner feeds
    push       signed pushes to partners               cli        the commands of this side

Errors: see `feeds.errors` (FeedsError and its children).
"""

from .core.errors import ConfigError
from .errors import FeedsError, FetchError, ParseError, StoreError

__all__ = ["ConfigError", "FeedsError", "FetchError", "ParseError", "StoreError"]
