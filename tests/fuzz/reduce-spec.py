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
# Two changes to the published document, both what the API really does or needs:
# - the generated requests name the models the fuzz config serves, so they reach the pipeline
#   instead of stopping at 404 model_not_found (any other name is still a 404);
# - with encoding_format "base64" OpenAI answers each embedding as a base64 string, which the
#   document's Embedding schema (an array of floats) does not describe.
schemas = components["schemas"]
schemas["CreateChatCompletionRequest"]["allOf"][1]["properties"]["model"] = {"type": "string", "enum": ["gpt-4o", "gpt-4o-mini"]}
schemas["CreateEmbeddingRequest"]["properties"]["model"] = {"type": "string", "enum": ["text-embedding-3-small"]}
embedding = schemas["Embedding"]["properties"]["embedding"]
schemas["Embedding"]["properties"]["embedding"] = {"description": embedding["description"], "oneOf": [embedding, {"type": "string", "format": "byte"}]}

# Discriminators without a mapping: OpenAPI then matches the schema's name ('ChatCompletionMessage
# CustomToolCall') rather than the value the API sends ('custom'); map each value to its schema.
def map_discriminators(node):
    if isinstance(node, dict):
        d = node.get("discriminator")
        if isinstance(d, dict) and "mapping" not in d:
            mapping = {}
            for option in node.get("oneOf", node.get("anyOf", [])):
                ref = option.get("$ref", "")
                target = schemas.get(ref.rsplit("/", 1)[-1], {})
                values = target.get("properties", {}).get(d["propertyName"], {}).get("enum", [])
                if len(values) == 1:
                    mapping[values[0]] = ref
            if mapping:
                d["mapping"] = mapping
        for v in node.values():
            map_discriminators(v)
    elif isinstance(node, list):
        for v in node:
            map_discriminators(v)


map_discriminators(components)

# Stream events are not validated: Schemathesis checks each SSE event's envelope ({"data", "event"})
# against the chunk schema instead of its JSON data, so every valid stream would fail. The content
# type of streams is still checked, and their chunks are checked by Sluice's own tests.
stream = paths["/chat/completions"]["post"]["responses"]["200"]["content"].get("text/event-stream")
if stream is not None:
    stream["schema"] = {}

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
