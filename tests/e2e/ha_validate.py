#!/usr/bin/env python3
"""Validates Home Assistant discovery configs captured from a broker against
tests/data/homeassistant/schema.json, and checks every topic a config names.

usage: ha_validate.py SCHEMA CONFIGS PUBLISHED PREFIX AVAILABILITY SUBSCRIBED...
  CONFIGS       "topic payload" lines of <prefix>/# (mosquitto_sub -v); empty payloads skipped
  PUBLISHED     "topic payload" lines of everything the bridge published under its prefix
  PREFIX        the discovery prefix
  AVAILABILITY  the availability topic every config must name
  SUBSCRIBED    the topics the bridge subscribes to (command topics must be among them)
Prints one line per problem and exits 1 if there was any; else prints a summary."""
import json
import re
import sys

TYPES = {"string": str, "integer": int, "boolean": bool, "list": list, "map": dict,
         "null": type(None)}


def type_ok(value, spec):
    specs = spec if isinstance(spec, list) else [spec]
    for s in specs:
        t = TYPES[s]
        if t is int and isinstance(value, bool):
            continue
        if isinstance(value, t):
            return True
    return False


def read_lines(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            topic, _, payload = line.partition(" ")
            out.append((topic, payload))
    return out


def main():
    schema_path, configs_path, published_path, prefix, availability = sys.argv[1:6]
    subscribed = set(sys.argv[6:])
    schema = json.load(open(schema_path, encoding="utf-8"))
    published = {t for t, _ in read_lines(published_path)}
    problems, uids, count = [], set(), 0
    latest = {}
    for topic, payload in read_lines(configs_path):
        latest[topic] = payload  # retained: the last one counts
    topic_re = re.compile("^" + re.escape(prefix) +
                          r"/([a-z_]+)/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)/config$")
    for topic, payload in sorted(latest.items()):
        if topic == prefix + "/status" or not payload:
            continue
        m = topic_re.match(topic)
        if not m:
            problems.append(f"{topic}: not a discovery topic")
            continue
        platform = m.group(1)
        if platform not in schema["platforms"]:
            problems.append(f"{topic}: platform '{platform}' not in the schema")
            continue
        try:
            cfg = json.loads(payload)
        except ValueError as e:
            problems.append(f"{topic}: not JSON: {e}")
            continue
        count += 1
        p = schema["platforms"][platform]
        for k, v in cfg.items():
            if k not in p["keys"]:
                problems.append(f"{topic}: key '{k}' is not a {platform} key")
            elif not type_ok(v, p["keys"][k]):
                problems.append(f"{topic}: '{k}' should be {p['keys'][k]}: {v!r}")
        for k in p["required"]:
            if k not in cfg:
                problems.append(f"{topic}: required key '{k}' missing")
        for block in ("device", "origin"):
            b = cfg.get(block)
            if not isinstance(b, dict):
                problems.append(f"{topic}: no {block} block")
                continue
            for k, v in b.items():
                if k not in schema[block]["keys"]:
                    problems.append(f"{topic}: {block} key '{k}' unknown")
                elif not type_ok(v, schema[block]["keys"][k]):
                    problems.append(f"{topic}: {block}.{k} should be "
                                    f"{schema[block]['keys'][k]}: {v!r}")
        dev = cfg.get("device") or {}
        if not any(k in dev for k in schema["device"]["required_one_of"]):
            problems.append(f"{topic}: device has neither identifiers nor connections")
        if "name" not in (cfg.get("origin") or {}):
            problems.append(f"{topic}: origin without a name")
        if "entity_category" in cfg and cfg["entity_category"] not in schema["entity_category"]:
            problems.append(f"{topic}: entity_category '{cfg['entity_category']}'")
        uid = cfg.get("unique_id")
        if not uid:
            problems.append(f"{topic}: no unique_id")
        elif uid in uids:
            problems.append(f"{topic}: unique_id '{uid}' used twice")
        uids.add(uid)
        avail = cfg.get("availability") or []
        for a in avail:
            for k in a:
                if k not in schema["availability_item"]["keys"]:
                    problems.append(f"{topic}: availability key '{k}' unknown")
        if [a.get("topic") for a in avail] != [availability]:
            problems.append(f"{topic}: availability {avail!r}, want [{availability}]")
        for k in ("state_topic", "json_attributes_topic"):
            if k in cfg and cfg[k] not in published:
                problems.append(f"{topic}: {k} '{cfg[k]}' was never published by the bridge")
        if "command_topic" in cfg and cfg["command_topic"] not in subscribed:
            problems.append(f"{topic}: command_topic '{cfg['command_topic']}' is not one "
                            "the bridge subscribes to")
    for p in problems:
        print(p)
    if count == 0:
        print("no discovery config found")
        return 1
    if not problems:
        print(f"{count} configs valid, {len(uids)} unique ids")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
