"""The content side of Gazette: sources, fetching, parsing, the article store, view counting, feeds and partners.

Its domain modules sit on the shared layer (`feeds.core`), its edges are `feeds.http` and `feeds.cli`, and
`feeds.components` builds its object graph. `newsletter` may import this package; this package never imports
`newsletter`. The module table is in docs/architecture.md; the errors are in `feeds.errors`.
"""
