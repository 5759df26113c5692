#!/usr/bin/env python3
"""Chaos soak for tether-bridge (`make soak`, SOAK=5m SEED=N): tether-sim producing events
and plate reads over many zones, a persistent mosquitto, two webhook receivers and the bridge,
while seeded fault lanes kill, stop, reload and starve it. At the end the faults stop, the
bridge drains, and check.py proves the delivery invariants from the simulator's documents and
the receivers' and subscriber's records. Every fault is logged to faults.jsonl in the run dir."""
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # nothing written into the checkout (no __pycache__)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
if not BUILD.startswith("/"):
    BUILD = os.path.join(ROOT, BUILD)
STATIC = "sim-static-token"
ZONES = 8
REGULARS = ["SK70ABC", "LB19XYZ", "DE57ABC", "34ABC123"]  # plates that come back: visits
WARMUP_S = 20  # bridge uptime before RSS/fd samples count


def parse_duration(text):
    text = text.strip()
    mult = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in mult:
        return float(text[:-1]) * mult[text[-1]]
    return float(text)


class Soak:
    def __init__(self, duration, seed):
        self.duration = duration
        self.seed = seed
        self.dir = tempfile.mkdtemp(prefix="tb-soak.")
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.procs = {}  # name -> Popen, everything we started
        self.faults = open(os.path.join(self.dir, "faults.jsonl"), "w")
        self.t0 = time.time()
        self.counts = {}
        self.violations = []
        self.samples = []  # (t, pid, uptime, rss_kb, fds)
        self.bridge = None
        self.bridge_started = 0.0
        self.bridge_expected_exit = False
        self.stop_times = []
        self.restarts = 0
        # gaps between faults and the length of outages scale with the run
        self.gap = min(max(duration / 20.0, 5.0), 45.0)
        self.broker_max = min(max(duration / 8.0, 3.0), 60.0)
        self.recv_max = min(max(duration / 10.0, 2.0), 30.0)

    # ---- logging ----
    def log_fault(self, kind, **params):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            rec = {"t": round(time.time() - self.t0, 3), "kind": kind}
            rec.update(params)
            self.faults.write(json.dumps(rec) + "\n")
            self.faults.flush()
        if os.environ.get("SOAK_VERBOSE"):
            print("fault", json.dumps(rec), flush=True)

    def violation(self, text):
        with self.lock:
            self.violations.append(text)

    # ---- processes ----
    def spawn(self, name, argv, out=None, err=None):
        o = open(out or os.path.join(self.dir, name + ".out"), "ab")
        e = open(err or os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        o.close()
        e.close()
        self.procs[name] = p
        return p

    def halt(self, name, sig=signal.SIGTERM, wait=15):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        p.send_signal(sig)
        try:
            return p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()

    def freeport(self):
        return int(subprocess.check_output([os.path.join(BUILD, "tools", "freeport")]).strip())

    @staticmethod
    def wait_port(port, secs=10):
        end = time.time() + secs
        while time.time() < end:
            try:
                import socket

                with socket.create_connection(("127.0.0.1", port), 0.5):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    # ---- simulator ----
    def sim(self, method, path, body=None, auth=False):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.sim_port, path), method=method)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", "Bearer " + STATIC)
        with urllib.request.urlopen(req, data, timeout=30) as r:
            text = r.read()
        return json.loads(text) if text else None

    def start_sim(self):
        pf = os.path.join(self.dir, "sim.port")
        self.spawn("sim", [os.path.join(BUILD, "tether-sim"), "--port", "0", "--port-file", pf,
                           "--quiet", "--zones", str(ZONES), "--locations", "2", "--rate", "2",
                           "--plate-rate", "0.5", "--incomplete", "25", "--late", "10",
                           "--seed", str(self.seed), "--token-ttl", "90"])
        for _ in range(100):
            if os.path.exists(pf) and open(pf).read().strip():
                break
            time.sleep(0.1)
        self.sim_port = int(open(pf).read())
        self.zones = [z["id"] for z in self.sim("GET", "/_sim/zones")["zones"]]

    # ---- broker and subscriber ----
    def start_broker(self):
        conf = os.path.join(self.dir, "mosquitto.conf")
        # started as root, mosquitto drops to its own user, which cannot write a 0700 temp
        # folder (run.sh's is): it would save nothing, and a restart would forget the
        # subscriber's session. As root it stays root, and the folder stays private
        os.makedirs(os.path.join(self.dir, "mq"), exist_ok=True)
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    "persistence_location %s/mq/\nautosave_interval 1\n"
                    "max_queued_messages 1000000\nmax_inflight_messages 100\n%s"
                    % (self.mqtt_port, self.dir, "user root\n" if os.geteuid() == 0 else ""))
        self.spawn("mosquitto", ["/usr/sbin/mosquitto", "-c", conf])
        if not self.wait_port(self.mqtt_port):
            raise RuntimeError("mosquitto did not start")

    def start_sub(self):
        # a durable QoS 1 session: what is published while it is away waits in the broker
        self.spawn("sub", ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.mqtt_port), "-q",
                           "1", "-c", "-i", "tb-soak-sub-%d" % os.getpid(), "-F", "%U %t %p",
                           "-t", "soak/#"], out=os.path.join(self.dir, "sub.txt"))
        time.sleep(0.3)
        if self.procs["sub"].poll() is not None:
            raise RuntimeError("mosquitto_sub exited: " + tail_of(self.dir, "sub.log"))

    # ---- receivers ----
    def start_recv(self, name):
        port = self.recv_ports[name]
        self.spawn("recv-" + name, [os.path.join(BUILD, "tools", "receiver"), "--port",
                                    str(port), "--log", os.path.join(self.dir, "recv-%s.jsonl" % name),
                                    "--retry-after", "2", "--hang-ms", "5000"] +
                   (["--secret", check.SECRET_B] if name == "b" else []))
        if not self.wait_port(port):
            raise RuntimeError("receiver %s did not start" % name)

    def recv_script(self, name, script):
        c = http.client.HTTPConnection("127.0.0.1", self.recv_ports[name], timeout=5)
        try:
            c.request("POST", "/_recv/script", script)
            c.getresponse().read()
        finally:
            c.close()

    # ---- the bridge ----
    def write_config(self):
        self.cfg = os.path.join(self.dir, "cfg.yaml")
        with open(self.cfg, "w") as f:
            f.write(check.config_yaml(self))

    def authorize(self):
        exe = os.path.join(BUILD, "tether-bridge")
        url = subprocess.check_output([exe, "auth", "url", "-c", self.cfg], text=True).strip()
        path = url.split("127.0.0.1:%d" % self.sim_port, 1)[1]
        c = http.client.HTTPConnection("127.0.0.1", self.sim_port, timeout=5)
        c.request("GET", path)
        loc = c.getresponse().getheader("Location")
        c.close()
        code = loc.split("code=", 1)[1].split("&", 1)[0]
        subprocess.check_call([exe, "auth", "exchange", code, "-c", self.cfg],
                              stdout=subprocess.DEVNULL)

    def start_bridge(self):
        with self.lock:
            self.bridge_expected_exit = False
            self.bridge = self.spawn("bridge", [os.path.join(BUILD, "tether-bridge"), "run", "-c",
                                                self.cfg], out=os.path.join(self.dir, "bridge.log"),
                                     err=os.path.join(self.dir, "bridge.log"))
            self.bridge_started = time.time()

    def signal_bridge(self, sig):
        """SIGKILL or SIGTERM and reap; returns (rc, seconds to exit)."""
        with self.lock:
            self.bridge_expected_exit = True
            p = self.bridge
        t = time.time()
        p.send_signal(sig)
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            self.violation("the bridge did not exit within 30 s of %s (pid %d)" % (sig.name, p.pid))
            p.kill()
            rc = p.wait()
        return rc, time.time() - t

    # ---- lanes: each its own seeded stream, so a seed replays each lane's schedule ----
    def lane(self, name, fn, *args):
        """Runs a lane; a harness error stops the run rather than passing silently."""
        try:
            fn(random.Random("%s-%s" % (self.seed, name)), *args)
        except Exception as e:  # noqa: BLE001 - reported as a harness failure
            self.violation("harness: lane %s failed: %r" % (name, e))
            self.stop.set()

    def sleep(self, secs):
        return self.stop.wait(secs)

    def lane_bridge(self, rng):
        self.sleep(WARMUP_S + 10)  # the first process gives the RSS baseline
        while not self.stop.is_set():
            kind = rng.choices(["bridge_kill9", "bridge_term", "bridge_hup"], [3, 2, 3])[0]
            if kind == "bridge_hup":
                self.log_fault(kind, pid=self.bridge.pid)
                self.bridge.send_signal(signal.SIGHUP)
            else:
                down = round(rng.uniform(0, 2), 2)
                sig = signal.SIGKILL if kind == "bridge_kill9" else signal.SIGTERM
                pid = self.bridge.pid
                rc, took = self.signal_bridge(sig)
                self.log_fault(kind, pid=pid, rc=rc, exit_s=round(took, 2), down_s=down)
                if sig == signal.SIGTERM:
                    self.stop_times.append(took)
                    if rc != 0:
                        self.violation("the bridge exited %s after SIGTERM (pid %d)" % (rc, pid))
                time.sleep(down)
                self.start_bridge()
                self.restarts += 1
            self.sleep(rng.uniform(0.5, 1.5) * self.gap)

    def lane_broker(self, rng):
        self.sleep(rng.uniform(0.3, 1.0) * self.gap)
        while not self.stop.is_set():
            down = round(rng.uniform(3, self.broker_max), 1)
            self.log_fault("broker_down", down_s=down)
            self.halt("sub")
            self.halt("mosquitto")
            time.sleep(down)
            self.start_broker()
            self.start_sub()
            self.sleep(rng.uniform(0.5, 1.5) * self.gap * 1.5)

    def lane_recv(self, rng, name):
        self.sleep(rng.uniform(0.2, 1.0) * self.gap)
        while not self.stop.is_set():
            kind = rng.choices(["hook_5xx", "hook_429", "hook_hang", "hook_down", "hook_4xx"],
                               [3, 3, 2, 2, 1])[0]
            n = rng.randint(1, 4)
            if kind == "hook_5xx":
                script = ",".join(rng.choice(["500", "502", "503"]) for _ in range(n)) + ",200"
            elif kind == "hook_429":
                script = ",".join(["429"] * n) + ",200"
            elif kind == "hook_hang":
                script = ",".join(["0"] * n) + ",200"
            elif kind == "hook_4xx":
                script = "400,200"  # one permanent failure: one dead letter
            if kind == "hook_down":
                down = round(rng.uniform(2, self.recv_max), 1)
                self.log_fault(kind, receiver=name, down_s=down)
                self.halt("recv-" + name, signal.SIGKILL)
                time.sleep(down)
                self.start_recv(name)
            else:
                self.log_fault(kind, receiver=name, script=script)
                self.recv_script(name, script)
            self.sleep(rng.uniform(0.5, 1.5) * self.gap)
        self.recv_script(name, "200")

    def lane_api(self, rng):
        self.sleep(rng.uniform(0.2, 1.0) * self.gap)
        kinds = {
            "api_5xx": lambda n: {"count": n, "status": rng.choice([500, 502, 503])},
            "api_429": lambda n: {"count": n, "status": 429, "retry_after": "2"},
            "api_malformed": lambda n: {"count": n, "body": "malformed"},
            "api_truncated": lambda n: {"count": n, "body": "truncated"},
            "api_cut": lambda n: {"count": n, "body": "cut"},
            "api_slow": lambda n: {"count": n, "delay_ms": 5000},
            "api_expired_token": lambda n: {"count": n, "status": 401},
        }
        names = sorted(kinds)
        while not self.stop.is_set():
            kind = rng.choice(names)
            body = kinds[kind](rng.randint(1, 6))
            self.log_fault(kind, fault=body)
            self.sim("POST", "/_sim/faults", body)
            self.sleep(rng.uniform(0.3, 1.0) * self.gap)
        self.sim("DELETE", "/_sim/faults")

    def lane_data(self, rng):
        """Regular plates (visits, watchlist) and events that escalate (cooldown)."""
        while not self.stop.is_set():
            if rng.random() < 0.7:
                self.sim("POST", "/_sim/lprs", {"zone_id": rng.choice(self.zones[:3]),
                                                "plate_number": rng.choice(REGULARS),
                                                "country": "GBR"})
            else:
                ev = self.sim("POST", "/_sim/events", {"zone_id": rng.choice(self.zones),
                                                       "complete": False, "severity": "normal",
                                                       "flags": ["motion"]})
                time.sleep(rng.uniform(0.5, 3))
                patch = {"complete": True}
                if rng.random() < 0.6:
                    patch["severity"] = rng.choice(["medium", "high", "critical"])
                if rng.random() < 0.5:
                    patch["flags"] = ["motion", "intrusion"]
                self.sim("PATCH", "/_sim/events/" + ev["data"]["id"], patch)
            self.sleep(rng.uniform(0.3, 2.5))

    def sampler(self):
        while not self.stop.is_set() or not self.sampler_stop.is_set():
            with self.lock:
                p, started = self.bridge, self.bridge_started
                expected = self.bridge_expected_exit
            if p is not None and p.poll() is not None and not expected:
                self.violation("the bridge exited by itself with %s (pid %d); log: %s" % (
                    p.returncode, p.pid, check.tail(os.path.join(self.dir, "bridge.log"))))
                with self.lock:
                    self.bridge_expected_exit = True
            elif p is not None and p.poll() is None:
                s = read_proc(p.pid)
                if s:
                    self.samples.append((time.time() - self.t0, p.pid,
                                         time.time() - started, s[0], s[1]))
            time.sleep(1)

    def outbox_count(self):
        try:
            db = sqlite3.connect("file:%s/state/state.db?mode=ro" % self.dir, uri=True, timeout=5)
            try:
                return db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            return None

    # ---- the run ----
    def run(self):
        self.mqtt_port = self.freeport()
        self.recv_ports = {"a": self.freeport(), "b": self.freeport()}
        self.start_sim()
        self.start_broker()
        self.start_sub()
        for n in self.recv_ports:
            self.start_recv(n)
        self.write_config()
        self.authorize()
        self.start_bridge()
        self.sampler_stop = threading.Event()
        lanes = [threading.Thread(target=self.lane, args=(n, f)) for n, f in (
            ("bridge", self.lane_bridge), ("broker", self.lane_broker), ("api", self.lane_api),
            ("data", self.lane_data))]
        for n in self.recv_ports:
            lanes.append(threading.Thread(target=self.lane, args=("recv-" + n, self.lane_recv, n)))
        for t in lanes:
            t.daemon = True
        sampler = threading.Thread(target=self.sampler, daemon=True)
        for t in lanes:
            t.start()
        sampler.start()
        self.stop.wait(self.duration)
        self.stop.set()
        for t in lanes:
            t.join()
        fault_end = time.time() - self.t0
        if self.bridge.poll() is not None:
            self.start_bridge()
        # no new data; let open events complete, then read what exists
        self.sim("PUT", "/_sim/config", {"rate": 0, "plate_rate": 0})
        for _ in range(60):
            if self.sim("GET", "/_sim/stats")["open_events"] == 0:
                break
            time.sleep(0.5)
        truth = {"zones": self.sim("GET", "/api/v3p/zones", auth=True), "events": {}, "lprs": {}}
        for z in self.zones:
            truth["events"][z] = self.sim("GET", "/api/v3p/events?zone_id=" + z, auth=True)["data"]
            truth["lprs"][z] = self.sim("GET", "/api/v3p/lpr?zone_id=" + z, auth=True)["data"]
        truth["stats"] = self.sim("GET", "/_sim/stats")
        with open(os.path.join(self.dir, "truth.json"), "w") as f:
            json.dump(truth, f)
        # drain: every expected delivery arrived and the outbox is empty
        # an entry the faults pushed to the longest webhook retry delay (WEBHOOK_BACKOFF_MAX_MS,
        # 5 min) is late, not lost: the drain waits that long and 30 s more before judging
        drain_max = max(330.0, min(600.0, self.duration / 4))
        t = time.time()
        drained = False
        while time.time() - t < drain_max:
            if self.outbox_count() == 0 and not check.missing(self.dir, self.cfg_rules):
                drained = True
                break
            time.sleep(2)
        self.drain_s = time.time() - t
        time.sleep(3)  # quiet: the final sample is the bridge at rest
        s = read_proc(self.bridge.pid)
        if s:
            self.samples.append((time.time() - self.t0, self.bridge.pid, time.time() - self.bridge_started,
                                 s[0], s[1], "final"))
        self.sampler_stop.set()
        rc, took = self.signal_bridge(signal.SIGTERM)
        self.stop_times.append(took)
        sampler.join()
        if rc != 0:
            self.violation("the bridge exited %s after the final SIGTERM" % rc)
        left = self.outbox_count()
        dlq = subprocess.run([os.path.join(BUILD, "tether-bridge"), "dlq", "list", "-c", self.cfg],
                             capture_output=True, text=True)
        with open(os.path.join(self.dir, "dlq.jsonl"), "w") as f:
            f.write(dlq.stdout)
        if dlq.returncode != 0:
            self.violation("dlq list failed: " + dlq.stderr.strip())
        for n in ("sub", "recv-a", "recv-b", "mosquitto", "sim"):
            self.halt(n)
        run = {"duration_s": self.duration, "fault_s": fault_end, "seed": self.seed,
               "faults": self.counts, "restarts": self.restarts, "outbox_left": left,
               "drained": drained, "drain_s": self.drain_s, "drain_max": drain_max,
               "stop_s_max": max(self.stop_times) if self.stop_times else 0,
               "violations": self.violations, "samples": self.samples,
               "warmup_s": WARMUP_S, "sim_requests": truth["stats"].get("requests"),
               # an ASan build keeps freed memory in its quarantine (up to 256 MiB): its RSS
               # says nothing of leaks, which LeakSanitizer judges at each exit instead
               "sanitized": "asan" in os.path.basename(os.path.normpath(BUILD))}
        with open(os.path.join(self.dir, "run.json"), "w") as f:
            json.dump(run, f)
        return check.main(self.dir)

    def cleanup(self):
        self.stop.set()
        for name, p in self.procs.items():
            if p.poll() is None:
                p.kill()
                p.wait()


