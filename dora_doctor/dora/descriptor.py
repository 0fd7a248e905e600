"""The little dora-doctor needs from a dataflow YAML file, and clear errors when it is bad.

dora validates the file itself when it starts it; this only reads the node ids up front so
that a typo is one line before anything is started, and rehearsals know how many node
processes to wait for.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from dora_doctor.errors import DoctorError

# A dataflow file is a few kilobytes; the biggest real one we know is under 100 KiB.
MAX_BYTES = 1024 * 1024
# Anchors and aliases share env blocks in real files: a handful. A billion-laughs bomb needs
# dozens, and each alias can stand for a whole tree, so the expanded size is bounded too:
# the values are walked (str(), json, yaml.dump) as trees, never as the shared graph.
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlTooBig(ValueError):
    """The text would expand past the limits above; ``str()`` says which, in words."""


def check_expansion(text: str, loader: Any = _LOADER) -> None:
    """Refuse YAML whose aliases would blow up, from its parse events alone: no document is
    built, so a 545-byte alias bomb is refused in milliseconds instead of taking 2 GB.

    Each anchored node's expanded size (scalars 1, collections 1 + their items) is known
    when its end event arrives, so an alias adds the size of what it stands for."""
    if "*" not in text:  # no alias without an asterisk: the common case costs nothing
        return
    sizes: Dict[str, int] = {}
    starts: List[Any] = []  # (anchor, count at its start) per open collection
    aliases = count = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YamlTooBig(f"it has more than {MAX_ALIASES} aliases (*name)")
            count += sizes.get(str(event.anchor), 1)
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            if event.anchor is not None:
                sizes[str(event.anchor)] = 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            starts.append((event.anchor, count))
            count += 1
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, start = starts.pop()
            if anchor is not None:
                sizes[str(anchor)] = count - start
        if count > MAX_EXPANDED_NODES:
            raise YamlTooBig(f"its aliases expand to more than {MAX_EXPANDED_NODES:,} values")


def load_yaml(text: str, loader: Any = _LOADER) -> Any:
    """``yaml.load`` with a safe ``loader`` (a SafeLoader or a subclass of one), after
    :func:`check_expansion`; raises :class:`YamlTooBig` or ``yaml.YAMLError``."""
    if len(text) > MAX_BYTES:
        raise YamlTooBig(f"it is larger than {MAX_BYTES // 1024} KiB")
    check_expansion(text, loader)
    return yaml.load(text, Loader=loader)  # noqa: S506 (always a SafeLoader or subclass)


def read_text(path: Path) -> str:
    """The file's text, at most :data:`MAX_BYTES`, or a one-line DoctorError: a FIFO, a
    device or a huge file is refused before it is read."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise DoctorError(f"{path} is a directory: give the dataflow's YAML file")
        if not stat.S_ISREG(info.st_mode):
            raise DoctorError(f"{path} is not a regular file: give the dataflow's YAML file")
        if info.st_size > MAX_BYTES:
            raise DoctorError(
                f"{path} is {info.st_size // 1024} KiB, larger than any dataflow file "
                f"({MAX_BYTES // 1024} KiB at most): is it the right file?"
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:  # it grew since stat()
            raise DoctorError(f"{path} is larger than {MAX_BYTES // 1024} KiB")
        return data.decode("utf-8")
    except FileNotFoundError as err:
        raise DoctorError(f"{path}: no such dataflow file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise DoctorError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from err


def load(path: Path) -> Any:
    """The dataflow file's YAML value, refusing what could exhaust memory; one-line
    DoctorError (exit 2) for every fault of the file."""
    text = read_text(path)
    try:
        return load_yaml(text)
    except YamlTooBig as err:
        raise DoctorError(f"{path} is refused: {err}: is it a dora dataflow?") from err
    except yaml.YAMLError as err:
        mark: Optional[Any] = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise DoctorError(f"{path} is not valid YAML{where}: fix it, then try again") from err


def node_ids(path: Path) -> List[str]:
    """Node ids of a dataflow file; a DoctorError (exit 2) that says what is wrong otherwise."""
    value = load(path)
    nodes = value.get("nodes") if isinstance(value, dict) else None
    if not isinstance(nodes, list) or not nodes:
        raise DoctorError(f"{path} has no `nodes:` list: is it a dora dataflow?")
    ids = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or not node.get("id"):
            raise DoctorError(f"{path}: node #{index + 1} has no `id`")
        if isinstance(node["id"], (dict, list)):
            raise DoctorError(f"{path}: node #{index + 1}'s `id` is not a name")
        ids.append(str(node["id"]))
    return ids


# dora's id for the operator of a node given with the singular `operator:` key
SINGLE_OPERATOR_ID = "op"
MAX_OPERATORS = 100
MAX_PATH_CHARS = 4096


def operator_files(config: Any, node_id: Optional[str] = None) -> Dict[str, str]:
    """Operator id → Python file of one runtime node, from what dora gave its process.

    ``config`` is dora's runtime config (``DORA_RUNTIME_CONFIG``: its ``operators`` list is
    exactly what the runtime runs) or a node config whose ``dataflow_descriptor`` lists the
    node (``DORA_NODE_CONFIG``, read for ``node_id``). Operators in another language, and
    values of the wrong shape (the environment is not to be trusted), are left out."""
    if not isinstance(config, dict):
        return {}
    operators = config.get("operators")
    if operators is None and node_id is not None:
        described = config.get("dataflow_descriptor")
        nodes = described.get("nodes") if isinstance(described, dict) else None
        for node in nodes if isinstance(nodes, list) else []:
            if isinstance(node, dict) and str(node.get("id")) == node_id:
                operators = node.get("operators")
                single = node.get("operator")
                if operators is None and isinstance(single, dict):
                    operators = [{"id": SINGLE_OPERATOR_ID, **single}]
                break
    found: Dict[str, str] = {}
    for operator in operators[:MAX_OPERATORS] if isinstance(operators, list) else []:
        if not isinstance(operator, dict):
            continue
        ident = operator.get("id", SINGLE_OPERATOR_ID)
        source = operator.get("python")
        if isinstance(source, dict):  # `python: {source: file.py, conda_env: …}`
            source = source.get("source")
        if isinstance(ident, (str, int)) and isinstance(source, str) and source:
            if len(source) <= MAX_PATH_CHARS and len(str(ident)) <= MAX_PATH_CHARS:
                found[str(ident)] = source
    return found
