"""The audience side of Gazette: subscribers and their consent, the subscription workflow, digest editions, mail
composition and delivery, bounces.

Its domain modules stand on `feeds` (the content side and the shared layer `feeds.core`), its edges are
`newsletter.http` and `newsletter.cli`, and `newsletter.components` builds the whole object graph. `feeds` never
imports this package. The module table is in docs/architecture.md; the errors are in `newsletter.errors`.
"""