def tail_of(d, name):
    return check.tail(os.path.join(d, name))


def read_proc(pid):
    """(VmRSS in KiB, open descriptors) of a live process, or None."""
    try:
        rss = 0
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, ValueError):
        return None


def on_term(sig, frame):
    raise KeyboardInterrupt  # cleanup below stops every process the soak started


def main():
    signal.signal(signal.SIGTERM, on_term)
    duration = parse_duration(os.environ.get("SOAK", "5m"))
    seed = int(os.environ.get("SEED", str(int(time.time()) % 100000)))
    s = Soak(duration, seed)
    s.cfg_rules = None
    print("soak: SOAK=%ds SEED=%d dir %s" % (duration, seed, s.dir), flush=True)
    rc = 1
    try:
        rc = s.run()
    except (Exception, KeyboardInterrupt) as e:  # the harness broke or was stopped
        import traceback

        traceback.print_exc()
        print("soak: FAIL harness error: %s" % e)
        rc = 2
    finally:
        s.cleanup()
    if rc == 0 and os.environ.get("KEEP", "0") != "1":
        subprocess.call(["rm", "-rf", s.dir])
    else:
        print("soak: run dir kept: %s (replay: SEED=%d SOAK=%s make soak; re-check: "
              "python3 tests/soak/check.py %s)" % (s.dir, seed, os.environ.get("SOAK", "5m"), s.dir))
        # a caller whose temporary folder goes away with it (make test) names a lasting copy
        save = os.environ.get("SOAK_SAVE")
        if rc != 0 and save:
            import shutil

            shutil.rmtree(save, ignore_errors=True)
            shutil.copytree(s.dir, save, symlinks=True, ignore_dangling_symlinks=True)
            print("soak: a copy of the run dir for later: %s" % save)
    return rc


if __name__ == "__main__":
    sys.exit(main())
