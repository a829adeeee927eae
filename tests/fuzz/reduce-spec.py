#!/usr/bin/env python3
"""Reduces OpenAI's published OpenAPI document (github.com/openai/openai-openapi, MIT) to the
operations Sluice serves for `make fuzz`: POST /chat/completions, POST /embeddings, GET /models,
with every component they reference and nothing else.

usage: reduce-spec.py openapi.json > openai-subset.json
"""
import json
import sys

KEEP = {"/chat/completions": ["post"], "/embeddings": ["post"], "/models": ["get"]}

spec = json.load(open(sys.argv[1]))
paths = {}
for path, methods in KEEP.items():
    item = spec["paths"][path]
    paths[path] = {m: item[m] for m in methods}
    if "parameters" in item:
        paths[path]["parameters"] = item["parameters"]

needed = set()


def walk(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            _, _, kind, name = ref.split("/", 3)
            if (kind, name) not in needed:
                needed.add((kind, name))
                walk(spec["components"][kind][name])
        for k, v in node.items():
            if k != "x-oaiMeta":
                walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)


walk(paths)
components = {}
for kind, name in sorted(needed):
    components.setdefault(kind, {})[name] = spec["components"][kind][name]
for path in paths.values():
    for op in path.values():
        if isinstance(op, dict):
            op.pop("x-oaiMeta", None)
if "securitySchemes" in spec.get("components", {}):
    components["securitySchemes"] = spec["components"]["securitySchemes"]
out = {
    "openapi": spec["openapi"],
    "info": {**spec["info"], "description": "OpenAI's API reduced to the operations Sluice serves (tests/fuzz/reduce-spec.py)."},
    "servers": [{"url": "http://127.0.0.1:8080/v1"}],
    "security": spec.get("security", []),
    "paths": paths,
    "components": components,
}
json.dump(out, sys.stdout, indent=1, sort_keys=True)
sys.stdout.write("\n")
