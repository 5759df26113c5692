#!/usr/bin/env python3
"""Invariant checker of the chaos soak: reads a run directory (truth.json: every event and
plate read the simulator holds at the end; recv-a/b.jsonl: every webhook request; sub.txt:
every MQTT message; dlq.jsonl; run.json: faults, samples, outbox) and prints one summary with
PASS or the first violated invariant. The rule set is fixed (config_yaml below) so that the
selection of the rules without cooldown or visit is a pure function of the message, which
select() evaluates; the cooldown and visit rules are checked for what they promise.
Usage: check.py RUN_DIR (exit 0 on PASS)."""
import datetime
import fnmatch
import json
import os
import sys

SEVERITY = ["low", "normal", "medium", "high", "critical"]
WATCH = ["SK70ABC", "DE57ABC", "*7"]  # two regular plates and a pattern on random plates
COOLDOWN_MS = 60000
# Defects V1 and C1 (docs/reliability.md) are fixed: every extra visit alert and every early
# cool alert fails. SOAK_LENIENT=1 counts them instead, as the checker did while they were
# open, to re-check the runs of a bridge from before the fixes: C1 then allows a cooldown
# shortfall up to C1_SLACK_MS (the poll cycle's length), V1 a second alert in a visit when
# the read before it may have been evaluated a full visit earlier.
LENIENT = os.environ.get("SOAK_LENIENT", "0") == "1"
C1_SLACK_MS = 20000 if LENIENT else 0
VISIT_MS = 20000
# name -> targets (target, topic template or None); ordered as in the config
TARGETS = {
    "all": [("mqtt.home", "soak/all/%s"), ("webhook.a", None)],
    "serious": [("webhook.b", None)],
    "watched": [("webhook.b", None), ("mqtt.home", "soak/watch/%s")],
    "cool": [("mqtt.home", "soak/cool/%s"), ("webhook.b", None)],
    "visit": [("mqtt.home", "soak/visit/%s")],
}
PURE = ["all", "serious", "watched"]
SECRET_B = "whsec_c29hay1zZWNyZXQtc29hay1zZWNyZXQtc29hay1rZXk="  # webhook b signs; its receiver verifies
# the bound held: the peak RSS of the second half of the run (samples after 20 s of uptime,
# and the bridge at rest after the drain) is at most 10% + 4 MiB above the first half's peak;
# open descriptors at most 12 more: the sockets the config lets come and go (API concurrency
# 4, webhooks 4 + 2, MQTT 1, one spare), which may all have been closed in the first half
RSS_GROWTH = 0.10
RSS_SLACK_KB = 4096
FD_SLACK = 12


