"""Every definition in examples/ validates against the JSON Schema of its kind (crates/tutti-server/schemas),
with a real JSON Schema validator, so the schemas editors use agree with what `tutti flows validate` accepts.
Some wrong definitions must be refused by the schemas too, so that the check can fail."""

import json
import pathlib
import sys

import jsonschema
import yaml

root = pathlib.Path(__file__).resolve().parents[2]
schemas = {k: json.loads((root / "crates/tutti-server/schemas" / f"{k}.json").read_text()) for k in ("flow", "segment", "policy")}
for schema in schemas.values():
    jsonschema.Draft202012Validator.check_schema(schema)

checked = 0
for path in sorted((root / "examples").rglob("*.yaml")):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    kind = next(k for k in ("flow", "segment", "policy") if k in doc)
    errors = list(jsonschema.Draft202012Validator(schemas[kind]).iter_errors(doc))
    if errors:
        sys.exit(f"{path}: {errors[0].message} at {list(errors[0].absolute_path)}")
    checked += 1

wrong = [
    ("flow", {"flow": "x", "trigger": {"event": "A"}, "steps": [{"id": "a", "wait": "5 minutes"}]}),
    ("flow", {"flow": "x", "trigger": {"event": "A"}, "steps": [{"id": "a", "action": "log.write", "wait": "5m"}]}),
    ("flow", {"flow": "x", "trigger": {"event": "A"}, "steps": [{"id": "a", "acton": "log.write"}]}),
    ("policy", {"policy": "p", "frequency_cap": {"max": 2}}),
    ("segment", {"segment": "s", "behaviour": [{"performed": "X", "more_than": "90d"}]}),
]
for kind, doc in wrong:
    if jsonschema.Draft202012Validator(schemas[kind]).is_valid(doc):
        sys.exit(f"the {kind} schema accepts {doc}")
print(f"schemas: {checked} example definitions valid, {len(wrong)} wrong ones refused")
