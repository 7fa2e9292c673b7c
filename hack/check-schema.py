#!/usr/bin/env python3
"""Validates manifests against the generated JSON Schemas in crds/ with an independent
validator (Python's jsonschema), as an editor would. Usage: check-schema.py DIR [DIR...].
Exit 0 when every memeit.pro document of every folder is valid, 1 otherwise."""
import json
import pathlib
import sys

import jsonschema
import yaml

root = pathlib.Path(__file__).resolve().parent.parent
schemas = {
    kind: json.loads((root / "crds" / f"{kind.lower()}.schema.json").read_text())
    for kind in ("Stack", "Deployment")
}
failed = 0
checked = 0
for folder in sys.argv[1:]:
    for path in sorted(pathlib.Path(folder).rglob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("memeit.pro/"):
                continue
            checked += 1
            validator = jsonschema.Draft202012Validator(schemas.get(doc.get("kind"), {"not": {}}))
            for error in validator.iter_errors(doc):
                failed += 1
                where = "/".join(str(p) for p in error.absolute_path)
                print(f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {where}: {error.message}")
print(f"checked {checked} documents, {failed} errors")
sys.exit(1 if failed or not checked else 0)
