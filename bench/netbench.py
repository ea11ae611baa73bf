"""What bench/compare_http and bench/compare_echo share: the server table's entries, starting a server pinned to
a CPU on a free port and stopping it, running a pinned load generator, interleaved rounds, medians, the table
and the target lines, and installing missing Debian packages the way scripts/lib/deps.sh does.

Each script describes its servers as a list of Server(name, title, argv, ...), where argv may use {build},
{repo}, {port} and {dir} (a fresh temporary directory for that start), and its workloads as a list of
Workload(key, label, run) where run(port) returns one figure (higher is better) or raises CheckFailed.
netbench.main() does the rest; adding a server or a workload is one entry.

corio appears twice in each table, "corio (epoll)" and "corio (io_uring)": the same binary started with
CORIO_BACKEND=epoll / io_uring. Peers are compared with "corio (epoll)" (BASELINE); io_uring against epoll is
a line of its own. For the corio entries the server's system calls are counted with `perf stat` over each
measured run (count_syscalls) and shown per unit of work.
"""

import argparse
import json
import os
import platform
import re
import resource
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


# The corio entry the peers are compared with, and the one compared with it as a line of its own.
BASELINE = "corio (epoll)"
IO_URING = "corio (io_uring)"


def is_corio(name):
    return name.startswith("corio")


def short_name(name):
    """What --only matches: the name in lower case without spaces, brackets or dashes ("corio-epoll" and
    "corio_epoll" both select "corio (epoll)")."""
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("io_uring", "iouring"))


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
    count_syscalls: count its system calls per unit of work with perf (--syscalls corio: the corio rows).
    optional: run only when --only names it (not by default, nor by "corio").
    """

    def __init__(self, name, title, argv, packages=(), available=None, setup=None, missing_hint=None, env=None,
                 count_syscalls=None, optional=False):
        self.name, self.title, self.argv, self.env = name, title, argv, dict(env or {})
        self.optional = optional
        self.count_syscalls = is_corio(name) if count_syscalls is None else count_syscalls
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


def corio_servers(title, argv):
    """The corio rows of a table: one binary, CORIO_BACKEND=epoll and CORIO_BACKEND=io_uring, and (only when
    --only names it: corio-io_uring-multishot) io_uring with multishot recvs for the streams, which are off by
    default (CORIO_URING_MULTISHOT_RECV=1; docs/design.md)."""
    return [Server(BASELINE, f"{title} (epoll)", argv, missing_hint="not built", env={"CORIO_BACKEND": "epoll"}),
            Server(IO_URING, f"{title} (io_uring)", argv, missing_hint="not built",
                   env={"CORIO_BACKEND": "io_uring"}),
            Server("corio (io_uring-multishot)", f"{title} (io_uring, multishot recv)", argv, missing_hint="not built",
                   env={"CORIO_BACKEND": "io_uring", "CORIO_URING_MULTISHOT_RECV": "1"}, optional=True)]


def uses_io_uring(pid):
    """Whether process `pid` has an io_uring instance open (a descriptor on anon_inode:[io_uring]): tells
    whether CORIO_BACKEND=io_uring took effect, or the build ignores it (epoll only) or fell back."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[io_uring]":
                return True
        except OSError:
            pass
    return False


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


# ---------------------------------------------------------------------------------------------------------
# system calls per unit of work (perf stat on the syscalls tracepoints, attached to the server's process)

# column -> the tracepoints added up into it (those the kernel lacks are left out)
SYSCALL_GROUPS = [
    ("io_uring_enter", ["io_uring_enter"]),
    ("epoll_wait", ["epoll_wait", "epoll_pwait", "epoll_pwait2"]),
    ("recv", ["recvfrom", "recvmsg", "read"]),
    ("send", ["sendto", "sendmsg", "writev", "write"]),
]


