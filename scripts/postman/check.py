#!/usr/bin/env python3
"""Fails when a committed Postman collection does not cover exactly the operations of
its OpenAPI document (the converter fills examples with random values, so the files are
compared by operations, not bytes)."""
import json
import re
import sys

PAIRS = [
    ("docs/openapi.json", "docs/postman/bourse.postman_collection.json"),
    ("docs/openapi-admin.json", "docs/postman/bourse-admin.postman_collection.json"),
]


def spec_ops(path):
    spec = json.load(open(path))
    ops = set()
    for p, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                ops.add((method.upper(), re.sub(r"\{[^}]+\}", "{}", p)))
    return ops


def collection_ops(path):
    ops = set()

    def walk(items):
        for it in items:
            if "item" in it:
                walk(it["item"])
            elif "request" in it:
                r = it["request"]
                segs = [
                    "{}" if s.startswith(":") or s.startswith("{{") else s
                    for s in r["url"]["path"]
                ]
                ops.add((r["method"], "/" + "/".join(segs)))

    walk(json.load(open(path))["item"])
    return ops


bad = False
for spec, coll in PAIRS:
    want, have = spec_ops(spec), collection_ops(coll)
    if want != have:
        bad = True
        print(f"{coll} is stale (run scripts/postman.sh):", file=sys.stderr)
        for m, p in sorted(want - have):
            print(f"  missing {m} {p}", file=sys.stderr)
        for m, p in sorted(have - want):
            print(f"  extra   {m} {p}", file=sys.stderr)
    else:
        print(f"{coll}: {len(have)} operations, matches {spec}")
sys.exit(1 if bad else 0)
