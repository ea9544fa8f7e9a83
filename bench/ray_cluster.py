"""A real Ray cluster, started as a user starts one, losing a node mid-run.

The recipe this script follows on one machine (on a real cluster, each `ray start` runs on its
own machine and HEAD is the head's address):

    export RAY_AUTH_MODE=token                 # on every node, and where run_all.py runs
    ray get-auth-token --generate              # once; copy ~/.ray/auth_token to every node
    ray start --head --port 6379 --num-cpus 0  # the head schedules and stores; it trains nothing
    ray start --address HEAD:6379              # each worker machine (all its cores)
    python run_all.py --study init --executor ray --ray-address HEAD:6379

Here: a head and two worker nodes of one CPU each, as separate `ray start` processes; a small
study (Fashion-MNIST, 4 packs and 8 lone RandAugment trials) with `--ray-address`; once
`--kill-after` records are stored and a worker of that node is training, SIGKILL of one
worker node's raylet. A task lost with its
node runs again on the other node. Then the checks:
- every planned trial is stored once, `ok`, and every number equals the inline run's;
- the trials trained across the runs add up to the plan (none lost, none trained twice);
- the same command again trains nothing.
Exit 0 when all hold. Stops every Ray process of this machine at the end (`ray stop`).

    python bench/ray_cluster.py [--kill-after 3] [--port 6390]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import ROOT, machine  # noqa: E402

STUDY = {
    "name": "cluster", "title": "Ray cluster check", "question": "Does a lost node lose or change a trial?",
    "dataset": "fashion_mnist", "model": {"family": "mlp", "depth": 2, "width": 64},
    "factors": {"activation": ["relu", "tanh"], "kernel_initializer": ["he_normal", "glorot_uniform"],
                "augmentation": ["none", "randaugment"]},
    "training": {"optimizer": "sgd", "learning_rate": 0.05, "batch_size": 64},
    "profiles": {"smoke": {"train_examples": 512, "epochs": 1, "seeds": 1},
                 "quick": {"train_examples": 3000, "epochs": 3, "seeds": 2},
                 "full": {"train_examples": 3000, "epochs": 3, "seeds": 2}},
    "claims": [{"id": "C1", "text": "He beats Glorot", "metric": "val_accuracy",
                "better": {"kernel_initializer": "he_normal"}, "worse": {"kernel_initializer": "glorot_uniform"},
                "margin": 0.01, "margin_reason": "one point of accuracy", "needs": "training"}],
}
VOLATILE = {"timing", "provenance", "traceback", "packed"}  # machine facts and seconds, not numbers of the nets
WORKER_PORTS = (46601, 46602)  # each worker node's raylet port: how its process is found


def ray(*args: str, env: dict) -> None:
    done = subprocess.run(["ray", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ray {' '.join(args)} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")


def raylet_pid(port: int) -> int:
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "raylet" in command.split(" ")[0] and re.search(rf"--node_manager_port={port}\b", command):
            return int(proc.name)
    raise SystemExit(f"no raylet listens on port {port}")


def busy(raylet: int) -> bool:
    """Is a worker process of this raylet running a trial now? (Ray titles it after the task.)"""
    for proc in Path("/proc").iterdir():
        try:
            status = (proc / "status").read_text()
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f"\nPPid:\t{raylet}\n" in status and command.startswith("ray::_run_in_ray_task"):
            return True
    return False


def records(results: Path) -> dict:
    found = {}
    for path in (results / "cluster").glob("*.json"):
        record = json.loads(path.read_text())
        found[record["key"]] = record
    return found


def numbers(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in VOLATILE}


def trained(stderr: str) -> int:
    match = re.search(r"ran (\d+) trials", stderr)
    return int(match.group(1)) if match else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-after", type=int, default=3, help="records stored before the node dies")
    parser.add_argument("--port", type=int, default=6390, help="the head's port")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ray-cluster-"))
    (scratch / "studies").mkdir()
    (scratch / "studies" / "cluster.yaml").write_text(yaml.safe_dump(STUDY, sort_keys=False))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "TF_CPP_MIN_LOG_LEVEL": "2"}

    def command(results: str, *extra: str) -> list[str]:
        return [sys.executable, str(ROOT / "run_all.py"), "--studies-dir", str(scratch / "studies"), "--study", "cluster",
                "--profile", "quick", "--quiet", "--results", str(scratch / results),
                "--out", str(scratch / results / "reports"), *extra]

    print(f"Machine: {machine()}; Ray cluster of a head (0 CPUs) and two worker nodes (1 CPU each)")
    started = time.perf_counter()
    subprocess.run(command("inline", "--executor", "inline"), env=env, check=True, capture_output=True)
    reference = records(scratch / "inline")
    print(f"1. inline reference: {len(reference)} trials in {time.perf_counter() - started:.0f} s")

    address = f"127.0.0.1:{args.port}"
    cluster = [*command("cluster", "--executor", "ray", "--ray-address", address)]
    try:
        subprocess.run(["ray", "get-auth-token", "--generate"], env=env, capture_output=True)  # kept if one exists
        ray("start", "--head", "--port", str(args.port), "--num-cpus", "0", "--include-dashboard=false", env=env)
        for port in WORKER_PORTS:
            ray("start", "--address", address, "--num-cpus", "1", "--node-manager-port", str(port), env=env)
        print(f"2. cluster up: head {address}, worker raylets on ports {WORKER_PORTS}")

        started = time.perf_counter()
        run = subprocess.Popen(cluster, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        victim = raylet_pid(WORKER_PORTS[0])
        while (len(records(scratch / "cluster")) < args.kill_after or not busy(victim)) and run.poll() is None:
            time.sleep(0.1)
        stored_before = len(records(scratch / "cluster"))
        training = busy(victim)
        os.kill(victim, signal.SIGKILL)
        print(f"3. {stored_before} trials stored after {time.perf_counter() - started:.0f} s: SIGKILL to the raylet of "
              f"worker node 1 (pid {victim}), {'while' if training else 'NOT while'} one of its workers trained")
        _, stderr = run.communicate()
        first = {"exit": run.returncode, "ran": trained(stderr), "seconds": time.perf_counter() - started}
        after_first = records(scratch / "cluster")
        errors = sum(r["status"] != "ok" for r in after_first.values())
        print(f"4. the run ended with exit {first['exit']} after {first['seconds']:.0f} s: {first['ran']} trials "
              f"trained, {len(after_first)} stored, {errors} not ok")
        again = subprocess.run(cluster, env=env, capture_output=True, text=True)
        print(f"5. the same command again: exit {again.returncode}, {trained(again.stderr)} trials trained")
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True)

    stored = records(scratch / "cluster")
    checks = {
        "every planned trial stored once, ok": stored.keys() == reference.keys()
        and len(list((scratch / "cluster" / "cluster").glob("*.json"))) == len(reference)
        and all(r["status"] == "ok" for r in stored.values()),
        "every number equals the inline run's": all(numbers(stored[k]) == numbers(r) for k, r in reference.items()
                                                    if k in stored),
        "the first run stored each trial once; the second trained only what the first left unfinished":
            first["ran"] == len(after_first) and trained(again.stderr) == errors + len(reference) - len(after_first),
        "trials ran on both worker nodes": len({r["provenance"].get("ray_node") for r in stored.values()}) == 2,
        "the node died while it trained": training,
    }
    for name, ok in checks.items():
        print(f"   {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
