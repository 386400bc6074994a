"""Jinja2 templates for web pages (pages/) and mails (email/).

A package only so that the templates install beside the code; `directory()` says where they are.
"""

from pathlib import Path


def directory() -> Path:
    return Path(__file__).resolve().parent