def config_yaml(s):
    return """tether:
  base_url: "http://127.0.0.1:{sim}"
  insecure: true
  client_id: sim-client
  client_secret: sim-secret
  redirect_uri: http://127.0.0.1/callback
  timeout: 3s
poll: {{interval: 1s, lookback: 15m, concurrency: 4}}
state_dir: {dir}/state
log: {{level: info}}
mqtt:
  home: {{url: "mqtt://127.0.0.1:{mqtt}", qos: 1, topic_prefix: soak, client_id: tb-soak}}
webhooks:
  a: {{url: "http://127.0.0.1:{a}/a", timeout: 2s, concurrency: 4}}
  b: {{url: "http://127.0.0.1:{b}/b", timeout: 2s, concurrency: 2,
      secret: {secret}}}
watchlists:
  soak: {{plates: [{watch}]}}
rules:
  - name: all
    when: {{kind: any}}
    to: [{{mqtt: home, topic: "soak/all/{{{{zone.id}}}}"}}, {{webhook: a}}]
  - name: serious
    when: {{kind: event, min_severity: medium, flags_none: [video_loss]}}
    to: [{{webhook: b}}]
  - name: watched
    when: {{kind: plate, watchlists: [soak]}}
    to: [{{webhook: b}}, {{mqtt: home, topic: "soak/watch/{{{{zone.id}}}}"}}]
  - name: cool
    when: {{kind: event, flags_any: [motion]}}
    cooldown: {cool}s
    to: [{{mqtt: home, topic: "soak/cool/{{{{zone.id}}}}"}}, {{webhook: b}}]
  - name: visit
    when: {{kind: plate}}
    visit: {visit}s
    to: [{{mqtt: home, topic: "soak/visit/{{{{zone.id}}}}"}}]
""".format(sim=s.sim_port, dir=s.dir, mqtt=s.mqtt_port, a=s.recv_ports["a"], b=s.recv_ports["b"],
           watch=", ".join('"%s"' % w for w in WATCH), cool=COOLDOWN_MS // 1000,
           visit=VISIT_MS // 1000, secret=SECRET_B)


def norm_plate(p):
    return "".join(c for c in p.upper() if c.isalnum())


def select(rule, kind, severity, flags, plate):
    """Whether RULE's conditions hold (cooldown and visit aside) for a message's fields."""
    if rule == "all":
        return True
    if rule == "serious":
        return (kind == "event" and severity in SEVERITY and
                SEVERITY.index(severity) >= SEVERITY.index("medium") and "video_loss" not in flags)
    if rule == "watched":
        return kind == "plate" and any(fnmatch.fnmatchcase(norm_plate(plate), w) for w in WATCH)
    if rule == "cool":
        return kind == "event" and "motion" in flags
    if rule == "visit":
        return kind == "plate"
    return False


def ms(iso):
    return int(datetime.datetime.fromisoformat(iso).timestamp() * 1000)


def tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(l.rstrip() for l in f.readlines()[-n:])
    except OSError:
        return ""


class Delivery:
    """One request or MQTT message as it arrived."""

    __slots__ = ("target", "at", "did", "raw", "msg", "ok", "status", "topic", "sig")


def load_deliveries(d):
    out = []
    for name in ("a", "b"):
        path = os.path.join(d, "recv-%s.jsonl" % name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # a line being written
                r = json.loads(line)
                x = Delivery()
                x.target, x.at, x.raw, x.status = "webhook." + name, r["at_ms"], r["body"], r["status"]
                x.did = r["headers"].get("webhook-id")
                x.msg = json.loads(r["body"])
                x.ok = 200 <= r["status"] < 300
                x.topic, x.sig = None, r.get("signature")
                out.append(x)
    path = os.path.join(d, "sub.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                ts, topic, payload = line.rstrip("\n").split(" ", 2)
                if topic == "soak/bridge/status":
                    continue
                x = Delivery()
                x.target, x.at, x.raw, x.topic = "mqtt.home", int(float(ts) * 1000), payload, topic
                x.msg = json.loads(payload)
                x.did, x.sig = None, None
                x.ok, x.status = True, 200
                out.append(x)
    return out


def expected(truth):
    """(target, message id, rule) that must arrive: the final revision of every resource the
    simulator holds, for every pure rule that selects it."""
    want = {}
    for z, evs in truth["events"].items():
        for e in evs:
            a = e["attributes"]
            flags = [k[4:] for k, v in a.items() if k.startswith("has_") and v is True]
            mid = "event:%s:%s" % (e["id"], a["updated_at"])
            for r in PURE:
                if select(r, "event", a["severity"], flags, None):
                    for t, _ in TARGETS[r]:
                        want[(t, mid, r)] = z
    for z, lprs in truth["lprs"].items():
        for p in lprs:
            a = p["attributes"]
            mid = "plate:%s:%s" % (p["id"], a["updated_at"])
            for r in PURE:
                if select(r, "plate", None, [], a["plate_number"]):
                    for t, _ in TARGETS[r]:
                        want[(t, mid, r)] = z
    return want


def permanent(status):
    return 400 <= status < 500 and status not in (408, 429)


def missing(d, _rules=None):
    """Expected deliveries not (yet) arrived nor permanently refused: the drain condition."""
    try:
        with open(os.path.join(d, "truth.json")) as f:
            truth = json.load(f)
    except (OSError, ValueError):
        return ["no truth.json"]
    got = set()
    for x in load_deliveries(d):
        if x.ok or permanent(x.status):
            got.add((x.target, x.msg.get("id"), x.msg.get("rule")))
    return [k for k in expected(truth) if k not in got]


class Failed(Exception):
    pass


def check(d, stats):
    with open(os.path.join(d, "truth.json")) as f:
        truth = json.load(f)
    with open(os.path.join(d, "run.json")) as f:
        run = json.load(f)
    dels = load_deliveries(d)
    dlq = []
    with open(os.path.join(d, "dlq.jsonl")) as f:
        dlq = [json.loads(l) for l in f if l.strip()]
    stats.update({"deliveries": sum(1 for x in dels if x.ok), "attempts": len(dels)})

    def fail(text):
        raise Failed(text)

    # 0. the harness saw nothing wrong (unexpected exits, failed stops), and under
    #    make test-asan no process reported a sanitizer error
    if run["violations"]:
        fail(run["violations"][0])
    for name in ("bridge.log", "sim.log", "recv-a.log", "recv-b.log"):
        text = tail(os.path.join(d, name), 10 ** 6)
        for pat in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if pat in text:
                i = text.index(pat)
                fail("sanitizer report in %s: %s" % (name, text[i:i + 300]))

    # resources by source id: zone, final revision
    final = {}
    for kind, key in (("event", "events"), ("plate", "lprs")):
        for z, rs in truth[key].items():
            for r in rs:
                final[(kind, r["id"])] = (z, r["attributes"]["updated_at"])
    stats["events"] = sum(len(v) for v in truth["events"].values())
    stats["plates"] = sum(len(v) for v in truth["lprs"].values())

    # 1. duplicates are byte-identical and carry the same id
    by_did, ids_of = {}, {}
    for x in dels:
        key = (x.target, x.msg.get("id"), x.msg.get("rule"), x.topic)
        if x.did is not None:
            if by_did.setdefault((x.target, x.did), x.raw) != x.raw:
                fail("duplicate: %s webhook-id %s was sent with two different bodies" % (x.target, x.did))
            ids_of.setdefault(key, set()).add(x.did)
            if len(ids_of[key]) > 1:
                fail("duplicate: %s message %s rule %s went out under webhook-ids %s" %
                     (x.target, key[1], key[2], sorted(ids_of[key])))
        else:
            if by_did.setdefault(key, x.raw) != x.raw:
                fail("duplicate: %s %s rule %s on %s arrived with two different payloads" %
                     (x.target, key[1], key[2], x.topic))
        if x.target == "webhook.b" and x.sig != "verified":
            fail("signature: webhook b request %s was %s" % (x.did, x.sig))
    distinct = {(x.target, x.msg.get("id"), x.msg.get("rule")) for x in dels if x.ok}
    stats["duplicates"] = stats["deliveries"] - len(distinct)

    # 2. nothing delivered that the rules do not select, nowhere it should not go
    for x in dels:
        m = x.msg
        mid, rule = m.get("id", ""), m.get("rule")
        parts = mid.split(":", 2)
        if len(parts) != 3 or (parts[0], parts[1]) not in final:
            fail("unknown message %s on %s: the simulator holds no such resource" % (mid, x.target))
        zone, last = final[(parts[0], parts[1])]
        if m["zone"]["id"] != zone or m.get("source_id") != parts[1] or m.get("kind") != parts[0]:
            fail("message %s on %s names zone %s, the simulator says %s" % (mid, x.target, m["zone"]["id"], zone))
        if ms(parts[2]) > ms(last):
            fail("message %s on %s is newer than the simulator's last revision %s" % (mid, x.target, last))
        if rule not in TARGETS or not select(rule, m["kind"], m.get("severity"), m.get("flags", []),
                                             (m.get("plate") or {}).get("number")):
            fail("message %s on %s: rule %s does not select it" % (mid, x.target, rule))
        topics = [tp for t, tp in TARGETS[rule] if t == x.target]
        if not topics:
            fail("message %s (rule %s) reached %s, not one of the rule's targets" % (mid, rule, x.target))
        if x.topic is not None and x.topic != topics[0] % zone:
            fail("message %s (rule %s) on topic %s, want %s" % (mid, rule, x.topic, topics[0] % zone))

    # 3. every selected final revision reached every target (dead letters aside)
    dead = {(l["target"], l["message"]["id"], l["message"].get("rule")): l for l in dlq}
    want = expected(truth)
    for key in sorted(want):
        if key not in distinct and key not in dead:
            fail("lost: %s rule %s never reached %s (zone %s)" % (key[1], key[2], key[0], want[key]))
    stats["expected"] = len(want)

    # 4. dead letters are exactly the deliveries a receiver refused with a permanent 4xx
    refused = {}
    for x in dels:
        if x.did is not None and permanent(x.status):
            refused[(x.target, x.msg["id"], x.msg.get("rule"))] = x.status
    for key, l in dead.items():
        if key not in refused:
            fail("dead letter %s rule %s on %s (status %s: %s) was not caused by an injected 4xx" %
                 (key[1], key[2], key[0], l.get("status"), l.get("reason")))
    for key in refused:
        if key not in dead and key not in distinct:
            fail("refused %s rule %s on %s neither dead-lettered nor delivered" % (key[1], key[2], key[0]))
    stats["dead"] = len(dead)
    if run["outbox_left"] != 0:
        fail("the outbox holds %s entries after the drain and stop" % run["outbox_left"])

    # 5. order per target and zone
    #   a) webhooks: a zone's next delivery is first tried only once every earlier one of
    #      that zone was answered 2xx or refused for good (one transfer per zone at a time)
    pending = {}
    for x in dels:
        if x.did is None:
            continue
        zk = (x.target, x.msg["zone"]["id"])
        st = pending.setdefault(zk, {})
        if x.did not in st:
            open_ = [i for i, done in st.items() if not done]
            if open_:
                fail("order: %s zone %s: %s was sent while %s was not yet delivered" %
                     (x.target, zk[1], x.did, open_[0]))
            st[x.did] = False
        if x.ok or permanent(x.status):
            st[x.did] = True
    #   b) rule "all" reaches MQTT and webhook a in the same order per zone (the outbox order)
    seq = {}
    for x in dels:
        if x.msg.get("rule") == "all":
            s = seq.setdefault((x.target, x.msg["zone"]["id"]), [])
            if x.msg["id"] not in s and x.ok:
                s.append(x.msg["id"])
    for (t, z), s in seq.items():
        if t != "mqtt.home":
            continue
        other = [i for i in seq.get(("webhook.a", z), []) if ("webhook.a", i, "all") not in dead]
        mine = [i for i in s if ("webhook.a", i, "all") not in dead]
        if mine != other:
            k = next(i for i in range(min(len(mine), len(other)) + 1)
                     if i >= len(mine) or i >= len(other) or mine[i] != other[i])
            fail("order: zone %s: MQTT and webhook a differ at position %d: %s vs %s" %
                 (z, k, mine[k] if k < len(mine) else "-", other[k] if k < len(other) else "-"))
    #   c) an event's revisions arrive in revision order on every target
    firsts = {}
    for x in dels:
        if x.ok:
            firsts.setdefault((x.target, x.msg.get("rule"), x.msg["source_id"]), [])
            lst = firsts[(x.target, x.msg.get("rule"), x.msg["source_id"])]
            rev = x.msg["id"].split(":", 2)[2]
            if rev not in lst:
                if lst and ms(lst[-1]) > ms(rev):
                    fail("order: %s: revision %s of %s arrived after %s" % (x.target, rev, x.msg["source_id"], lst[-1]))
                lst.append(rev)

    # 6. cooldown: the deliveries of "cool" in a zone fit the 15 s rule. A message was
    #    evaluated after its revision existed and before it first arrived anywhere; the
    #    earliest feasible evaluation times must leave 60 s between non-escalations
    first_at, order = {}, {}
    for x in dels:
        if x.msg.get("rule") != "cool":
            continue
        k = x.msg["id"]
        first_at[k] = min(first_at.get(k, x.at), x.at)
        if x.target == "mqtt.home":
            o = order.setdefault(x.msg["zone"]["id"], [])
            if not o or k not in o:
                if k not in o:
                    o.append(k)
    msgs = {x.msg["id"]: x.msg for x in dels if x.msg.get("rule") == "cool"}
    stats["cooldown_held"] = 0
    for z, o in order.items():
        t_prev, prev = None, None
        for k in o:
            m = msgs[k]
            lo = ms(k.split(":", 2)[2])
            if prev is None:
                base = lo
            else:
                esc = m["source_id"] == prev["source_id"] and (
                    SEVERITY.index(m["severity"]) > SEVERITY.index(prev["severity"]) or
                    bool(set(m["flags"]) - set(prev["flags"])))
                base = t_prev if esc else t_prev + COOLDOWN_MS
            t = max(lo - C1_SLACK_MS, base)
            if t > first_at[k] + 50:
                fail("cooldown: zone %s: %s arrived %d ms after the previous cool alert %s "
                     "(cooldown %d ms, %d ms allowed for C1)" % (z, k, first_at[k] - t_prev, prev["id"],
                                                              COOLDOWN_MS, C1_SLACK_MS))
            if max(lo, base) > first_at[k] + 50:
                stats["cooldown_c1"] = stats.get("cooldown_c1", 0) + 1  # LENIENT only
            t_prev, prev = t, m
    # 7. visits: one alert per plate, zone and visit (reads less than 20 s apart)
    reads, alerts, arrived = {}, {}, {}
    for x in dels:
        if x.ok:
            arrived[x.msg["id"]] = min(arrived.get(x.msg["id"], x.at), x.at)
    for x in dels:
        m = x.msg
        if m.get("kind") != "plate" or not x.ok:
            continue
        k = (m["plate"]["normalized"], m["zone"]["id"])
        if m.get("rule") == "all" and x.target == "mqtt.home":
            reads.setdefault(k, {})[m["id"]] = ms(m["occurred_at"])
        if m.get("rule") == "visit":
            alerts.setdefault(k, set()).add(m["id"])
    visits = 0
    for k, rs in reads.items():
        ordered = sorted(rs.items(), key=lambda kv: kv[1])
        groups, cur, last = [], [], None
        for mid, t in ordered:
            if last is not None and t - last > VISIT_MS:
                groups.append(cur)
                cur = []
            cur.append(mid)
            last = t
        groups.append(cur)
        visits += len(groups)
        for g in groups:
            n = [i for i in g if i in alerts.get(k, ())]
            if len(n) > 1:
                # SOAK_LENIENT=1 (runs from before the fix of V1): counted, not failed, when
                # a late evaluation explains it: the read before the extra alert may have
                # been evaluated a full visit before it
                for a in n[1:]:
                    prev = g[g.index(a) - 1]
                    late = arrived[a] - ms(prev.split(":", 2)[2]) >= VISIT_MS
                    if late and LENIENT:
                        stats["visit_v1"] = stats.get("visit_v1", 0) + 1
                        continue
                    fail("visit: plate %s zone %s: %d alerts in one visit: %s" % (k[0], k[1], len(n), n))
            if not n:
                fail("visit: plate %s zone %s: no alert for the visit starting %s" % (k[0], k[1], g[0]))
    stats["visits"] = visits

    # 8. RSS and descriptors stay flat: post-warm-up samples, second half against first half
    samples = run["samples"]
    half = run["fault_s"] / 2
    warm = [s for s in samples if s[2] >= run["warmup_s"]]
    first = [s for s in warm if s[0] < half]
    second = [s for s in warm if s[0] >= half] + [s for s in samples if len(s) > 5]
    stats["rss_peak_kb"] = max((s[3] for s in samples), default=0)
    stats["rss_final_kb"] = samples[-1][3] if samples else 0
    stats["fds_final"] = samples[-1][4] if samples else 0
    if first and second:
        r1, r2 = max(s[3] for s in first), max(s[3] for s in second)
        f1, f2 = max(s[4] for s in first), max(s[4] for s in second)
        stats["rss_first_half_kb"], stats["rss_second_half_kb"] = r1, r2
        if r2 > r1 * (1 + RSS_GROWTH) + RSS_SLACK_KB and not run.get("sanitized"):
            fail("rss: peak %d KiB in the second half against %d KiB in the first (bound +10%% + 4 MiB)" % (r2, r1))
        if f2 > f1 + FD_SLACK:
            fail("fds: %d open descriptors in the second half against %d in the first (bound +%d)" %
                 (f2, f1, FD_SLACK))
    return stats


def summary(d, stats, verdict):
    with open(os.path.join(d, "run.json")) as f:
        run = json.load(f)
    faults = run["faults"]
    kills = faults.get("bridge_kill9", 0)
    lines = [
        "soak summary (SEED=%s)" % run["seed"],
        "  duration      %ds of faults, drained in %.0fs" % (run["duration_s"], run["drain_s"]),
        "  served        %s events, %s plate reads (simulator: %s API requests)" % (
            stats.get("events", "?"), stats.get("plates", "?"), run.get("sim_requests", "?")),
        "  deliveries    %s acknowledged of %s attempts, %s expected final deliveries, %s duplicates, %s dead letters" % (
            stats.get("deliveries", "?"), stats.get("attempts", "?"), stats.get("expected", "?"),
            stats.get("duplicates", "?"), stats.get("dead", "?")),
        "  bridge        %d SIGKILL, %d SIGTERM (slowest stop %.1fs), %d SIGHUP, %d restarts" % (
            kills, faults.get("bridge_term", 0), run["stop_s_max"], faults.get("bridge_hup", 0), run["restarts"]),
        "  faults        " + ", ".join("%s %d" % kv for kv in sorted(faults.items())),
        "  rss           peak %s KiB, final %s KiB (first half %s, second half %s); fds final %s" % (
            stats.get("rss_peak_kb", "?"), stats.get("rss_final_kb", "?"), stats.get("rss_first_half_kb", "-"),
            stats.get("rss_second_half_kb", "-"), stats.get("fds_final", "?")),
        "  visits        %s plate visits, one alert each%s" % (
            stats.get("visits", "?"),
            " (%d extra alerts of V1, SOAK_LENIENT)" % stats.get("visit_v1", 0) if LENIENT else ""),
        "  cooldown      %s" % ("%d alerts early by at most 20 s (C1, SOAK_LENIENT)" % stats.get("cooldown_c1", 0)
                               if LENIENT else "no alert inside a cooldown"),
        "  result        " + verdict,
    ]
    return "\n".join(lines)


def main(d):
    stats = {}
    try:
        check(d, stats)
        verdict, rc = "PASS", 0
    except Failed as e:
        verdict, rc = "FAIL " + str(e), 1
    print(summary(d, stats, verdict), flush=True)
    return rc


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: check.py RUN_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
