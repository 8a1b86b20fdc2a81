"""The gateway workload of ops/bench/ingest and ops/bench/grow, as NDJSON.

python3 ops/bench/gateway.py PATH START END

Writes events START..END: when START is 0, first a policy gating prompts in prod, an approved
provider route, a registered and gated prompt and a deploy of it to each of 50 apps (events 0
to 53); then gateway requests (proxy.request, about 580 bytes each, distinct ids, app i % 50,
one prompt), event i dated i seconds after 2026-05-01T00:00:00Z. Files of consecutive ranges
make one stream.

A request's event id is `proxy.request-<i>`, which arrives nearly in key order; GATEWAY_IDS=uuid
makes it a random-looking UUID instead (version 4 form, the same for the same i), as gateways
that mint UUIDs send.
"""
import datetime
import hashlib
import json
import os
import sys
import uuid

SETUP = 54


def digest(label):
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


START = datetime.datetime(2026, 5, 1, tzinfo=datetime.timezone.utc)
PROMPT = {"kind": "prompt", "name": "support-system", "version": "12", "digest": digest("support-system@12")}


def at(seconds):
    return (START + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(i, ty, data, env=None, event_id=None):
    e = {"specversion": "1.0", "id": event_id or f"{ty}-{i}", "source": "bench/ingest", "type": ty, "time": at(i),
         "actor": "platform@acme", "data": data}
    if env:
        e["env"] = env
    return json.dumps(e, separators=(",", ":"))


def setup():
    yield event(0, "registry.policy", {"version": "bench", "policy": {
        "required_gates": {"prod": ["prompt-injection"]}, "required_approvals": {},
        "require_signature": [], "drift": "off"}})
    yield event(1, "registry.provider", {"provider": "acme-inference", "model": "support-model",
        "region": "eu-west-1", "data_classes": ["internal"], "envs": ["prod"], "decision": "approved"})
    yield event(2, "registry.register", {"artifact": PROMPT, "owner": "ml", "format": "text"})
    yield event(3, "pipeline.gate", {"gate": "prompt-injection", "category": "eval", "artifact": PROMPT, "result": "pass"})
    for app in range(50):
        yield event(4 + app, "pipeline.deploy", {"app": f"app-{app}", "target_env": "prod", "artifacts": [PROMPT]}, env="prod")


def request_id(i):
    if os.environ.get("GATEWAY_IDS") != "uuid":
        return None
    return str(uuid.UUID(bytes=hashlib.blake2b(str(i).encode(), digest_size=16).digest(), version=4))


def request(i):
    return event(i, "proxy.request", {"request_id": f"r-{i}", "app": f"app-{i % 50}", "provider": "acme-inference",
        "model": "support-model", "region": "eu-west-1", "data_class": "internal", "prompt": PROMPT,
        "tokens_in": 812, "tokens_out": 164, "latency_ms": 420, "status": "ok", "refused": False,
        "safety_flags": [], "tool_calls": ["search_kb"]}, env="prod", event_id=request_id(i))


def main():
    path, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(path, "w") as f:
        if start == 0:
            f.writelines(line + "\n" for line in setup())
        f.writelines(request(i) + "\n" for i in range(max(start, SETUP), end))


if __name__ == "__main__":
    main()
