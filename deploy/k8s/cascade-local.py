#!/usr/bin/env python3
# Runs the exact cascade of deploy/k8s/cascade/ without Kubernetes, as a check of the
# manifests' own command lines: every container's command and args exactly as the manifests
# give them (the pod's env substituted: SHARD_INDEX, JOB_COMPLETION_INDEX, SHARD_COUNT), with
# /etc/blindlink/ and /data/ mapped into WORKDIR and each shard's server on its own loopback
# port (stage K's pod I: 28500 + 10 K + I, for --listen and the link's --peer-address), in the
# order of cascade.sh's loop (apply -> start the file's objects; wait_jobs -> wait for them and
# require exit 0; delete -> SIGTERM the StatefulSet's servers, which drain, and wait). Then the
# unsharded cascade with the same configs, and the merged links compared with it as sets of
# linked pairs. Not run by .ci/run (it needs a release binary and PyYAML); see
# papers/scale.md section 7 for a run.
#
# usage: deploy/k8s/cascade-local.py BIN DEPLOY_DIR WORKDIR [--unstaged]
#   --unstaged: the unstaged manifests instead (split.yaml, registry.yaml, insurer.yaml,
#   merge.yaml, in deploy/README.md's order; the registry's merge from its shard root here).
#   WORKDIR holds data/registry.csv and data/insurer.csv (blindlink synth), certs/ (blindlink
#   certs: ca.pem, registry.pem/.key, insurer.pem/.key), linkage.key (blindlink keygen) and
#   schema.toml (examples/peers/schema.toml); its etc/ and data/out, data/split are written.
import csv, os, re, socket, subprocess, sys, time
import yaml
BIN, DEPLOY, W = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3])
BASE = 28500
K8S = os.path.join(DEPLOY, "k8s")
def remap(s):
    return s.replace("/etc/blindlink/", f"{W}/etc/").replace("/data/", f"{W}/data/")
# The ConfigMap, Secrets as files.
cm = [d for d in yaml.safe_load_all(open(f"{K8S}/config.yaml")) if d["kind"] == "ConfigMap"][0]
os.makedirs(f"{W}/etc/config", exist_ok=True)
for name, text in cm["data"].items():
    text = open(f"{W}/schema.toml").read() if name == "schema.toml" else remap(text)
    open(f"{W}/etc/config/{name}", "w").write(text)
os.makedirs(f"{W}/etc/tls", exist_ok=True); os.makedirs(f"{W}/etc/key", exist_ok=True)
for f in ("ca.pem", "registry.pem", "registry.key", "insurer.pem", "insurer.key"):
    subprocess.run(["cp", f"{W}/certs/{f}", f"{W}/etc/tls/{f}"], check=True)
subprocess.run(["cp", f"{W}/linkage.key", f"{W}/etc/key/linkage.key"], check=True)
log = open(f"{W}/commands.txt", "w")
def argv(container, env, k):
    out = [container["command"][0]] + list(container["args"])
    res = []
    for a in out:
        for n, v in env.items():
            a = a.replace(f"$({n})", v)
        a = remap(a)
        a = re.sub(r"^0\.0\.0\.0:7443$", f"127.0.0.1:{BASE + 10 * k + int(env.get('SHARD_INDEX', 0))}", a)
        m = re.match(r"^registry(?:-stage-(\d+))?-(\d+)\.registry(?:-stage-\d+)?:7443$", a)
        if m:
            a = f"127.0.0.1:{BASE + 10 * int(m.group(1) or 0) + int(m.group(2))}"
        res.append(a)
    res[0] = BIN
    return res
def start(cmd, name):
    print(name, " ".join(cmd).replace(BIN, "blindlink"), file=log, flush=True)
    return subprocess.Popen(cmd + ["--quiet"] if cmd[1] in ("serve", "link", "split", "merge") else cmd,
                            stderr=open(f"{W}/{name}.log", "w"))
def wait_port(port, proc):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close(); return
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"server exited {proc.returncode}")
            time.sleep(0.2)
UNSTAGED = len(sys.argv) > 4 and sys.argv[4] == "--unstaged"
# The steps: (what, names, stage). The cascade's from cascade.sh's loop; the unstaged
# manifests' from deploy/README.md's order, plus the registry's drain (merge.yaml merges the
# insurer only; the registry's merge is run here from its shard root).
steps = []
if UNSTAGED:
    steps = [("apply", ["split.yaml"], 0), ("wait", ["registry-split", "insurer-split"], 0),
             ("apply", ["registry.yaml"], 0), ("apply", ["insurer.yaml"], 0),
             ("wait", ["insurer-link"], 0), ("delete", ["statefulset/registry"], 0),
             ("apply", ["merge.yaml"], 0), ("wait", ["insurer-merge"], 0)]
