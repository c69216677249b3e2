"""Phrase matching of index captions against search queries, shared by the store's ranking
(`vidra.storage.index`) and the selector's tools (`vidra.agents.search`), so both read a
query the same way. Pure functions on text; no SQL, no models.

A query lists alternatives separated by ``,`` or ``;`` ("red star, blue circle"); a caption
contains an alternative when it holds the alternative's words consecutively, as whole words.
"""

from __future__ import annotations

import re

__all__ = ["alternatives", "contains", "match_rank", "terms", "words"]

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (letters and digits)."""
    return _WORD.findall(text.lower())


def terms(query: str) -> list[str]:
    """The distinct words of ``query`` in order (at most 32)."""
    return list(dict.fromkeys(words(query)))[:32]


def alternatives(query: str) -> list[str]:
    """The alternatives ``query`` lists: its comma- or semicolon-separated parts, lower-cased,
    one space between words, without repeats."""
    parts = (" ".join(words(p)) for p in re.split(r"[,;]", query))
    return [p for p in dict.fromkeys(parts) if p]


def contains(caption: str, phrase: str) -> bool:
    """Whether ``caption`` holds ``phrase`` (already normalised) as consecutive whole words."""
    return f" {phrase} " in f" {' '.join(words(caption))} "


def match_rank(query: str, caption: str) -> tuple[int, int]:
    """How well ``caption`` matches ``query``: (alternatives of more than one word found
    whole, distinct query words found). A query listing alternatives ranks a clip showing one
    of them above one that merely shares words with several."""
    phrases = sum(1 for p in alternatives(query) if " " in p and contains(caption, p))
    return phrases, len(set(terms(query)) & set(words(caption)))
