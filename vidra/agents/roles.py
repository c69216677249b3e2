"""The agent roles, named once: each has its own LoRA adapter on the shared base model.

The model layer only sees these as adapter names; what a role means lives in `vidra.agents`.
"""

from __future__ import annotations

__all__ = ["EPISODE_ROLES", "ROLES", "check_roles"]

ROLES: tuple[str, ...] = ("planner", "selector", "reasoner", "critic", "captioner")
"""Every role with an adapter. The first four act in episodes; the captioner writes the
captions of the video index (trained by SFT, outside episodes)."""
EPISODE_ROLES: tuple[str, ...] = ROLES[:4]


def check_roles(roles: object) -> list[str]:
    """``roles`` as a list, every name known; `InvalidInput` naming the unknown ones."""
    from vidra.errors import InvalidInput

    names = [str(r) for r in roles] if isinstance(roles, list | tuple | set) else [str(roles)]
    unknown = sorted(set(names) - set(ROLES))
    if unknown:
        raise InvalidInput(f"unknown roles {unknown}; choose from {list(ROLES)}")
    return names
