#!/usr/bin/env python3
"""Validates manifests against the generated JSON Schemas in crds/ with an independent
validator (Python's jsonschema), as an editor would. Usage: check-schema.py [--json] DIR [DIR...].

YAML is read as YAML 1.2 (core schema), as editors and meme-controller read it: `yes` is text,
`0755` is 755, `1_000` is text, a quoted "2" is a string; duplicate keys are an error.

Default: every memeit.pro document is checked, errors are printed; exit 0 when all are valid, 1
otherwise. With --json: every document of every *.yaml/*.yml file is judged (one that is not a
memeit.pro mapping is invalid) and a JSON list is printed, one record per document:
{"file", "line" (where the document starts), "status": "valid"|"invalid"|"yaml-error", "errors"}.
"""
import json
import pathlib
import re
import sys

import jsonschema
import yaml


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's implicit types and no duplicate keys."""

    def compose_document(self):
        # The DocumentStartEvent: the `---` line, or the first content of an implicit document.
        self.document_line = self.peek_event().start_mark.line + 1
        return super().compose_document()

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


Yaml12Loader.yaml_implicit_resolvers = {}
for tag, pattern, first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
]:
    Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))


def construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def construct_float(loader, node):
    text = loader.construct_scalar(node).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def construct_bool(loader, node):
    return loader.construct_scalar(node).lower() == "true"


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", construct_float)
Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", construct_bool)

root = pathlib.Path(__file__).resolve().parent.parent
schemas = {
    kind: json.loads((root / "crds" / f"{kind.lower()}.schema.json").read_text())
    for kind in ("Stack", "Deployment")
}


def documents(path):
    """(line, document) for each non-empty document; a YAML error ends the file."""
    loader = Yaml12Loader(path.read_bytes().decode("utf-8"))
    try:
        while loader.check_node():
            node = loader.get_node()
            line = loader.document_line
            empty = node is None or (isinstance(node, yaml.ScalarNode) and node.value == "" and node.style is None)
            document = loader.construct_document(node) if node is not None else None
            if not empty:
                yield line, document
    finally:
        loader.dispose()


def errors_of(document):
    if not isinstance(document, dict):
        return ["not a mapping"]
    validator = jsonschema.Draft202012Validator(schemas.get(document.get("kind"), {"not": {}}))
    out = []
    for error in validator.iter_errors(document):
        where = "/".join(str(p) for p in error.absolute_path)
        message = error.message if len(error.message) < 300 else error.message[:300] + "..."
        out.append(f"{where}: {message}")
    return out


def main(args):
    as_json = args[:1] == ["--json"]
    folders = args[1:] if as_json else args
    records = []
    failed = 0
    checked = 0
    for folder in folders:
        for path in sorted(pathlib.Path(folder).rglob("*.y*ml")):
            if path.is_symlink() or path.suffix not in (".yaml", ".yml"):
                continue
            try:
                for line, document in documents(path):
                    ours = isinstance(document, dict) and str(document.get("apiVersion", "")).startswith("memeit.pro/")
                    if not as_json and not ours:
                        continue
                    checked += 1
                    errors = errors_of(document)
                    failed += len(errors)
                    records.append({"file": str(path), "line": line, "status": "invalid" if errors else "valid",
                                    "errors": errors})
                    if not as_json:
                        name = document.get("metadata", {}).get("name")
                        for error in errors:
                            print(f"{path}: {document.get('kind')}/{name}: {error}")
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                failed += 1
                mark = getattr(e, "problem_mark", None)
                line = mark.line + 1 if mark is not None else 1
                records.append({"file": str(path), "line": line, "status": "yaml-error", "errors": [str(e)]})
                if not as_json:
                    print(f"{path}:{line}: YAML: {str(e).splitlines()[0]}")
    if as_json:
        print(json.dumps(records, indent=1))
        return 0
    print(f"checked {checked} documents, {failed} errors")
    return 1 if failed or not checked else 0


sys.exit(main(sys.argv[1:]))
