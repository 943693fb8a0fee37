# Copyright (c) 2026 lorawan.tts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Set the tag of services' images in compose files, changing no other byte.

ruamel.yaml parses a file into nodes that know where they start and end in the
text; the tag is then patched in the original text at that place. Nothing is ever
dumped back as YAML, so comments, quoting, indentation, flow style, anchors, line
endings and a missing final newline stay exactly as they were.

The functions raise ``ComposeFileError`` with a message that says what failed,
where (file and line) and what to do; nothing is written before every check passed.
"""

from __future__ import annotations

import os
import platform
import re
import stat
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from ansible.module_utils.basic import missing_required_lib

try:
    from ruamel.yaml import YAML
    from ruamel.yaml import version_info as ruamel_yaml_version_info
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
except ImportError:
    RUAMEL_YAML_VERSION: Optional[Tuple[int, ...]] = None
    RUAMEL_YAML_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    RUAMEL_YAML_VERSION = tuple(ruamel_yaml_version_info)
    RUAMEL_YAML_IMPORT_ERROR = None

# YAML().compose(), which gives the nodes with their places in the text, came with ruamel.yaml 0.17.
RUAMEL_YAML_MINIMUM = (0, 17)
RUAMEL_YAML_INSTALL = (
    "install the package python3-ruamel.yaml (Debian 12, Ubuntu 22.04 and later; older releases ship an older one) "
    "or pip install 'ruamel.yaml>=0.17' for that Python"
)

# The names docker compose looks for, in its order of preference.
DEFAULT_COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
DEFAULT_OVERRIDE_FILES = (
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
)
ENV_FILE_NAME = ".env"

# Docker's grammar for a tag.
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MERGE_TAG = "tag:yaml.org,2002:merge"
NULL_TAG = "tag:yaml.org,2002:null"
# How a compose variable may give the whole tag: $VAR, ${VAR}, ${VAR:-default},
# ${VAR-default}, ${VAR:?error}, ${VAR?error}. ${VAR:+alternative} is not one of them.
TAG_VARIABLE_PATTERN = re.compile(
    r"\$(?:(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<word>.*))?\})",
    re.DOTALL,
)
VARIABLE_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MASK_CHARACTER = "v"


class ComposeFileError(Exception):
    """A compose file can't be changed as asked; the message says why, where and what to do."""


def ruamel_yaml_problem() -> Optional[str]:
    """Why this Python can't edit compose files, naming the package to install; None when it can."""
    purpose = "to set image tags in compose files without changing their other bytes"
    if RUAMEL_YAML_VERSION is None:
        return missing_required_lib("ruamel.yaml", reason="%s: %s" % (purpose, RUAMEL_YAML_INSTALL))
    if RUAMEL_YAML_VERSION < RUAMEL_YAML_MINIMUM:
        return "ruamel.yaml %s on %s's Python %s is too old: lorawan.tts needs 0.17 or later %s; %s." % (
            ".".join(str(part) for part in RUAMEL_YAML_VERSION),
            platform.node(),
            sys.executable,
            purpose,
            RUAMEL_YAML_INSTALL,
        )
    return None


# ---------------------------------------------------------------------------
# Tags and image references. The other modules read image references with parse_image too;
# it needs no ruamel.yaml, so they import this file without it.


def validate_tag(tag: str) -> None:
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
        raise ComposeFileError(
            f"tag {tag!r} is not a valid Docker image tag: a tag is 1 to 128 characters, letters, digits, "
            "'_', '.' and '-', and does not start with '.' or '-' (for example 3.32.0 or 3.32)"
        )


@dataclass(frozen=True)
class Variable:
    """A compose variable reference (``$VAR``, ``${VAR...}``) inside an image string."""

    start: int
    end: int
    text: str

    @property
    def match(self):
        return TAG_VARIABLE_PATTERN.fullmatch(self.text)


