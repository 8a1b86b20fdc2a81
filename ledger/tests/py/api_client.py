"""An independent client of the evidence API: Python's requests, no code of the ledger's.

Usage: api_client.py URL PRODUCER_TOKEN READER_TOKEN SCENARIO_FILE

Posts the scenario as NDJSON in requests of 7 events, checks every answer names one outcome
per event, then reads the audit answers and prints them as one JSON document on stdout:
{"intake": [...outcomes...], "alerts": [...], "status": {...}, "openapi": "valid"}.
The OpenAPI document is checked with openapi-spec-validator (OpenAPI 3.1).
"""

import json
import sys

import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate


def check_refs(node, document, where="#"):
    """Every $ref of the document names a schema it holds."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/components/schemas/")
            assert name in document["components"]["schemas"], f"{where}: {ref} is not in the document"
        for key, value in node.items():
            check_refs(value, document, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_refs(value, document, f"{where}/{i}")


def conforms(document, name, instance):
    """The instance is valid against components/schemas/<name> of the document."""
    root = dict(document)
    root["$ref"] = f"#/components/schemas/{name}"
    Draft202012Validator(root).validate(instance)


def main():
    url, producer, reader, scenario = sys.argv[1:5]
    session = requests.Session()
    lines = [line for line in open(scenario, encoding="utf-8").read().splitlines() if line.strip()]
    spec = session.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {reader}"}, timeout=60)
    spec.raise_for_status()
    document = spec.json()
    validate(document)
    check_refs(document, document)
    assert document["openapi"].startswith("3.1"), document["openapi"]
    outcomes = []
    for start in range(0, len(lines), 7):
        chunk = lines[start : start + 7]
        r = session.post(
            f"{url}/v1/events",
            data=("\n".join(chunk) + "\n").encode(),
            headers={"Authorization": f"Bearer {producer}", "Content-Type": "application/x-ndjson"},
            timeout=60,
        )
        r.raise_for_status()
        answer = r.json()
        conforms(document, "IntakeAnswer", answer)
        assert len(answer["items"]) == len(chunk), answer
        outcomes.extend(item["status"] for item in answer["items"])
    auth = {"Authorization": f"Bearer {reader}"}
    alerts, cursor = [], None
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = session.get(f"{url}/v1/alerts", params=params, headers=auth, timeout=60).json()
        conforms(document, "Proven_AlertPage", page)
        alerts.extend(page["alerts"])
        cursor = page.get("next")
        if not cursor:
            break
    status = session.get(f"{url}/v1/status", headers=auth, timeout=60).json()
    conforms(document, "ServiceStatus", status)
    entries = session.get(f"{url}/v1/entries", params={"limit": 5}, headers=auth, timeout=60).json()
    conforms(document, "EntriesPage", entries)
    refused = session.get(f"{url}/v1/status", timeout=60)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    conforms(document, "ProblemDetails", refused.json())
    r = session.get(f"{url}/v1/checkpoint", headers=auth, timeout=60)
    checkpoint = r.text if r.status_code == 200 else None
    json.dump(
        {
            "intake": outcomes,
            "alerts": alerts,
            "status": status,
            "checkpoint": checkpoint,
            "openapi": "valid",
            "paths": sorted(document["paths"]),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
