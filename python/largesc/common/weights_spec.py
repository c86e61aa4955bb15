#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The weight spec: one parser for every model's weights argument (the Mimi
codec, the recovery LM's checkpoint, the EnCodec baseline).

A spec is a string (or a Path):

  "random" / "random:SEED"   an UNTRAINED model of the real architecture, seeded
                             (plumbing only, never speech quality)
  "hf", "hf:OWNER/REPO[/FILE]", "hf://OWNER/REPO[/FILE]"
                             a Hugging Face hub checkpoint, for models that have
                             one (the caller passes its default repo and file)
  anything else              a local file ("file://" and "~" allowed)

parse_weights_spec returns a WeightsSpec: a (kind, value) named tuple with kind
"random" (value: the seed), "hub" (value: (repo, filename)) or "file" (value:
a Path). What a kind means for loading stays with each model's loader.
"""

import os
from pathlib import Path
from typing import NamedTuple, Optional, Tuple, Union

RANDOM = "random"
HUB = "hub"
FILE = "file"


class WeightsSpecError(ValueError):
    """A spec that names no usable source (the message says what is allowed)."""


class WeightsSpec(NamedTuple):
    kind: str                                  # RANDOM, HUB or FILE
    value: Union[int, Tuple[str, str], Path]   # seed, (repo, filename) or path

    @property
    def untrained(self) -> bool:
        return self.kind == RANDOM


def parse_random(spec: str) -> Optional[int]:
    """The seed of a "random" / "random:SEED" spec, None for any other spec."""
    s = str(spec).strip()
    if s != RANDOM and not s.startswith(RANDOM + ":"):
        return None
    seed = s.split(":", 1)[1] if ":" in s else "0"
    try:
        return int(seed)
    except ValueError:
        raise WeightsSpecError(f"bad weight spec {spec!r}: seed must be an integer, e.g. 'random:3'") from None


def parse_weights_spec(spec: Union[str, Path], hub: Optional[Tuple[str, str]] = None) -> WeightsSpec:
    """Parses a spec. hub = (default repo, default file) for a model with a
    hub checkpoint; without it, "hf..." is an ordinary file name."""
    if spec is None:
        raise WeightsSpecError("no weight spec given: use " + ("'hf', " if hub else "")
                               + "'random[:seed]' or a file path")
    if isinstance(spec, Path):
        return WeightsSpec(FILE, spec)
    seed = parse_random(spec)
    if seed is not None:
        return WeightsSpec(RANDOM, seed)
    s = str(spec).strip()
    if hub is not None:
        if s == "hf":
            return WeightsSpec(HUB, tuple(hub))
        if s.startswith("hf://") or s.startswith("hf:"):
            rest = s[5:] if s.startswith("hf://") else s[3:]
            parts = [p for p in rest.split("/") if p]
            if len(parts) < 2:
                raise WeightsSpecError(f"bad weight spec {spec!r}: expected 'hf:OWNER/REPO[/FILE]'")
            return WeightsSpec(HUB, (parts[0] + "/" + parts[1], "/".join(parts[2:]) or hub[1]))
    if s.startswith("file://"):
        s = s[len("file://"):]
    return WeightsSpec(FILE, Path(os.path.expanduser(s)))