@dataclass(frozen=True)
class ImageReference:
    """Where the parts of an image string are: ``name[:tag][@digest]``, as index ranges."""

    image: str
    name_end: int
    tag_span: Optional[Tuple[int, int]]
    digest_span: Optional[Tuple[int, int]]
    variables: Tuple[Variable, ...]

    @property
    def repository(self) -> str:
        """The name without tag and digest, registry host included (localhost:5000/thethingsnetwork/lorawan-stack)."""
        return self.image[: self.name_end]

    @property
    def tag(self) -> Optional[str]:
        return None if self.tag_span is None else self.image[self.tag_span[0] : self.tag_span[1]]

    @property
    def digest(self) -> Optional[str]:
        return None if self.digest_span is None else self.image[self.digest_span[0] : self.digest_span[1]]

    def variables_within(self, start: int, end: int) -> List[Variable]:
        return [variable for variable in self.variables if variable.start < end and variable.end > start]

    def tag_variable(self) -> Optional[Variable]:
        """The variable that is the whole tag, if one is."""
        if self.tag_span is None:
            return None
        inside = self.variables_within(*self.tag_span)
        if len(inside) == 1 and (inside[0].start, inside[0].end) == self.tag_span:
            return inside[0]
        return None


def find_variables(image: str) -> List[Variable]:
    """Compose variable references in an image string; ``$$`` is a literal dollar sign."""
    variables = []
    index = 0
    while index < len(image):
        if image[index] != "$":
            index += 1
            continue
        if image.startswith("$$", index):
            index += 2
            continue
        end = variable_end(image, index)
        variables.append(Variable(index, end, image[index:end]))
        index = end
    return variables


def variable_end(image: str, start: int) -> int:
    """The index after the variable reference that starts at ``start`` (a ``$``)."""
    if image.startswith("${", start):
        depth = 0
        for index in range(start + 1, len(image)):
            if image[index] == "{":
                depth += 1
            elif image[index] == "}":
                depth -= 1
                if depth == 0:
                    return index + 1
        raise ComposeFileError(f"image {image!r} has a '${{' with no closing '}}'")
    match = VARIABLE_NAME_PATTERN.match(image, start + 1)
    return match.end() if match else start + 1


def parse_image(image: str) -> ImageReference:
    """Split ``[registry[:port]/]path/name[:tag][@digest]``, treating variables as opaque.

    The tag is after the last ``:`` that follows the last ``/``, so a registry's port is
    never taken for a tag; variables (whose defaults may hold ``:`` and ``/``) are masked first.
    """
    variables = find_variables(image)
    masked = list(image)
    for variable in variables:
        masked[variable.start : variable.end] = MASK_CHARACTER * (variable.end - variable.start)
    masked_image = "".join(masked)
    at = masked_image.find("@")
    reference_end = len(image) if at < 0 else at
    digest_span = None if at < 0 else (at + 1, len(image))
    last_slash = masked_image.rfind("/", 0, reference_end)
    colon = masked_image.rfind(":", last_slash + 1, reference_end)
    if colon < 0:
        return ImageReference(image, reference_end, None, digest_span, tuple(variables))
    return ImageReference(image, colon, (colon + 1, reference_end), digest_span, tuple(variables))


def image_with_tag(reference: ImageReference, tag: str) -> str:
    return reference.repository + ":" + tag


def image_registry(repository: str) -> str:
    """The registry host of a repository: its first component when that names a host, else docker.io."""
    first = repository.split("/", 1)[0]
    if "/" in repository and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


# ---------------------------------------------------------------------------
# Reading compose files


@dataclass
class ComposeDocument:
    path: str
    text: str
    root: object  # a ruamel.yaml MappingNode, or None for an empty file


@dataclass(frozen=True)
class ImageSite:
    """Where a service's image string is written in a file's text."""

    service: str
    path: str
    image: str
    start: int  # index of the image string's first character in the text
    line: int  # 1-based, for messages
    column: int

    @property
    def where(self) -> str:
        return f"{self.path}, line {self.line}"


def read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ComposeFileError(f"can't read {path}: {error.strerror}; check the path and its permissions") from None
    try:
        # No newline translation: CRLF and a missing final newline must survive.
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ComposeFileError(
            f"{path} is not UTF-8 (byte {error.start}): compose files are UTF-8; convert it and run again"
        ) from None


