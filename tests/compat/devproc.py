"""What the TLS compatibility scripts share: checks, per-cluster host names, and `fjord dev`.

- `CheckFailed` / `expect`: a check's failed assertion, with the message to print.
- Host names: Fjord names each cluster `<cluster-uuid>.kafka.<region>.<domain>`, and clients
  must resolve it. `rerun_with_private_hosts` re-runs the calling script in a private mount
  namespace (`unshare --mount`, as root or through a user namespace) whose /etc/hosts is a
  writable copy, so names can be added (`add_host_names`) without touching the machine's file.
- `FjordDev`: a `fjord dev` child process started with given flags; waits for its banner and
  parses the bootstrap address, control-plane URL, dev cluster and listeners from it.
"""

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid

HOSTS_ENV = "FJORD_COMPAT_HOSTS_FILE"
NAMESPACE_SCRIPT = 'mount --bind "$0" /etc/hosts && exec "$@"'
STARTUP_TIMEOUT_S = 60


class CheckFailed(Exception):
    """A check's assertion, with the message to print."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def resolves_to_loopback(name):
    try:
        infos = socket.getaddrinfo(name, 9098, proto=socket.IPPROTO_TCP)
        return all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)
    except (socket.gaierror, ValueError):
        return False


def in_private_hosts():
    """Whether this process runs with a private, writable /etc/hosts."""
    return bool(os.environ.get(HOSTS_ENV))


def rerun_with_private_hosts(script, probe_name, required):
    """Re-runs `script` (with this process's arguments) in a private mount namespace whose
    /etc/hosts is a writable copy, and exits with its status. Returns without doing so when
    already in one or when `probe_name` resolves to loopback anyway. When it is not possible
    here (no unshare, no privileges): exits with FAILED if `required`, else says so and
    returns."""
    if in_private_hosts() or resolves_to_loopback(probe_name):
        return

    def impossible(why):
        if required:
            sys.exit(f"FAILED: {probe_name} does not resolve to loopback and {why}")
        print(f"(no private mount namespace here: {why})")

    if shutil.which("unshare") is None:
        return impossible("unshare is missing")
    with tempfile.TemporaryDirectory(prefix="fjord-compat-hosts-") as tmp:
        hosts = os.path.join(tmp, "hosts")
        shutil.copyfile("/etc/hosts", hosts)
        unshare = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
        probe = subprocess.run(unshare + ["--", "sh", "-c", NAMESPACE_SCRIPT, hosts, "true"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            return impossible(f"no private mount namespace: {probe.stderr.strip()[:200]}")
        done = subprocess.run(unshare + ["--", "sh", "-c", NAMESPACE_SCRIPT, hosts,
                                         sys.executable, os.path.abspath(script), *sys.argv[1:]],
                              env={**os.environ, HOSTS_ENV: hosts})
    sys.exit(done.returncode)


def add_host_names(names):
    """Makes `names` resolve to 127.0.0.1 (in the private /etc/hosts, when there is one)."""
    if in_private_hosts():
        # In place: the bind mount is of this inode.
        with open(os.environ[HOSTS_ENV], "a") as f:
            f.writelines(f"127.0.0.1 {n}\n" for n in names)
    missing = [n for n in names if not resolves_to_loopback(n)]
    expect(not missing, f"{missing} do not resolve to loopback")


def random_cluster_name(region, domain):
    """A name under the cluster scheme that no cluster has: probes whether such names resolve."""
    return f"{uuid.uuid4()}.kafka.{region}.{domain}"


class FjordDev:
    """A running `fjord dev` started with `flags`, once it has printed `listeners` Kafka
    listeners (its banner ends with them): `bootstrap`, `control_plane`, `dev_cluster` (the dev
    cluster's id) and `listeners` (their addresses, in configuration order) from the banner;
    `ca` and `credentials` in its data directory."""

    def __init__(self, binary, data_dir, flags, listeners):
        args = [binary, "dev", "--data-dir", data_dir, *flags]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "FJORD_LOG": os.environ.get("FJORD_LOG", "warn")},
        )
        self.lines = []
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready, listeners), daemon=True).start()
        ready.wait(STARTUP_TIMEOUT_S)
        out = "".join(self.lines)
        bootstrap = re.search(r"bootstrap: (\S+)", out)
        control_plane = re.search(r"control plane: (http://\S+)", out)
        cluster = re.search(r"cluster: \S+ \(([0-9a-f-]{36})\)", out)
        printed = re.findall(r"kafka listener: (\S+)", out)
        if not (bootstrap and control_plane and cluster and len(printed) == listeners):
            self.proc.kill()
            code = self.proc.wait(timeout=10)
            sys.exit(f"FAILED: fjord dev (exit {code}) did not print its bootstrap, control plane, "
                     f"cluster and {listeners} listeners within {STARTUP_TIMEOUT_S} s; "
                     f"it printed:\n{out}")
        self.bootstrap = bootstrap.group(1)
        self.control_plane = control_plane.group(1)
        self.dev_cluster = cluster.group(1)
        self.listeners = printed
        self.ca = os.path.join(data_dir, "tls", "fjord-dev-ca.pem")
        self.credentials = os.path.join(data_dir, "credentials")

    def _read(self, ready, listeners):
        seen = 0
        for line in self.proc.stdout:
            if not ready.is_set():
                self.lines.append(line)
                seen += line.lstrip().startswith("kafka listener:")
                # The listeners are printed last, after the control plane's URL.
                if seen == listeners:
                    ready.set()
        # stdout closed: fjord exited; a waiting start gives up at once.
        ready.set()

    def port(self, listener):
        """The port of listener number `listener` (0 is the plaintext one)."""
        return self.listeners[listener].rsplit(":", 1)[1]

    def stop(self):
        """SIGTERM, then the exit code (None if it did not stop within 60 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def stopped_cleanly(code):
    """Prints the check line for `FjordDev.stop`'s exit `code`; whether it passed."""
    if code == 0:
        print("ok   fjord dev stopped cleanly on SIGTERM", flush=True)
        return True
    print(f"FAIL fjord dev after SIGTERM: exit {code} (None: still running after 60 s)", flush=True)
    return False
