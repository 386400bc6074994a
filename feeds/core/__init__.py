"""The shared layer: what both sides of Gazette stand on, and nothing that knows either side.

    configuration loading and the environment overlay (`config`), the exception root (`errors`), the clock
    (`clock`), the database engine, column types and migration runner (`database`), the scheduler's lease and
    run log (`scheduling`), one background-loop class (`loops`), and the HTTP kit (`http`: admin auth, one
    error-to-status mapping, one conditional-GET function, rate limiting, problem details).

It imports nothing else of Gazette: an import-linter contract, run by `make test`, keeps it so. It lives inside
`feeds/` because the project's top level is fixed (`feeds/`, `newsletter/`, `templates/`, `service.py`) and `feeds` is
the lower of the two sides: `newsletter` may import `feeds`, never the reverse, so a layer both use can only sit here.
"""