def load_compose(path: str) -> ComposeDocument:
    text = read_text(path)
    try:
        root = YAML(typ="rt").compose(text)
    except MarkedYAMLError as error:
        raise ComposeFileError(yaml_error_message(path, error)) from None
    except YAMLError as error:
        raise ComposeFileError(
            f"{path} is not valid YAML: {error}; fix it (docker compose config shows it too)"
        ) from None
    if root is not None and not isinstance(root, MappingNode):
        raise ComposeFileError(f"{path} is not a compose file: its top level is not a mapping (line {line_of(root)})")
    return ComposeDocument(path, text, root)


def yaml_error_message(path: str, error) -> str:
    mark = error.problem_mark or error.context_mark
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = " ".join(part for part in (error.context, error.problem) if part) or "syntax error"
    return f"{path} is not valid YAML{where}: {problem}; fix the file (docker compose config shows the same error)"


def line_of(node) -> int:
    return node.start_mark.line + 1


def mapping_lookup(node, key: str, path: str):
    """The value of ``key`` in a mapping node, following YAML merge keys (``<<: *anchor``).

    The mapping's own keys win over merged ones, and earlier merged mappings over later ones.
    """
    own = [value for key_node, value in node.value if is_key(key_node, key)]
    if len(own) > 1:
        raise ComposeFileError(
            f"{path}, line {line_of(node)}: key {key!r} appears {len(own)} times in the same mapping; "
            "keep one (docker compose rejects duplicate keys too)"
        )
    if own:
        return own[0]
    for source in merge_sources(node):
        value = mapping_lookup(source, key, path)
        if value is not None:
            return value
    return None


def mapping_keys(node) -> List[str]:
    keys = [key_node.value for key_node, dummy in node.value if is_plain_key(key_node)]
    for source in merge_sources(node):
        keys.extend(key for key in mapping_keys(source) if key not in keys)
    return keys


def merge_sources(node) -> List[object]:
    sources = []
    for key_node, value in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag == MERGE_TAG:
            values = value.value if isinstance(value, SequenceNode) else [value]
            sources.extend(source for source in values if isinstance(source, MappingNode))
    return sources


def is_plain_key(key_node) -> bool:
    return isinstance(key_node, ScalarNode) and key_node.tag != MERGE_TAG


def is_key(key_node, key: str) -> bool:
    return is_plain_key(key_node) and key_node.value == key


def services_node(document: ComposeDocument):
    if document.root is None:
        return None
    services = mapping_lookup(document.root, "services", document.path)
    if services is None or (isinstance(services, ScalarNode) and services.tag == NULL_TAG):
        return None
    if not isinstance(services, MappingNode):
        raise ComposeFileError(f"{document.path}, line {line_of(services)}: 'services' is not a mapping of services")
    return services


def service_names(document: ComposeDocument) -> List[str]:
    services = services_node(document)
    return [] if services is None else mapping_keys(services)


def image_site(document: ComposeDocument, service: str) -> Optional[ImageSite]:
    """Where ``services.<service>.image`` is written in this file, or None if it isn't."""
    services = services_node(document)
    definition = None if services is None else mapping_lookup(services, service, document.path)
    if definition is None or not isinstance(definition, MappingNode):
        return None
    node = mapping_lookup(definition, "image", document.path)
    if node is None:
        return None
    if not isinstance(node, ScalarNode) or node.tag == NULL_TAG:
        raise ComposeFileError(
            f"{document.path}, line {line_of(node)}: the image of service {service!r} is not a string; "
            "write it as image: repository:tag"
        )
    image = node.value.strip()
    start = image_start(document, node, image)
    line_start = document.text.rfind("\n", 0, start) + 1
    return ImageSite(
        service, document.path, image, start, document.text.count("\n", 0, start) + 1, start - line_start + 1
    )


def image_start(document: ComposeDocument, node, image: str) -> int:
    """Index in the text of the image string's first character.

    The node's range may hold an anchor, a YAML tag, quotes or a block scalar's
    indicator; the image itself is written last, literally, unless it uses escapes
    or spans lines, which this refuses rather than guess.
    """
    raw = document.text[node.start_mark.index : node.end_mark.index]
    offset = raw.rfind(image)
    literal = offset >= 0 and raw[offset + len(image) :].strip(" \t\r\n\"'") == ""
    if not literal or "\n" in image:
        raise ComposeFileError(
            f"{document.path}, line {line_of(node)}: the image {node.value!r} is not written literally "
            "(escape sequences or several lines); write it on one line, plain or quoted, and run again"
        )
    return node.start_mark.index + offset


