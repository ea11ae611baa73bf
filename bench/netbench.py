"""What bench/compare_http and bench/compare_echo share: the server table's entries, starting a server pinned to
a CPU on a free port and stopping it, running a pinned load generator, interleaved rounds, medians, the table
and the target lines, and installing missing Debian packages the way scripts/lib/deps.sh does.

Each script describes its servers as a list of Server(name, title, argv, ...), where argv may use {build},
{repo}, {port} and {dir} (a fresh temporary directory for that start), and its workloads as a list of
Workload(key, label, run) where run(port) returns one figure (higher is better) or raises CheckFailed.
netbench.main() does the rest; adding a server or a workload is one entry.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
BUILD_HINT = "cmake --preset release && cmake --build --preset release"


class CheckFailed(Exception):
    """A server or a load generator did something wrong: the run's figure is not used."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(prog, msg):
    sys.exit(f"{prog}: {msg}")


# ---------------------------------------------------------------------------------------------------------
# Debian packages (as in scripts/lib/deps.sh: only from the configured archive, with apt-get)


def package_installed(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    return "install ok installed" in out


def package_version(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip()
    return out.split("-")[0].split("+")[0].split(":")[-1] if out else "?"


def need_packages(pkgs, allowed):
    """Installs the packages that are missing (if allowed); returns the ones still missing."""
    missing = [p for p in pkgs if not package_installed(p)] if shutil.which("dpkg-query") else list(pkgs)
    if not missing or not allowed or not shutil.which("apt-get"):
        return missing
    log(f"corio bench: installing Debian packages: {' '.join(missing)}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env,
                   stdout=subprocess.DEVNULL)
    return [p for p in pkgs if not package_installed(p)]


# ---------------------------------------------------------------------------------------------------------
# servers


def free_port():
    """A port nothing listens on now (the kernel picks it; the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One row of a script's server table.

    argv: the command, with {build}, {repo}, {port}, {dir} substituted.
    packages: Debian packages it needs at run time (installed when missing, unless --no-install).
    available: optional fn(ctx) -> None or why it cannot run (checked after the packages).
    setup: optional fn(dir, port) called before each start (e.g. writes a config file into dir).
    missing_hint: what to do when argv[0] does not exist.
    env: optional extra environment variables (e.g. {"CORIO_BACKEND": "io_uring"} for a second corio row).
    """

    def __init__(self, name, title, argv, packages=(), available=None, setup=None, missing_hint=None, env=None):
        self.name, self.title, self.argv, self.env = name, title, argv, dict(env or {})
        self.packages, self.available, self.setup = tuple(packages), available, setup
        self.missing_hint = missing_hint or f"not built ({BUILD_HINT})"

    def command(self, ctx, port, dir_):
        return [a.format(build=ctx.build, repo=REPO, port=port, dir=dir_) for a in self.argv]

    def why_not(self, ctx):
        """None when the server can run, else the reason (one line)."""
        missing = need_packages(self.packages, ctx.install)
        if missing:
            return f"skipped: missing Debian package(s) {' '.join(missing)} (apt-get install {' '.join(missing)})"
        exe = self.command(ctx, 0, "")[0]
        if not os.access(exe, os.X_OK):
            return self.missing_hint
        return self.available(ctx) if self.available else None


class Running:
    """A started server: its process (the pinned command itself: taskset execs it), port and log."""

    def __init__(self, server, proc, port, dir_, log_path):
        self.server, self.proc, self.port, self.dir, self.log_path = server, proc, port, dir_, log_path

    def output_tail(self, n=2000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self, timeout=5.0):
        """SIGTERM, then wait; a server that ignores it is killed and that is reported (CheckFailed)."""
        if self.proc.poll() is not None:
            raise CheckFailed(f"{self.server.name} had already exited with status {self.proc.returncode}:\n"
                              f"{self.output_tail()}")
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CheckFailed(f"{self.server.name} did not exit within {timeout:g} s of SIGTERM (killed)")
        if rc not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            raise CheckFailed(f"{self.server.name} exited with status {rc} after SIGTERM:\n{self.output_tail()}")

    def kill(self):
        """Ends the server's process group (what is left of it after stop(), or all of it)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait()


def start_server(ctx, server, timeout=10.0):
    """Starts the server pinned to ctx.server_cpu on a free port; returns once the port accepts."""
    port = free_port()
    dir_ = tempfile.mkdtemp(prefix=f"{server.name}-", dir=ctx.tmp)
    if server.setup:
        server.setup(dir_, port)
    cmd = ["taskset", "-c", str(ctx.server_cpu)] + server.command(ctx, port, dir_)
    log("+ " + "".join(f"{k}={v} " for k, v in server.env.items()) + " ".join(cmd))
    log_path = os.path.join(dir_, "output.log")
    with open(log_path, "wb") as out:
        # Its own session: kill() can then end whatever it started too (nginx's worker, a wrapper's child).
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=dict(os.environ, **server.env))
    running = Running(server, proc, port, dir_, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise CheckFailed(f"{server.name} exited with status {proc.returncode} before accepting:\n"
                              f"{running.output_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return running
        except OSError:
            pass
        if time.monotonic() > deadline:
            running.kill()
            raise CheckFailed(f"{server.name} did not accept on 127.0.0.1:{port} within {timeout:g} s")
        time.sleep(0.02)


def run_client(ctx, argv, timeout):
    """Runs a load generator pinned to ctx.client_cpu; returns its stdout (CheckFailed on failure)."""
    cmd = ["taskset", "-c", str(ctx.client_cpu)] + argv
    log("+ " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{os.path.basename(argv[0])} did not finish within {timeout:g} s")
    if proc.returncode != 0:
        raise CheckFailed(f"{' '.join(argv)} exited with status {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def session_cpu_seconds(sid):
    """User + system CPU seconds of every live process in session `sid` (a server and what it forked, e.g.
    nginx's worker): read from /proc/PID/stat."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): session is field 6, utime 14, stime 15
        if int(fields[3]) == sid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def children_cpu_seconds():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------------------------------
# the driver


class Workload:
    """One column: key (for JSON), label (for the table), run(ctx, port) -> figure (higher is better)."""

    def __init__(self, key, label, run):
        self.key, self.label, self.run = key, label, run


class Context:
    pass


def add_common_args(ap, default_rounds, default_duration):
    ap.add_argument("--build-dir", default="build/release", help="where corio and the peers were built")
    ap.add_argument("--rounds", type=int, default=default_rounds, help="interleaved rounds (medians are reported)")
    ap.add_argument("--duration", type=int, default=default_duration, help="seconds per load run")
    ap.add_argument("--only", default="", help="comma-separated server names (default: all)")
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU the servers are pinned to")
    ap.add_argument("--client-cpu", type=int, default=1, help="CPU the load generator is pinned to")
    ap.add_argument("--check", action="store_true", help="only start each server and check its answers (no load)")
    ap.add_argument("--json", metavar="FILE", help="also write every run's figures to FILE")
    ap.add_argument("--verbose", action="store_true", help="also print every run's figures")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    ap.add_argument("--no-install", action="store_true", help="skip what needs a missing package (no apt-get)")


def make_context(prog, args):
    ctx = Context()
    ctx.prog = prog
    build = args.build_dir
    if not os.path.isdir(build) and os.path.isdir(os.path.join(REPO, build)):
        build = os.path.join(REPO, build)
    if not os.path.isdir(build):
        die(prog, f"build directory {args.build_dir} not found; build first: {BUILD_HINT}")
    ctx.build = os.path.abspath(build)
    ctx.install = not args.no_install
    ctx.server_cpu, ctx.client_cpu = args.server_cpu, args.client_cpu
    ctx.duration = args.duration
    if not shutil.which("taskset"):
        die(prog, "taskset not found (Debian package util-linux)")
    cpus = os.sched_getaffinity(0)
    for cpu in (ctx.server_cpu, ctx.client_cpu):
        if cpu not in cpus:
            die(prog, f"CPU {cpu} is not available here (have {sorted(cpus)}); use --server-cpu/--client-cpu")
    if ctx.server_cpu == ctx.client_cpu:
        log(f"{prog}: warning: server and client share CPU {ctx.server_cpu}")
    return ctx


def select_servers(prog, ctx, servers, only):
    """The servers to run (in table order), and the lines saying why the others are not run."""
    names = [s.name for s in servers]
    wanted = [n.strip() for n in only.split(",") if n.strip()] if only else names
    for n in wanted:
        if n not in names:
            die(prog, f"--only: unknown server '{n}' (known: {', '.join(names)})")
    chosen, notes = [], {}
    for s in servers:
        if s.name not in wanted:
            continue
        why = s.why_not(ctx)
        if why:
            notes[s.name] = why
            log(f"{prog}: {s.name}: {why}")
        else:
            chosen.append(s)
    return chosen, notes


def run_rounds(ctx, servers, rounds, per_start):
    """Rounds of: for each server (order rotating by one each round) start it, per_start(running) -> {key:
    figure}, stop it. Returns (runs: name -> key -> [figures], failures: [text])."""
    runs = {s.name: {} for s in servers}
    failures = []
    for r in range(rounds):
        log(f"== round {r + 1}/{rounds}")
        k = r % len(servers) if servers else 0
        for server in servers[k:] + servers[:k]:
            try:
                running = start_server(ctx, server)
            except CheckFailed as e:
                failures.append(f"round {r + 1}, {server.name}: {e}")
                log(f"{ctx.prog}: FAILED: {failures[-1]}")
                continue
            try:
                for key, value in per_start(running, failures, r).items():
                    runs[server.name].setdefault(key, []).append(value)
            finally:
                try:
                    running.stop()
                except CheckFailed as e:
                    failures.append(f"round {r + 1}, {server.name}: {e}")
                    log(f"{ctx.prog}: FAILED: {failures[-1]}")
                running.kill()
    return runs, failures


def median(runs, name, key):
    vals = runs.get(name, {}).get(key)
    return statistics.median(vals) if vals else None


def print_results(ctx, title, setup_lines, servers, notes, workloads, runs, unit, target_ratio):
    """The table (medians, and peer / corio per workload) and one target line per workload. Returns the
    target results [(workload label, met or None)]."""
    print()
    print(title)
    for line in setup_lines:
        print(line)
    print(f"host: {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}; server on CPU "
          f"{ctx.server_cpu}, load generator on CPU {ctx.client_cpu}; load average {ctx.load_before[0]:.2f} "
          f"before, {ctx.load_after[0]:.2f} after; build dir {ctx.build}")
    names = [s.name for s in servers]
    has_corio = "corio" in names
    wname = max([len("server")] + [len(s.name) + 1 for s in servers] + [len(n) + 1 for n in notes])
    cols = [f"{w.label} {unit}" for w in workloads]
    ratio_cols = [f"{w.label} peer/corio" for w in workloads] if has_corio else []
    widths = [max(12, len(c)) for c in cols + ratio_cols]
    header = f"{'server':<{wname}}" + "".join(f"  {c:>{w}}" for c, w in zip(cols + ratio_cols, widths))
    print(header)
    print("-" * len(header))
    for s in servers:
        line = f"{s.name:<{wname}}"
        for w, width in zip(workloads, widths):
            v = median(runs, s.name, w.key)
            line += f"  {'FAILED' if v is None else f'{v:,.0f}':>{width}}"
        for w, width in zip(workloads, widths[len(workloads):]):
            v, c = median(runs, s.name, w.key), median(runs, "corio", w.key)
            line += f"  {'-' if v is None or not c or s.name == 'corio' else f'{v / c:.2f}x':>{width}}"
        print(line)
    for name, why in notes.items():
        print(f"{name + ':':<{wname}}  {why}")
    if ratio_cols:
        print("(peer/corio below 1: corio is faster)")
    print()
    # The server's own cost, which the throughput hides when the load generator is the bottleneck.
    print(f"server CPU per unit of work (user + system microseconds, lower is better) and load generator busy %:")
    header2 = f"{'server':<{wname}}" + "".join(f"  {w.label + ' us':>16}  {w.label + ' client%':>16}" for w in workloads)
    print(header2)
    print("-" * len(header2))
    for s in servers:
        line = f"{s.name:<{wname}}"
        for w in workloads:
            us, busy = median(runs, s.name, w.key + ":server_us"), median(runs, s.name, w.key + ":client_busy")
            line += f"  {'-' if us is None else f'{us:.2f}':>16}  {'-' if busy is None else f'{busy:.0f}%':>16}"
        print(line)
    print("(client% near 100: the load generator, not the server, limits the throughput above)")
    print()
    results = []
    for w in workloads:
        peers = [(median(runs, s.name, w.key), s.name) for s in servers if s.name != "corio"]
        peers = [p for p in peers if p[0] is not None]
        best = max(peers) if peers else None
        c = median(runs, "corio", w.key)
        what = f"target ({w.label}): corio >= {target_ratio:g}x the best peer"
        if c is None:
            why = ("corio: no valid run" if has_corio else
                   f"corio: {notes['corio']}" if "corio" in notes else "corio: not selected by --only")
            print(f"{what}: not evaluated ({why})")
            results.append((w.label, None))
        elif best is None:
            print(f"{what}: not evaluated (no peer ran)")
            results.append((w.label, None))
        else:
            met = c >= target_ratio * best[0]
            print(f"{what}: {'MET' if met else 'MISSED'} (corio {c:,.0f} {unit} = {c / best[0]:.2f}x "
                  f"{best[1]} {best[0]:,.0f})")
            costs = [(median(runs, s.name, w.key + ":server_us"), s.name) for s in servers if s.name != "corio"]
            costs = [x for x in costs if x[0]]
            cu = median(runs, "corio", w.key + ":server_us")
            if costs and cu:
                cheapest = min(costs)
                print(f"  server CPU per unit ({w.label}): corio {cu:.2f} us, cheapest peer {cheapest[1]} "
                      f"{cheapest[0]:.2f} us: corio uses {cu / cheapest[0]:.2f}x its CPU")
            results.append((w.label, met))
    return results


def main(prog, description, servers, workloads_for, probe, default_rounds, default_duration, title_for,
         setup_lines_for, unit, target_ratio, extra_args=None):
    """The whole script: arguments, server selection, rounds (or --check), the report. Returns the exit
    status. workloads_for(ctx, args) -> [Workload]; probe(ctx, running) raises CheckFailed."""
    ap = argparse.ArgumentParser(prog=prog, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap, default_rounds, default_duration)
    if extra_args:
        extra_args(ap)
    args = ap.parse_args()
    ctx = make_context(prog, args)
    ctx.args = args
    workloads = [] if args.check else workloads_for(ctx, args)
    chosen, notes = select_servers(prog, ctx, servers, args.only)
    if not chosen:
        die(prog, "no server can run (see above)")
    ctx.tmp = tempfile.mkdtemp(prefix=f"corio-{prog}-")
    t0 = time.monotonic()
    ctx.load_before = os.getloadavg()
    try:
        if args.check:
            return check_only(ctx, chosen, notes, probe)

        def per_start(running, failures, r):
            probe(ctx, running)  # the answers are right before anything is measured
            out = {}
            for w in workloads:
                try:
                    # CPU time around the run: the server's (its whole session) per unit of work, and how
                    # busy the load generator was (near 100%: the client, not the server, sets the pace).
                    s0, c0, t0_ = session_cpu_seconds(running.proc.pid), children_cpu_seconds(), time.monotonic()
                    out[w.key] = w.run(ctx, running.port)
                    s1, c1, t1_ = session_cpu_seconds(running.proc.pid), children_cpu_seconds(), time.monotonic()
                    units = out[w.key] * ctx.duration
                    if units > 0:
                        out[w.key + ":server_us"] = (s1 - s0) / units * 1e6
                    out[w.key + ":client_busy"] = 100.0 * (c1 - c0) / max(t1_ - t0_, 1e-9)
                    log(f"   {running.server.name} {w.label}: {out[w.key]:,.0f} {unit}; server CPU "
                        f"{out.get(w.key + ':server_us', 0):.2f} us per unit; load generator "
                        f"{out[w.key + ':client_busy']:.0f}% busy")
                except CheckFailed as e:
                    failures.append(f"round {r + 1}, {running.server.name}, {w.label}: {e}")
                    log(f"{prog}: FAILED: {failures[-1]}")
            return out

        def guarded(running, failures, r):
            try:
                return per_start(running, failures, r)
            except CheckFailed as e:
                failures.append(f"round {r + 1}, {running.server.name}: {e}")
                log(f"{prog}: FAILED: {failures[-1]}")
                return {}

        runs, failures = run_rounds(ctx, chosen, args.rounds, guarded)
        ctx.load_after = os.getloadavg()
        results = print_results(ctx, title_for(ctx, chosen), setup_lines_for(ctx, args), chosen, notes,
                                workloads, runs, unit, target_ratio)
        if args.verbose:
            print("every run (in round order):")
            for s in chosen:
                for w in workloads:
                    vals = runs[s.name].get(w.key, [])
                    print(f"  {s.name:8} {w.label:16} " + " ".join(f"{v:,.0f}" for v in vals))
        for f in failures:
            print(f"FAILED: {f}")
        print(f"(total {time.monotonic() - t0:.0f} s)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"script": prog, "args": vars(args), "unit": unit,
                           "servers": {s.name: s.title for s in chosen}, "not_run": notes,
                           "workloads": {w.key: w.label for w in workloads}, "runs": runs, "failures": failures,
                           "targets": [{"workload": label, "met": met} for label, met in results],
                           "load_average": [ctx.load_before[0], ctx.load_after[0]]}, f, indent=1)
        if failures:
            return 1
        if args.strict and any(met is False for _, met in results):
            return 1
        return 0
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)


def check_only(ctx, servers, notes, probe):
    failures = []
    for server in servers:
        try:
            running = start_server(ctx, server)
        except CheckFailed as e:
            failures.append(f"{server.name}: {e}")
            continue
        try:
            probe(ctx, running)
            running.stop()
            print(f"{server.name}: ok")
        except CheckFailed as e:
            failures.append(f"{server.name}: {e}")
        finally:
            running.kill()
    for name, why in notes.items():
        print(f"{name}: {why}")
    for f in failures:
        print(f"FAILED: {f}")
    return 1 if failures else 0