def probe_syscall_events():
    """(the tracepoint names perf can count here, None) or ([], why not): perf must exist and be allowed to
    attach to tracepoints (root, or a low kernel.perf_event_paranoid)."""
    if not shutil.which("perf"):
        return [], "perf not found (Debian: apt-get install linux-perf)"
    names = [n for _, group in SYSCALL_GROUPS for n in group]
    have = []
    tracing = "/sys/kernel/tracing"
    if os.geteuid() == 0 and os.path.isdir(tracing) and not os.path.isdir(os.path.join(tracing, "events")):
        # tracefs not mounted (a VM's minimal init): as root, mount it where the kernel expects it
        r = subprocess.run(["mount", "-t", "tracefs", "nodev", tracing], stderr=subprocess.PIPE, text=True)
        log(f"mounted tracefs on {tracing} to count system calls" if r.returncode == 0
            else f"could not mount tracefs on {tracing}: {r.stderr.strip()}")
    for root in ("/sys/kernel/tracing/events/syscalls", "/sys/kernel/debug/tracing/events/syscalls"):
        if os.path.isdir(root):
            have = [n for n in names if os.path.isdir(os.path.join(root, f"sys_enter_{n}"))]
            break
    if not have:
        return [], "the syscalls:sys_enter_* tracepoints are not visible (tracefs not mounted or no permission)"
    events = ",".join(f"syscalls:sys_enter_{n}" for n in have)
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", events, "--", "true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return [], "perf stat did not finish within 30 s"
    if r.returncode != 0:
        return [], f"perf stat cannot count the syscalls tracepoints: {r.stderr.strip().splitlines()[-1:]}"
    return have, None


