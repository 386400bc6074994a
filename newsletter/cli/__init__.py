"""The audience side's commands: `digest` (send, status, retry, preview) in `digest`, `subscribers` (add, list,
import, export, remove) and `bounces` (process) in `readers`. `service.py` registers their groups; nothing else
imports them (an import-linter contract)."""
