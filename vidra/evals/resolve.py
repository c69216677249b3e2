"""Finding a benchmark's files on disk: videos by candidate names, subtitles by video stem.

Direct paths are tried first; a miss falls back to an index of the folder tree built once
(so ``videos/data/x.mp4`` or ``video/plotQA/x.mp4`` layouts resolve too). It never decodes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SUBTITLE_EXTS", "VIDEO_EXTS", "FileFinder"]

VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".MP4", ".MKV")
SUBTITLE_EXTS = (".srt", ".vtt", ".json")


class FileFinder:
    """Find files under ``root`` by relative names or bare stems.

    Args:
        root: the folder to search; ``None`` finds nothing.
        exts: suffixes tried after a name without a match (in order).
    """

    def __init__(self, root: Path | None, exts: Iterable[str] = VIDEO_EXTS) -> None:
        self.root = root
        self.exts = tuple(exts)
        self._by_name: dict[str, Path] | None = None
        self._by_stem: dict[str, Path] = {}

    def find(self, *names: str) -> Path | None:
        """The first file matching one of ``names`` (relative paths or stems), else ``None``."""
        root = self.root
        if root is None:
            return None
        # then each name without its suffix ("x.mp4" -> "x", to find "x.srt" or "x.mkv")
        names = (*names, *(str(Path(n).with_suffix("")) for n in names if Path(n).suffix))
        for name in names:
            hit = self._direct(root, name)
            if hit is not None:
                return hit
        by_name = self._index(root)
        for name in names:
            base = Path(name).name
            hit = by_name.get(base)
            if hit is None:
                hit = next(
                    (by_name[base + e] for e in self.exts if base + e in by_name),
                    None,
                )
            if hit is None and Path(base).suffix in self.exts:
                hit = self._by_stem.get(Path(base).stem)
            if hit is not None:
                return hit
        return None

    def _direct(self, root: Path, name: str) -> Path | None:
        p = root / name
        if p.suffix and p.is_file():
            return p
        for ext in self.exts:
            q = p.with_name(p.name + ext)
            if q.is_file():
                return q
        return None

    def _index(self, root: Path) -> dict[str, Path]:
        if self._by_name is None:
            self._by_name = {}
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in sorted(filenames):
                    p = Path(dirpath) / f
                    self._by_name.setdefault(f, p)
                    if p.suffix in self.exts:
                        self._by_stem.setdefault(p.stem, p)
        return self._by_name