# ---------------------------------------------------------------------------
# Which files


def compose_files(project_src: Optional[str], files: Optional[List[str]], path: Optional[str]) -> List[str]:
    """The compose files in order, as docker compose would read them."""
    if path is not None:
        if not os.path.isfile(path):
            raise ComposeFileError(f"path {path} is not a file: point it at the compose file")
        return [path]
    if project_src is None or not os.path.isdir(project_src):
        raise ComposeFileError(f"project_src {project_src} is not a directory: point it at the deployment's directory")
    if files:
        chosen = [os.path.join(project_src, name) for name in files]
        missing = [name for name in chosen if not os.path.isfile(name)]
        if missing:
            raise ComposeFileError(f"compose file(s) {', '.join(missing)} not found: fix the files option")
        return chosen
    main = first_existing(project_src, DEFAULT_COMPOSE_FILES)
    if main is None:
        raise ComposeFileError(
            f"no compose file in {project_src}: looked for {', '.join(DEFAULT_COMPOSE_FILES)}; "
            "name the file with the files or path option"
        )
    override = first_existing(project_src, DEFAULT_OVERRIDE_FILES)
    return [main] if override is None else [main, override]


def first_existing(directory: str, names) -> Optional[str]:
    for name in names:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def effective_image_sites(documents: List[ComposeDocument], services: List[str]) -> List[ImageSite]:
    """For each service, where its effective image is set: the last file that sets it."""
    sites = []
    for service in services:
        defined = [document for document in documents if service in service_names(document)]
        if not defined:
            known = sorted({name for document in documents for name in service_names(document)})
            raise ComposeFileError(
                f"service {service!r} is not defined in {', '.join(d.path for d in documents)}; "
                f"the services there are: {', '.join(known) or '(none)'}"
            )
        found = [site for site in (image_site(document, service) for document in documents) if site is not None]
        if not found:
            raise ComposeFileError(
                f"service {service!r} has no image in {', '.join(d.path for d in defined)} "
                "(it is built with build: or inherits with extends:); only services that name an image "
                "can have their tag set"
            )
        sites.append(found[-1])
    return sites


# ---------------------------------------------------------------------------
# The .env file, for tags that come from a compose variable


@dataclass(frozen=True)
class EnvAssignment:
    path: str
    name: str
    value: str
    start: int  # index of the value's first character (inside quotes, if quoted)
    line: int


def env_file_path(project_dir: str) -> Optional[str]:
    """The project's .env file; the TTS docs keep data in a .env/ directory, which is no env file."""
    candidate = os.path.join(project_dir, ENV_FILE_NAME)
    return candidate if os.path.isfile(candidate) else None


def find_env_assignment(path: str, text: str, name: str) -> EnvAssignment:
    definitions = list(
        re.finditer(r"^[ \t]*(?:export[ \t]+)?" + re.escape(name) + r"[ \t]*=[ \t]*(?P<value>[^\r\n]*)", text, re.M)
    )
    if len(definitions) != 1:
        lines = ", ".join(str(text.count("\n", 0, match.start()) + 1) for match in definitions)
        state = "is not defined" if not definitions else f"is defined {len(definitions)} times (lines {lines})"
        raise ComposeFileError(
            f"{name} {state} in {path}, so which value to change is not clear; "
            f"define {name} exactly once there, or write the tag in the compose file"
        )
    match = definitions[0]
    value, offset = env_value(match.group("value"), path, name)
    line = text.count("\n", 0, match.start()) + 1
    return EnvAssignment(path, name, value, match.start("value") + offset, line)


