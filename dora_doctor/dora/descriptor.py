"""The little dora-doctor needs from a dataflow YAML file, and clear errors when it is bad.

dora validates the file itself when it starts it; this only reads the node ids up front so
that a typo is one line before anything is started, and rehearsals know how many node
processes to wait for.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import yaml

from dora_doctor.errors import DoctorError


def node_ids(path: Path) -> List[str]:
    """Node ids of a dataflow file; a DoctorError (exit 2) that says what is wrong otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise DoctorError(f"{path}: no such dataflow file") from err
    except IsADirectoryError as err:
        raise DoctorError(f"{path} is a directory: give the dataflow's YAML file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise DoctorError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from err
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise DoctorError(f"{path} is not valid YAML{where}: fix it, then try again") from err
    nodes = value.get("nodes") if isinstance(value, dict) else None
    if not isinstance(nodes, list) or not nodes:
        raise DoctorError(f"{path} has no `nodes:` list: is it a dora dataflow?")
    ids = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or not node.get("id"):
            raise DoctorError(f"{path}: node #{index + 1} has no `id`")
        ids.append(str(node["id"]))
    return ids