class SyscallCounter:
    """perf stat -e syscalls:sys_enter_... -p PID from start() to stop(); stop() -> {tracepoint: count}."""

    def __init__(self, ctx, pid):
        self.out = os.path.join(ctx.tmp, f"perf-{pid}-{time.monotonic_ns()}.csv")
        events = ",".join(f"syscalls:sys_enter_{n}" for n in ctx.syscall_events)
        # On the load generator's CPU: perf only reads counters at the end, but should not share the server's.
        self.proc = subprocess.Popen(["taskset", "-c", str(ctx.client_cpu), "perf", "stat", "-x,", "-o", self.out,
                                      "-e", events, "-p", str(pid)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.2)  # perf attaches before the load starts (it opens one counter per event and thread)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise CheckFailed("perf stat did not stop within 10 s of SIGINT")
        counts = {}
        try:
            with open(self.out) as f:
                for line in f:
                    parts = line.strip().split(",")
                    if len(parts) >= 3 and parts[2].startswith("syscalls:sys_enter_"):
                        if parts[0].isdigit():
                            counts[parts[2][len("syscalls:sys_enter_"):]] = int(parts[0])
        except OSError as e:
            raise CheckFailed(f"perf stat wrote no output ({e}): {self.proc.stderr.read().decode()[-500:]}")
        return counts


def raise_fd_limit(want=65536):
    """Raises the soft RLIMIT_NOFILE (inherited by the servers and load generators started from here) to
    `want` or the hard limit: 512 connections need more than the usual soft 1024 with perf and epolls."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < new:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def loadgen_path(ctx):
    return os.path.join(ctx.build, "bench", "loadgen")


def run_loadgen(ctx, port, mode, connections, duration, depth=1, size=64, threads=1, batch=False, timeout_extra=30):
    """Runs bench/loadgen (pinned like every load generator) and returns its figure per second; a protocol
    error, a non-200 answer or an error count makes it a CheckFailed."""
    argv = [loadgen_path(ctx), "--port", str(port), "--mode", mode, "--connections", str(connections),
            "--duration", str(duration), "--threads", str(threads), "--json"]
    argv += ["--depth", str(depth)] if mode == "http" else ["--size", str(size)]
    if batch:
        argv.append("--batch")
    out = run_client(ctx, argv, timeout=duration + timeout_extra)
    try:
        d = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CheckFailed(f"unexpected output from loadgen: {out!r}")
    if d.get("errors") or d.get("non_200"):
        raise CheckFailed(f"loadgen: {d.get('errors')} errors, {d.get('non_200')} non-200 responses")
    if not d.get("per_second"):
        raise CheckFailed(f"loadgen completed nothing: {out!r}")
    return float(d["per_second"])


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
    """One column: key (for JSON), label (for the table), run(ctx, port) -> figure (higher is better).

    client: the load generator that produced the figure (shown with it); connections: how many it opened
    (the io_uring targets depend on it); target: whether "corio >= N x the best peer" is evaluated on it."""

    def __init__(self, key, label, run, client="", connections=None, target=True):
        self.key, self.label, self.run = key, label, run
        self.client, self.connections, self.target = client, connections, target


class Context:
    pass


def add_common_args(ap, default_rounds, default_duration):
    ap.add_argument("--build-dir", default="build/release", help="where corio and the peers were built")
    ap.add_argument("--rounds", type=int, default=default_rounds, help="interleaved rounds (medians are reported)")
    ap.add_argument("--duration", type=int, default=default_duration, help="seconds per load run")
    ap.add_argument("--only", default="", help="comma-separated server names, e.g. corio-epoll,corio-io_uring,asio "
                    "(corio: both corio rows; corio-io_uring-multishot, only when named: io_uring with "
                    "CORIO_URING_MULTISHOT_RECV=1; default: all but that one)")
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU the servers are pinned to")
    ap.add_argument("--client-cpu", type=int, default=1, help="CPU the load generator is pinned to")
    ap.add_argument("--check", action="store_true", help="only start each server and check its answers (no load)")
    ap.add_argument("--json", metavar="FILE", help="also write every run's figures to FILE")
    ap.add_argument("--verbose", action="store_true", help="also print every run's figures")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    ap.add_argument("--no-install", action="store_true", help="skip what needs a missing package (no apt-get)")
    ap.add_argument("--syscalls", choices=["corio", "all", "none"], default="corio",
                    help="whose system calls per unit of work to count with perf stat (default: the corio rows)")


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
    ctx.fd_limit = raise_fd_limit()
    ctx.syscalls = getattr(args, "syscalls", "none") if not args.check else "none"
    ctx.syscall_events, ctx.syscall_note = [], None
    if ctx.syscalls != "none":
        ctx.syscall_events, why = probe_syscall_events()
        if why:
            ctx.syscall_note = f"syscalls per unit of work not counted: {why}"
            log(f"{prog}: {ctx.syscall_note}")
    return ctx


def select_servers(prog, ctx, servers, only):
    """The servers to run (in table order), and the lines saying why the others are not run."""
    names = [s.name for s in servers]
    wanted = set()
    for n in (only.split(",") if only else []):
        n = short_name(n)
        if not n:
            continue
        # "corio" alone selects both corio rows
        match = [s.name for s in servers
                 if short_name(s.name) == n or (n == "corio" and is_corio(s.name) and not s.optional)]
        if not match:
            known = ", ".join(m.replace(" (", "-").rstrip(")") for m in names)
            die(prog, f"--only: unknown server '{n}' (known: {known}; corio: both corio rows)")
        wanted.update(match)
    if not only:
        wanted = set(s.name for s in servers if not s.optional)
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
                    if ":" not in key:  # a workload's figure: remember its round, for paired ratios
                        runs[server.name].setdefault(key + "@round", []).append(r)
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


def by_round(runs, name, key):
    """{round: figure} of a server and workload (runs without rounds recorded: in order)."""
    vals = runs.get(name, {}).get(key) or []
    rounds = runs.get(name, {}).get(key + "@round") or list(range(len(vals)))
    return dict(zip(rounds, vals))


def paired_ratio(runs, a, b, key):
    """The median over rounds of a's figure / b's figure in the same round, and those per-round ratios; None
    when no round has both. Servers of a round run back to back, so a machine that changes speed between
    rounds (it does here: a whole round can run 1.3x faster) moves both sides of a ratio together, which
    a ratio of medians does not."""
    ra, rb = by_round(runs, a, key), by_round(runs, b, key)
    ratios = [ra[r] / rb[r] for r in sorted(ra) if r in rb and rb[r]]
    return (statistics.median(ratios), ratios) if ratios else None


def fmt_paired(p):
    return "per round " + ", ".join(f"{x:.2f}" for x in p[1]) + f": median {p[0]:.2f}x"


def fmt_ratio(v, c):
    return "-" if v is None or not c else f"{v / c:.2f}x"


def syscalls_per_unit(runs, name, key):
    """{column: median calls per unit of work} for a server and workload, or None when not counted."""
    out = {}
    for col, _ in SYSCALL_GROUPS:
        v = median(runs, name, f"{key}:sys:{col}")
        if v is not None:
            out[col] = v
    return out or None


def io_uring_note(runs, servers):
    """One line when the io_uring row did not run on io_uring (a build that ignores CORIO_BACKEND, or a
    fallback to epoll): its figures are then epoll's, and the io_uring targets cannot be judged."""
    if IO_URING not in [s.name for s in servers]:
        return None
    used = runs.get(IO_URING, {}).get("io_uring_in_use")
    if not used:
        return None
    if all(used):
        return None
    return (f"note: {IO_URING} had no io_uring instance open in {used.count(0)} of {len(used)} starts: this build "
            "ignores CORIO_BACKEND or fell back to epoll, so that row measures epoll")


def evaluate_targets(servers, workloads, runs, unit, target_ratio, target_peers=()):
    """[{workload, what, met (True/False/None), text}] for: each corio row >= target_ratio x the best peer
    (and x each of target_peers, e.g. the issue's "echo >= 1.2x Asio");
    io_uring >= 1.25x epoll at 64+ connections and >= 1x at 1; <= 0.1 io_uring_enter per unit at 32+.
    Ratios are judged paired by round (paired_ratio): against every peer, the lowest of those medians."""
    names = [s.name for s in servers]
    results = []

    def add(w, what, met, detail):
        state = {True: "MET", False: "MISSED", None: "not evaluated"}[met]
        results.append({"workload": w.label, "what": what, "met": met, "text": f"target ({w.label}): {what}: "
                        f"{state} ({detail})"})

    note = io_uring_note(runs, servers)
    for w in workloads:
        if not w.target:
            continue  # e.g. a second client on the same workload, run to compare the clients
        peers = [(median(runs, n, w.key), n) for n in names if not is_corio(n)]
        peers = [p for p in peers if p[0] is not None]
        best = max(peers) if peers else None
        for c_name in [n for n in names if is_corio(n)]:
            c = median(runs, c_name, w.key)
            what = f"{c_name} >= {target_ratio:g}x the best peer"
            paired = [(paired_ratio(runs, c_name, n, w.key), n) for _, n in peers]
            paired = [(pr, n) for pr, n in paired if pr is not None]
            if c is None:
                add(w, what, None, f"{c_name}: no valid run")
            elif best is None or not paired:
                add(w, what, None, "no peer ran")
            else:
                worst = min(paired, key=lambda x: x[0][0])  # the peer corio is least ahead of
                add(w, what, worst[0][0] >= target_ratio,
                    f"against {worst[1]}, {fmt_paired(worst[0])}; medians {c:,.0f} vs best peer {best[1]} "
                    f"{best[0]:,.0f} {unit} = {c / best[0]:.2f}x")
            for peer in target_peers:
                p = median(runs, peer, w.key)
                pr = paired_ratio(runs, c_name, peer, w.key)
                what = f"{c_name} >= {target_ratio:g}x {peer}"
                if c is None or p is None or pr is None:
                    add(w, what, None, f"{c_name if c is None else peer}: no valid run")
                else:
                    add(w, what, pr[0] >= target_ratio,
                        f"{fmt_paired(pr)}; medians {c:,.0f} vs {p:,.0f} {unit}")
        e, u = median(runs, BASELINE, w.key), median(runs, IO_URING, w.key)
        conns = w.connections
        if conns is not None and (conns >= 64 or conns == 1) and (BASELINE in names and IO_URING in names):
            need = 1.25 if conns >= 64 else 1.0
            what = f"io_uring >= {need:g}x epoll" + (" at 64+ connections" if conns >= 64 else " at 1 connection")
            pr = paired_ratio(runs, IO_URING, BASELINE, w.key)
            if e is None or u is None or pr is None:
                add(w, what, None, "a corio row has no valid run")
            elif note:
                add(w, what, None, f"{pr[0]:.2f}x, but the io_uring row ran on epoll")
            else:
                add(w, what, pr[0] >= need, f"{fmt_paired(pr)}; medians {u:,.0f} vs {e:,.0f} {unit}")
        if conns is not None and conns >= 32 and IO_URING in names:
            what = "<= 0.1 io_uring_enter per unit of work at 32+ connections"
            sc = syscalls_per_unit(runs, IO_URING, w.key)
            if sc is None or "io_uring_enter" not in sc:
                add(w, what, None, "system calls not counted")
            elif note:
                add(w, what, None, f"{sc['io_uring_enter']:.3f}, but the io_uring row ran on epoll")
            else:
                add(w, what, sc["io_uring_enter"] <= 0.1, f"{sc['io_uring_enter']:.3f} per unit")
    return results


def print_results(ctx, title, setup_lines, servers, notes, workloads, runs, unit, target_ratio, target_peers=()):
    """The tables (medians; peer / corio (epoll) and io_uring / epoll per workload; CPU per unit of work of
    the server and the load generator; the corio rows' system calls per unit) and the target lines. Returns
    the targets (evaluate_targets)."""
    print()
    print(title)
    for line in setup_lines:
        print(line)
    print(f"host: {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}; server on CPU "
          f"{ctx.server_cpu}, load generator on CPU {ctx.client_cpu}; load average {ctx.load_before[0]:.2f} "
          f"before, {ctx.load_after[0]:.2f} after; soft fd limit {ctx.fd_limit}; build dir {ctx.build}")
    names = [s.name for s in servers]
    has_base = BASELINE in names
    wname = max([len("server")] + [len(s.name) + 1 for s in servers] + [len(n) + 1 for n in notes])
    cols = [f"{w.label} {unit}" for w in workloads]
    ratio_cols = [f"{w.label} / epoll" for w in workloads] if has_base else []
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
            v, c = median(runs, s.name, w.key), median(runs, BASELINE, w.key)
            line += f"  {'-' if s.name == BASELINE else fmt_ratio(v, c):>{width}}"
        print(line)
    for name, why in notes.items():
        print(f"{name + ':':<{wname}}  {why}")
    if ratio_cols:
        print(f"(x / epoll: that row's figure over {BASELINE}'s; below 1: {BASELINE} is faster)")
    if has_base and IO_URING in names:
        for w in workloads:
            e, u = median(runs, BASELINE, w.key), median(runs, IO_URING, w.key)
            print(f"io_uring / epoll, {w.label}: {fmt_ratio(u, e)}")
    note = io_uring_note(runs, servers)
    if note:
        print(note)
    print()
    # The server's own cost, which the throughput hides when the load generator is the bottleneck.
    print("CPU per unit of work (user + system microseconds, lower is better) of the server and of the load "
          "generator, and how busy the load generator was:")
    header2 = f"{'server':<{wname}}" + "".join(
        f"  {w.label + ' server us':>{max(16, len(w.label) + 10)}}  {'client us':>9}  {'client%':>7}"
        for w in workloads)
    print(header2)
    print("-" * len(header2))
    for s in servers:
        line = f"{s.name:<{wname}}"
        for w in workloads:
            us, busy = median(runs, s.name, w.key + ":server_us"), median(runs, s.name, w.key + ":client_busy")
            cus = median(runs, s.name, w.key + ":client_us")
            line += (f"  {'-' if us is None else f'{us:.2f}':>{max(16, len(w.label) + 10)}}"
                     f"  {'-' if cus is None else f'{cus:.2f}':>9}  {'-' if busy is None else f'{busy:.0f}%':>7}")
        print(line)
    print("(client% near 100: the load generator, not the server, limits the throughput above)")
    print()
    counted = [s for s in servers if any(syscalls_per_unit(runs, s.name, w.key) for w in workloads)]
    if counted:
        print(f"system calls per unit of work ({unit.split('/')[0]}) of the server, perf stat -e "
              "syscalls:sys_enter_* -p PID over the measured run (recv: recvfrom+recvmsg+read; send: "
              "sendto+sendmsg+writev+write; epoll_wait: +epoll_pwait):")
        cols3 = [c for c, _ in SYSCALL_GROUPS]
        wl = max(len(w.label) for w in workloads)
        header3 = f"{'server':<{wname}}  {'workload':<{wl}}" + "".join(f"  {c:>14}" for c in cols3) + f"  {'total':>8}"
        print(header3)
        print("-" * len(header3))
        for s in counted:
            for w in workloads:
                sc = syscalls_per_unit(runs, s.name, w.key)
                if not sc:
                    continue
                print(f"{s.name:<{wname}}  {w.label:<{wl}}" + "".join(
                    f"  {'-' if c not in sc else f'{sc[c]:.3f}':>14}" for c in cols3) + f"  {sum(sc.values()):>8.3f}")
        print()
    elif ctx.syscall_note:
        print(ctx.syscall_note)
        print()
    results = evaluate_targets(servers, workloads, runs, unit, target_ratio, target_peers)
    for r in results:
        print(r["text"])
    for w in workloads:
        costs = [(median(runs, n, w.key + ":server_us"), n) for n in names if not is_corio(n)]
        costs = [x for x in costs if x[0]]
        cu = median(runs, BASELINE, w.key + ":server_us")
        if w.target and costs and cu:
            cheapest = min(costs)
            print(f"  server CPU per unit ({w.label}): {BASELINE} {cu:.2f} us, cheapest peer {cheapest[1]} "
                  f"{cheapest[0]:.2f} us: {BASELINE} uses {cu / cheapest[0]:.2f}x its CPU")
    return results


def main(prog, description, servers, workloads_for, probe, default_rounds, default_duration, title_for,
         setup_lines_for, unit, target_ratio, extra_args=None, extra_report=None, target_peers=()):
    """The whole script: arguments, server selection, rounds (or --check), the report. Returns the exit
    status. workloads_for(ctx, args) -> [Workload]; probe(ctx, running) raises CheckFailed;
    extra_report(ctx, args, servers, workloads, runs) -> [lines] printed after the targets (and kept in the
    JSON as "notes"); target_peers: peers each corio row is also held to target_ratio against."""
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
            if is_corio(running.server.name):
                used = uses_io_uring(running.proc.pid)
                if used is not None:
                    out["io_uring_in_use"] = 1.0 if used else 0.0
            count = ctx.syscall_events and (ctx.syscalls == "all" or
                                            (ctx.syscalls == "corio" and running.server.count_syscalls))
            for w in workloads:
                counter = None
                try:
                    if count:
                        counter = SyscallCounter(ctx, running.proc.pid)
                    # CPU time around the run: the server's (its whole session) per unit of work, and how
                    # busy the load generator was (near 100%: the client, not the server, sets the pace).
                    s0, c0, t0_ = session_cpu_seconds(running.proc.pid), children_cpu_seconds(), time.monotonic()
                    out[w.key] = w.run(ctx, running.port)
                    s1, c1, t1_ = session_cpu_seconds(running.proc.pid), children_cpu_seconds(), time.monotonic()
                    units = out[w.key] * ctx.duration
                    if units > 0:
                        out[w.key + ":server_us"] = (s1 - s0) / units * 1e6
                        out[w.key + ":client_us"] = (c1 - c0) / units * 1e6
                    out[w.key + ":client_busy"] = 100.0 * (c1 - c0) / max(t1_ - t0_, 1e-9)
                    if counter:
                        calls, counter = counter.stop(), None
                        for col, group in SYSCALL_GROUPS:
                            if any(n in calls for n in group) and units > 0:
                                out[f"{w.key}:sys:{col}"] = sum(calls.get(n, 0) for n in group) / units
                    log(f"   {running.server.name} {w.label}: {out[w.key]:,.0f} {unit}; server CPU "
                        f"{out.get(w.key + ':server_us', 0):.2f} us per unit; load generator "
                        f"{out[w.key + ':client_busy']:.0f}% busy, {out.get(w.key + ':client_us', 0):.2f} us per unit"
                        + "".join(f"; {col} {out[f'{w.key}:sys:{col}']:.3f}" for col, _ in SYSCALL_GROUPS
                                  if f"{w.key}:sys:{col}" in out))
                except CheckFailed as e:
                    failures.append(f"round {r + 1}, {running.server.name}, {w.label}: {e}")
                    log(f"{prog}: FAILED: {failures[-1]}")
                finally:
                    if counter:
                        try:
                            counter.stop()
                        except CheckFailed:
                            pass
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
                                workloads, runs, unit, target_ratio, target_peers)
        extra = extra_report(ctx, args, chosen, workloads, runs) if extra_report else []
        for line in extra:
            print(line)
        if args.verbose:
            print("every run (in round order):")
            for s in chosen:
                for w in workloads:
                    vals = runs[s.name].get(w.key, [])
                    print(f"  {s.name:16} {w.label:24} " + " ".join(f"{v:,.0f}" for v in vals))
        for f in failures:
            print(f"FAILED: {f}")
        print(f"(total {time.monotonic() - t0:.0f} s)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"script": prog, "args": vars(args), "unit": unit,
                           "command": " ".join([f"bench/{prog}"] + sys.argv[1:]),
                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "servers": {s.name: s.title for s in chosen}, "not_run": notes,
                           "workloads": {w.key: w.label for w in workloads},
                           "clients": {w.key: w.client for w in workloads},
                           "connections": {w.key: w.connections for w in workloads},
                           "baseline": BASELINE, "runs": runs, "failures": failures, "targets": results,
                           "io_uring_note": io_uring_note(runs, chosen), "syscall_note": ctx.syscall_note,
                           "setup": setup_lines_for(ctx, args), "notes": extra,
                           "load_average": [ctx.load_before[0], ctx.load_after[0]]}, f, indent=1)
        if failures:
            return 1
        if args.strict and any(r["met"] is False for r in results):
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