def env_value(raw: str, path: str, name: str) -> Tuple[str, int]:
    """The value of ``NAME=raw`` and its offset in ``raw``: quoted, or up to a `` #`` comment."""
    if raw[:1] in ("'", '"'):
        end = raw.find(raw[0], 1)
        if end < 0:
            raise ComposeFileError(f"{path}: the value of {name} has no closing quote; fix the file")
        value, offset = raw[1:end], 1
    else:
        value, offset = re.split(r"[ \t]+#", raw, maxsplit=1)[0].rstrip(" \t"), 0
    if "$" in value:
        raise ComposeFileError(
            f"{path}: {name}={value} refers to another variable; write the tag there plainly, or change it by hand"
        )
    return value, offset


# ---------------------------------------------------------------------------
# Planning the change


@dataclass(frozen=True)
class TextEdit:
    path: str
    start: int
    end: int
    replacement: str


@dataclass
class TagChange:
    """What setting the tag means: the edits, and what the services had and will have."""

    previous: Dict[str, Dict[str, Optional[str]]] = field(default_factory=dict)
    image: Dict[str, str] = field(default_factory=dict)
    edits: List[TextEdit] = field(default_factory=list)
    texts: Dict[str, str] = field(default_factory=dict)  # path -> text before

    @property
    def changed(self) -> bool:
        return any(self.after(path) != text for path, text in self.texts.items())

    @property
    def changed_files(self) -> List[str]:
        return [path for path, text in self.texts.items() if self.after(path) != text]

    def after(self, path: str) -> str:
        return apply_edits(self.texts[path], [edit for edit in self.edits if edit.path == path])

    def diff(self) -> List[Dict[str, str]]:
        return [
            {"before": text, "after": self.after(path), "before_header": path, "after_header": path}
            for path, text in self.texts.items()
        ]

    def diff_result(self):
        """The module result's diff: the changed files (or the first file when none changes), one dict for one."""
        diffs = [diff for diff in self.diff() if diff["before"] != diff["after"]] or self.diff()[:1]
        return diffs[0] if len(diffs) == 1 else diffs

    def add_edit(self, edit: TextEdit) -> None:
        if edit not in self.edits:  # an anchored image shared by several services is edited once
            self.edits.append(edit)


def apply_edits(text: str, edits: List[TextEdit]) -> str:
    for edit in sorted(edits, key=lambda item: item.start, reverse=True):
        text = text[: edit.start] + edit.replacement + text[edit.end :]
    return text


def plan_tag_change(
    files: List[str],
    services: List[str],
    tag: str,
    replace_digest: bool = False,
    update_env_file: bool = False,
    project_dir: Optional[str] = None,
    pins: Optional[Dict[str, str]] = None,
) -> TagChange:
    """Everything setting ``tag`` on services (and each tag of pins, service -> tag, on its service) would change,
    checked; nothing is written."""
    if not services:
        raise ComposeFileError("services is empty: name at least one service, for example stack")
    groups = [(list(dict.fromkeys(services)), tag)] + [([service], pin) for service, pin in (pins or {}).items()]
    for dummy_group, group_tag in groups:
        validate_tag(group_tag)
    documents = [load_compose(path) for path in files]
    change = TagChange()
    for group, group_tag in groups:
        for site in effective_image_sites(documents, group):
            change.texts.setdefault(site.path, next(d.text for d in documents if d.path == site.path))
            reference = parse_image(site.image)
            variable = reference.tag_variable()
            if variable is not None:
                plan_env_change(
                    change,
                    site,
                    reference,
                    variable,
                    group_tag,
                    update_env_file,
                    project_dir or os.path.dirname(files[0]),
                )
            else:
                plan_image_change(change, site, reference, group_tag, replace_digest)
    return change


def plan_image_change(
    change: TagChange, site: ImageSite, reference: ImageReference, tag: str, replace_digest: bool
) -> None:
    check_literal_name(site, reference)
    if reference.tag_span is not None and reference.variables_within(*reference.tag_span):
        raise ComposeFileError(
            f"{site.where}: the tag of {site.image!r} (service {site.service}) mixes text and compose variables; "
            "write it as one variable or a plain tag"
        )
    change.previous[site.service] = {"image": site.image, "tag": reference.tag, "file": site.path, "line": site.line}
    if reference.digest_span is not None:
        if not replace_digest:
            raise ComposeFileError(
                f"{site.where}: the image of service {site.service} is pinned by digest ({site.image}); "
                "set replace_digest: true to replace the digest with the tag"
            )
        start, end = reference.name_end, len(site.image)
    elif reference.tag_span is not None:
        start, end = reference.tag_span[0] - 1, reference.tag_span[1]
    else:
        start = end = reference.name_end
    change.image[site.service] = image_with_tag(reference, tag)
    change.add_edit(TextEdit(site.path, site.start + start, site.start + end, ":" + tag))


