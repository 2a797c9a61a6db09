#!/usr/bin/env python3
"""Summary of a schemathesis run (its --report ndjson file): per operation,
the statuses the gateway answered and how often, and the checks that
failed (schemathesis prints the details). Called by scripts/contract.sh after each run.

    scripts/contract-summary.py RUN.ndjson
"""
import collections
import json
import sys


def show(counter):
    """`200x13 404x2`: each status and how often."""
    return " ".join(f"{status}x{n}" for status, n in sorted(counter.items(), key=str))


def main(path):
    statuses = collections.defaultdict(collections.Counter)
    others = collections.defaultdict(collections.Counter)
    failed = collections.Counter()
    for line in open(path, encoding="utf-8"):
        event = json.loads(line).get("ScenarioFinished")
        if not event:
            continue
        recorder = event["recorder"]
        method = recorder["label"].split(" ", 1)[0]
        for interaction in recorder.get("interactions", {}).values():
            response = interaction.get("response")
            status = response["status_code"] if response else "no answer"
            # The coverage phase also tries methods the document does not
            # list (404: no such route); status_code_conformance skips them.
            other = interaction["request"]["method"] != method
            (others if other else statuses)[recorder["label"]][status] += 1
        for checks in recorder.get("checks", {}).values():
            for check in checks:
                if check["status"] == "failure":
                    failed[(recorder["label"], check["name"])] += 1
    total = sum(sum(c.values()) for c in statuses.values())
    print(f"  {len(statuses)} operations, {total} calls; statuses answered, each checked against")
    print("  its operation's documented ones (then, unchecked: other methods tried on the path):")
    for label in sorted(statuses, key=lambda l: (l.split(" ", 1)[1], l)):
        tried = f" | other methods: {show(others[label])}" if others[label] else ""
        print(f"    {label}: {show(statuses[label])}{tried}")
    for (label, check), n in sorted(failed.items()):
        print(f"  FAILED {check} on {label}: {n} calls")


if __name__ == "__main__":
    main(sys.argv[1])