else:
    script = open(f"{K8S}/cascade/cascade.sh").read()
    body = script.split("for ((k = 0; k < STAGES; k++)); do\n", 1)[1].split("\ndone\n", 1)[0]
    body = body.replace("\\\n", " ").splitlines()
    keys = int(re.search(r"STAGES=\$\{1:-(\d+)\}", script).group(1))   # cascade.sh's default
    for k in range(keys):
        for line in body:
            line = line.strip()
            q = [w.replace("$k", str(k)) for w in line.split('"')[1::2]]
            if " apply -f " in line:
                steps.append(("apply", [q[0].replace("$HERE/", "cascade/")], k))
            elif line.startswith("wait_jobs "):
                steps.append(("wait", q, k))
            elif " delete " in line:
                steps.append(("delete", [o for o in q if "/" in o], k))
running = {}   # object name -> [processes]
for what, names, k in steps:
    if what == "apply":
        docs = list(yaml.safe_load_all(open(f"{K8S}/{names[0]}")))
        servers = [d for d in docs if d["kind"] == "StatefulSet"]
        jobs = [d for d in docs if d["kind"] == "Job"]
        for d in servers:
            n = d["spec"]["replicas"]; c = d["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e.get("value") for e in c["env"]}
            procs = []
            for i in range(n):
                env.update(SHARD_INDEX=str(i))
                procs.append(start(argv(c, env, k), f"{d['metadata']['name']}-{i}"))
            for i, p in enumerate(procs):
                wait_port(BASE + 10 * k + i, p)
            running[d["metadata"]["name"]] = procs
        for d in jobs:
            c = d["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            n = d["spec"].get("completions", 1)
            procs = []
            for i in range(n):
                env.update(JOB_COMPLETION_INDEX=str(i))
                procs.append(start(argv(c, env, k), f"{d['metadata']['name']}-{i}"))
            running[d["metadata"]["name"]] = procs
    elif what == "wait":
        for job in names:
            for p in running[job]:
                if p.wait() != 0:
                    sys.exit(f"job {job} failed: see {W}/{job}-*.log")
            print(f"stage {k}: job/{job} complete", flush=True)
    else:
        for obj in names:
            if obj.startswith("statefulset/"):
                for p in running[obj.split("/")[1]]:
                    p.terminate()
                for p in running[obj.split("/")[1]]:
                    p.wait()
                print(f"stage {k}: {obj} drained", flush=True)
out = f"{W}/data/out"
if UNSTAGED:
    subprocess.run([BIN, "merge", "--quiet", "--out", f"{out}/registry-merged", f"{out}/registry"], check=True)
# The unsharded run with the same configs.
SUFFIX = "" if UNSTAGED else "-cascade"
for party in ("registry", "insurer"):
    text = open(f"{W}/etc/config/{party}{SUFFIX}.toml").read()
    text = text.replace(f'dir = "{W}/data/out/{party}{SUFFIX}"', f'dir = "{W}/data/out/unsharded-{party}"')
    open(f"{W}/etc/config/{party}-u.toml", "w").write(text)
srv = start([BIN, "serve", "--config", f"{W}/etc/config/registry-u.toml", "--listen", f"127.0.0.1:{BASE + 99}"], "u-serve")
wait_port(BASE + 99, srv)
subprocess.run([BIN, "link", "--quiet", "--config", f"{W}/etc/config/insurer-u.toml", "--peer-address", f"127.0.0.1:{BASE + 99}"], check=True)
srv.terminate(); srv.wait()
def pairs(reg_dir, ins_dir):
    rows = lambda p: list(csv.DictReader(open(p, newline="")))
    reg, ins = rows(f"{reg_dir}/links.csv"), rows(f"{ins_dir}/links.csv")
    by = {r["link_id"]: r["local_record_id"] for r in ins if r["link_id"]}
    return len(reg), {(r["local_record_id"], by[r["link_id"]]) for r in reg if r["link_id"]}
def session_dir(root):
    subs = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))]
    return os.path.join(root, subs[0]) if len(subs) == 1 and not os.path.exists(f"{root}/links.csv") else root
out = f"{W}/data/out"
ru, u = pairs(session_dir(f"{out}/unsharded-registry"), f"{out}/unsharded-insurer")
if UNSTAGED:
    rm, m = pairs(f"{out}/registry-merged", f"{out}/insurer-merged")
else:
    rm, m = pairs(f"{out}/registry-cascade-merged", f"{out}/insurer-cascade-merged")
print(f"unsharded: {ru} rows, {len(u)} linked pairs; merged: {rm} rows, {len(m)} linked pairs")
print("OK: the merged links equal the unsharded links (as sets)" if u == m else "DIFFERENT")