def check_literal_name(site: ImageSite, reference: ImageReference) -> None:
    """Refuse an image whose last path part comes from a variable and has no tag: it may hold one."""
    if reference.tag_span is not None:
        return
    last_part_start = site.image.rfind("/", 0, reference.name_end) + 1
    if reference.variables_within(last_part_start, reference.name_end):
        raise ComposeFileError(
            f"{site.where}: the image {site.image!r} of service {site.service} comes from a compose variable, "
            "which may hold a tag; write the image as repository:tag (the tag may be a variable) and run again"
        )


def plan_env_change(
    change: TagChange,
    site: ImageSite,
    reference: ImageReference,
    variable: Variable,
    tag: str,
    update_env_file: bool,
    project_dir: str,
) -> None:
    match = variable.match
    name = (match.group("bare") or match.group("name")) if match else None
    if name is None:
        raise ComposeFileError(
            f"{site.where}: the tag of {site.image!r} (service {site.service}) is {variable.text}, "
            "whose value can't be predicted; write the tag plainly or as ${VAR} / ${VAR:-default}"
        )
    if reference.digest_span is not None:
        raise ComposeFileError(
            f"{site.where}: the image of service {site.service} is pinned by digest ({site.image}); "
            "remove the digest by hand, the tag comes from a variable"
        )
    if not update_env_file:
        raise ComposeFileError(
            f"{site.where}: the tag of service {site.service} comes from the compose variable {name} "
            f"({site.image}); set update_env_file: true to change {name} in the project's .env file, "
            "or change the variable where you set it"
        )
    env_path = env_file_path(project_dir)
    if env_path is None:
        raise ComposeFileError(
            f"{site.where}: the tag of service {site.service} comes from {name}, and {project_dir} has no .env "
            f"file that defines it; set {name} where you define it, or write the tag in the compose file"
        )
    text = change.texts.setdefault(env_path, read_text(env_path))
    assignment = find_env_assignment(env_path, text, name)
    change.previous[site.service] = {
        "image": image_with_tag(reference, assignment.value),
        "tag": assignment.value,
        "file": env_path,
        "line": assignment.line,
    }
    change.image[site.service] = image_with_tag(reference, tag)
    change.add_edit(TextEdit(env_path, assignment.start, assignment.start + len(assignment.value), tag))


# ---------------------------------------------------------------------------
# Writing


def write_atomically(path: str, text: str) -> None:
    """Replace the file's content in one step, keeping its mode and owner; a symlink stays a symlink."""
    target = os.path.realpath(path)
    status = os.stat(target)
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(status.st_mode))
        keep_owner(temporary, status)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def keep_owner(path: str, status: os.stat_result) -> None:
    mine = os.stat(path)
    if (mine.st_uid, mine.st_gid) == (status.st_uid, status.st_gid):
        return
    try:
        os.chown(path, status.st_uid, status.st_gid)
    except PermissionError:
        if os.geteuid() == 0:
            raise
        # Not root: the file becomes ours, as with any editor; root keeps the owner.


def commit(change: TagChange, backup: Optional[Callable[[str], str]] = None) -> Dict[str, str]:
    """Back up, then write every changed file; returns path -> backup file.

    If a write fails, the files already written get their old content back.
    """
    paths = change.changed_files
    backups = {path: backup(path) for path in paths} if backup is not None else {}
    written = []
    try:
        for path in paths:
            write_atomically(path, change.after(path))
            written.append(path)
    except OSError as error:
        for path in written:
            write_atomically(path, change.texts[path])
        raise ComposeFileError(
            f"can't write {error.filename or 'a compose file'}: {error.strerror}; nothing was changed; "
            "check the directory's permissions and free space"
        ) from None
    return backups
