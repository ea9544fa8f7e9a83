"""keys: canonical hashes of plain JSON values, and seeds derived from a trial's seed.

A trial's key and an artifact's identity are the hash of their sorted JSON; a machine path
never enters one. `derive_seed` gives every random draw of a trial its own stream, named by
its purpose, instead of hand-picked offsets such as `10_000 + seed` that can collide.
"""

from __future__ import annotations

import hashlib
import json

# Bumped whenever a stored trial record changes meaning; part of every trial key,
# so records of an older layout are never silently mixed with new ones.
RECORD_SCHEMA = 1


def canonical_json(identity) -> str:
    return json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)


def trial_key(identity: dict) -> str:
    """20 hex digits of the SHA-256 of the canonical JSON (also names artifacts)."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:20]


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose ("source_model", "outliers", ...) of the trial seeded `seed`:
    a 31-bit number from the hash of both, so two purposes never share a stream."""
    digest = hashlib.sha256(f"{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF
