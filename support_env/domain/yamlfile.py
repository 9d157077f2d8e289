"""`parse_yaml`: how the YAML data files are read.

It uses libyaml's parser when PyYAML was built with it (the wheels are), about
17 times faster than PyYAML's pure-Python one on these files, and PyYAML's own
otherwise. Both are safe loaders and read every data file alike (tested).
"""

from __future__ import annotations

from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=LOADER)  # noqa: S506  (a safe loader)
