#!/usr/bin/env python3
"""Writes a labelled injection file (JSONL: text, label, source) from attack and benign prompts
that ship inside PyPI packages, for training the injection classifier on more sources than
`../shared/data/injection/train_extra.jsonl` has.

usage: injection-sources.py OUT.jsonl [--exclude FILE.jsonl ...] [--cache DIR]   (needs PyYAML and pip)

Sources (pinned wheels, fetched with `pip download` into --cache, default .sluice/cache):
  pyrit-wild      PyRIT 1.1.0's in-the-wild jailbreak templates (jailbreakchat, Discord, Reddit)
  pyrit-curated   PyRIT's curated, Pliny's and Arth Singh's jailbreak templates
  spikee          spikee 0.9.2's injection wrappers ("NEW INSTRUCTIONS", "sorry, I forgot to ask
                  you to ...") around its payloads (exfiltration links, XSS, system prompt leaks)
  pyrit-objective PyRIT's AdvBench objectives inside its "steal the system prompt" and 0din prompts
  spikee-benign   spikee's ordinary investment questions, the ones meant to be answered (label 0)
  bbh-benign      the BIG-Bench Hard questions in deepeval 4.3.1's few-shot prompts (label 0)

A jailbreak template's {{ prompt }} is filled, in turn, with a harmful objective (AdvBench) or a
harmless task (the benign sources' own questions): a jailbreak is an attack whatever it asks
for, so the classifier should learn the wrapper, not the topic.

--exclude drops every text that shares most of its word 5-grams with a text of those files, so
that a file measured afterwards (injection/dev.jsonl: its in-the-wild jailbreaks come from the
same collections as PyRIT's) stays unseen.
"""
import argparse
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

WHEELS = {"pyrit": "1.1.0", "spikee": "0.9.2", "deepeval": "4.3.1"}
ROOT = Path(__file__).resolve().parent.parent


def wheel(name, version, cache):
    found = list(cache.glob(f"{name}-{version}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        f"{name}=={version}", "-d", str(cache)], check=True)
        found = list(cache.glob(f"{name}-{version}-*.whl"))
    return zipfile.ZipFile(found[0])


def stable(text):
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def shingles(text, n=5):
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--cache", default=str(ROOT / ".sluice" / "cache"))
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    pyrit = wheel("pyrit", WHEELS["pyrit"], cache)
    spikee = wheel("spikee", WHEELS["spikee"], cache)
    deepeval = wheel("deepeval", WHEELS["deepeval"], cache)

    def seeds(path):
        return [s["value"] for s in yaml.safe_load(pyrit.read(path))["seeds"]]

    objectives = seeds("pyrit/datasets/seed_datasets/local/adv_bench.prompt")

    benign = []
    spikee_benign = set()
    for name in spikee.namelist():
        if re.search(r"seeds-investment-advice(-fp)?/standalone_user_inputs\.jsonl$", name):
            for line in spikee.read(name).decode().splitlines():
                if line.strip():
                    spikee_benign.add(json.loads(line)["text"])
    benign += [(t, "spikee-benign") for t in sorted(spikee_benign)]
    bbh = set()
    for name in deepeval.namelist():
        if "big_bench_hard/shot_prompts/" in name and name.endswith(".txt"):
            text = deepeval.read(name).decode()
            for block in re.split(r"\n\s*\n", text):
                m = re.match(r"Q:\s*(.*?)\nA:", block.strip(), re.S)
                if m:
                    bbh.add(m.group(1).strip())
    benign += [(t, "bbh-benign") for t in sorted(bbh)]
    tasks = [t for t, _ in benign]

    def fill(template, key):
        h = stable(key)
        request = objectives[h % len(objectives)] if h % 2 == 0 else tasks[(h // 2) % len(tasks)]
        return re.sub(r"\{\{\s*\w+\s*\}\}", request, template).strip()

    attacks = []
    for name in sorted(pyrit.namelist()):
        if not (name.startswith("pyrit/datasets/jailbreak/templates/") and name.endswith(".yaml")):
            continue
        doc = yaml.safe_load(pyrit.read(name))
        if not isinstance(doc, dict) or not isinstance(doc.get("value"), str):
            continue
        if doc.get("parameters") and set(doc["parameters"]) - {"prompt"}:
            continue
        source = "pyrit-wild" if "/in_the_wild/" in name else "pyrit-curated"
        attacks.append((fill(doc["value"], name), source))
    for path in ["pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt"] + \
            sorted(n for n in pyrit.namelist() if n.startswith("pyrit/datasets/seed_datasets/local/0din/")):
        for i, value in enumerate(seeds(path)):
            attacks.append((fill(value, f"{path}:{i}"), "pyrit-objective"))

    wrappers, payloads = set(), set()
    for name in spikee.namelist():
        if not name.endswith(".jsonl") or "/seeds-" not in name:
            continue
        for line in spikee.read(name).decode().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if name.endswith("/jailbreaks.jsonl") and "<INSTRUCTION>" in row.get("text", ""):
                wrappers.add(row["text"])
            elif name.endswith("/instructions.jsonl") and row.get("instruction"):
                payloads.add(row["instruction"])
    payloads = sorted(payloads)
    for wrapper in sorted(wrappers):
        if wrapper.strip().rstrip(".") == "<INSTRUCTION>":
            continue
        payload = payloads[stable(wrapper) % len(payloads)]
        attacks.append((wrapper.replace("<INSTRUCTION>", payload), "spikee"))

    excluded = []
    for path in args.exclude:
        for line in open(path):
            excluded.append(shingles(json.loads(line)["text"]))
    index = {}
    for i, s in enumerate(excluded):
        for g in s:
            index.setdefault(g, []).append(i)

    def near_duplicate(text):
        s = shingles(text)
        counts = {}
        for g in s:
            for i in index.get(g, ()):
                counts[i] = counts.get(i, 0) + 1
        return any(c >= 0.5 * min(len(s), len(excluded[i])) for i, c in counts.items())

    seen, rows, dropped = set(), [], {}
    for text, source in attacks + benign:
        label = 0 if source.endswith("-benign") else 1
        if text in seen:
            continue
        seen.add(text)
        if near_duplicate(text):
            dropped[source] = dropped.get(source, 0) + 1
            continue
        rows.append({"text": text, "label": label, "source": source})
    with open(args.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = {}
    for row in rows:
        counts[row["source"]] = counts.get(row["source"], 0) + 1
    print(f"{len(rows)} texts -> {args.out}: {counts}; dropped as near-duplicates of --exclude: {dropped}")


if __name__ == "__main__":
    main()
