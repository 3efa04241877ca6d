"""More stock clients against one `fjord dev`, unchanged, over Fjord's TLS listeners.

Starts `fjord dev` with the plaintext listener, the TLS IAM listener (MSK's 9098) and the TLS
SCRAM listener (MSK's 9096) on free ports, a fresh data dir and the generated dev CA, then runs:

  1. kafkajs 2.x + the AWS_MSK_IAM plugin over TLS (node/kafkajs_client.js);
  2. the same over plaintext;
  3. kafka-python's built-in AWS_MSK_IAM over TLS (kafka_python_client.py);
  4. kcat over SASL_SSL / SCRAM-SHA-512: a user created through the control plane with a SCRAM
     password and topic ACLs granted by the dev IAM principal, produces with -P and consumes
     with -C -e; a wrong password and an ungranted topic must be refused.

Then stops Fjord with SIGTERM and checks that it exits cleanly. Every check runs even if an
earlier one failed; prints `compat (stock clients): N passed, M failed` and exits non-zero if
any failed.

Host names: with a cluster domain, Fjord advertises a TLS client's cluster as
`<cluster-uuid>.kafka.<region>.<domain>` and picks the cluster by SNI, so clients must resolve
that name. The checks run with `--cluster-domain localhost` and bootstrap from the dev cluster's
name when such names resolve to loopback:
  - when `*.localhost` already resolves (systemd-resolved, nss-myhostname), or
    FJORD_COMPAT_CLUSTER_DOMAIN names a domain that does;
  - otherwise (plain glibc, `hosts: files dns`) the script re-runs itself in a private mount
    namespace (`unshare --mount`, as root or through a user namespace) whose /etc/hosts is a
    copy with the cluster's name added: the machine's own /etc/hosts is never changed.
Only if neither works do the TLS clients dial 127.0.0.1 (which the dev certificate also covers)
and use the listener's default cluster; the script says so.

Usage: stock_clients.py <path to the fjord binary>   (run with the .venv interpreter)
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.session
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

from devproc import (CheckFailed, FjordDev, add_host_names, expect, in_private_hosts,
                     random_cluster_name, rerun_with_private_hosts, resolves_to_loopback,
                     stopped_cleanly)

REGION = "us-east-1"
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
CLIENT_TIMEOUT_S = 120
KCAT_MESSAGES = 200


def cluster_domain():
    """(domain, how) to run with; domain is None when its names cannot be made to resolve."""
    if in_private_hosts():
        return "localhost", "a private /etc/hosts names the cluster"
    explicit = os.environ.get("FJORD_COMPAT_CLUSTER_DOMAIN")
    candidate = explicit or "localhost"
    if resolves_to_loopback(random_cluster_name(REGION, candidate)):
        return candidate, f"names under {candidate} resolve to loopback"
    if explicit:
        sys.exit(f"FAILED: FJORD_COMPAT_CLUSTER_DOMAIN={explicit}, but its names do not resolve to loopback")
    return None, None


class Fjord(FjordDev):
    """A running `fjord dev` with the plaintext, TLS IAM and TLS SCRAM listeners."""

    def __init__(self, binary, data_dir, domain):
        flags = ["--region", REGION, "--kafka-addr", "127.0.0.1:0", "--kafka-iam-addr", "127.0.0.1:0",
                 "--kafka-scram-addr", "127.0.0.1:0", "--control-plane-addr", "127.0.0.1:0"]
        if domain:
            flags += ["--cluster-domain", domain]
        super().__init__(binary, data_dir, flags, listeners=3)
        # Printed in configuration order: plaintext, IAM, SCRAM.
        if self.listeners[0] != self.bootstrap:
            self.proc.kill()
            sys.exit(f"FAILED: fjord dev's first listener {self.listeners[0]} is not its "
                     f"bootstrap {self.bootstrap}")
        self.cluster = self.dev_cluster
        self.iam_port = self.port(1)
        self.scram_port = self.port(2)
        self.tls_host = f"{self.cluster}.kafka.{REGION}.{domain}" if domain else "127.0.0.1"

    def iam_tls(self):
        return f"{self.tls_host}:{self.iam_port}"

    def scram_tls(self):
        return f"{self.tls_host}:{self.scram_port}"


def run_client(args, env, cwd=None, stdin=None):
    """Runs a client program; CheckFailed with its output unless it exits 0. Returns stdout."""
    what = " ".join(a for a in args[:4] if not a.startswith("sasl.password"))
    try:
        done = subprocess.run(args, env=env, cwd=cwd, input=stdin, capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise CheckFailed(f"{what} did not finish within {CLIENT_TIMEOUT_S} s; "
                          f"output:\n{e.stdout or ''}{e.stderr or ''}") from None
    if done.returncode != 0:
        raise CheckFailed(f"`{what} …` exited with {done.returncode}:\n"
                          f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def aws_env(fjord):
    return {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": fjord.credentials, "AWS_PROFILE": "fjord",
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


def kafkajs(fjord, tls):
    env = {**aws_env(fjord), "FJORD_BOOTSTRAP": fjord.iam_tls() if tls else fjord.bootstrap}
    if tls:
        env["FJORD_CA"] = fjord.ca
    else:
        env.pop("FJORD_CA", None)
    out = run_client(["node", "kafkajs_client.js"], env, cwd=NODE_DIR)
    return out.strip().splitlines()[-1]


def kafka_python(fjord):
    env = {**aws_env(fjord), "FJORD_BOOTSTRAP": fjord.iam_tls(), "FJORD_CA": fjord.ca}
    out = run_client([sys.executable, os.path.join(HERE, "kafka_python_client.py")], env)
    return out.strip().splitlines()[-1]


def signed_json(fjord, method, path, body):
    """A SigV4-signed JSON request to the control plane with the dev credentials."""
    session = botocore.session.Session(profile="fjord")
    data = json.dumps(body).encode()
    request = botocore.awsrequest.AWSRequest(method=method, url=fjord.control_plane + path, data=data,
                                             headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(session.get_credentials(), "kafka", REGION).add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=data, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise CheckFailed(f"{method} {path}: HTTP {e.code}: {e.read()[:300]!r}") from None


def iam_admin(fjord):
    """confluent-kafka's AdminClient as the dev IAM principal (OAUTHBEARER, plaintext listener)."""
    def token(_config):
        tok, expiry_ms = MSKAuthTokenProvider.generate_auth_token(REGION)
        return tok, expiry_ms / 1000
    return AdminClient({"bootstrap.servers": fjord.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                        "sasl.mechanism": "OAUTHBEARER", "oauth_cb": token})


def kcat_args(fjord, user, password):
    return ["kcat", "-b", fjord.scram_tls(), "-X", "security.protocol=SASL_SSL",
            "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", f"sasl.username={user}",
            "-X", f"sasl.password={password}", "-X", f"ssl.ca.location={fjord.ca}"]


def kcat(fjord):
    user = "kcat-" + secrets.token_hex(4)
    password = secrets.token_urlsafe(24)
    topic = "kcat-" + secrets.token_hex(4)
    denied_topic = topic + "-denied"
    signed_json(fjord, "POST", "/v1/principals", {"name": f"user/{user}"})
    signed_json(fjord, "PUT", f"/v1/principals/user/{user}/scram", {"password": password})

    admin = iam_admin(fjord)
    for t in (topic, denied_topic):
        admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=-1)])[t].result(timeout=30)
    grants = [AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, f"User:{user}", "*",
                         op, AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.READ)]
    for future in admin.create_acls(grants).values():
        future.result(timeout=30)

    # Produce with -P: `key:value` lines, the key split off by -K.
    lines = [f"k{i % 5}:value-{i}" for i in range(KCAT_MESSAGES)]
    run_client(kcat_args(fjord, user, password) + ["-P", "-t", topic, "-K", ":"],
               os.environ, stdin="\n".join(lines) + "\n")
    # Consume with -C -e: everything up to the end of every partition, then exit.
    out = run_client(kcat_args(fjord, user, password) +
                     ["-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\n"], os.environ)
    got = out.splitlines()
    expect(sorted(got) == sorted(lines),
           f"kcat consumed {len(got)} messages, expected the {len(lines)} produced; "
           f"first differences: {sorted(set(lines) ^ set(got))[:5]}")

    # A wrong password is refused with an authentication error (not a hang, not a drop).
    bad = subprocess.run(kcat_args(fjord, user, password + "x") + ["-L", "-t", topic, "-m", "5"],
                         capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    expect(bad.returncode != 0, f"kcat -L with a wrong password succeeded:\n{bad.stdout[-500:]}")
    expect("authentication" in bad.stderr.lower(),
           f"kcat -L with a wrong password did not report an authentication failure:\n{bad.stderr[-1500:]}")

    # A topic without ACLs is refused with TOPIC_AUTHORIZATION_FAILED.
    denied = subprocess.run(kcat_args(fjord, user, password) + ["-P", "-t", denied_topic, "-m", "15"],
                            input="x:denied\n", capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    expect(denied.returncode != 0, f"kcat -P to an ungranted topic succeeded:\n{denied.stderr[-1500:]}")
    expect("Topic authorization failed" in denied.stderr,
           f"kcat -P to an ungranted topic did not report TOPIC_AUTHORIZATION_FAILED:\n{denied.stderr[-1500:]}")
    return (f"kcat (TLS, SCRAM-SHA-512 user {user}): produced and consumed {KCAT_MESSAGES} messages "
            f"on {topic}; wrong password and ungranted topic refused")


def main():
    binary = sys.argv[1]
    for tool in ("node", "kcat"):
        if shutil.which(tool) is None:
            sys.exit(f"FAILED: {tool} is not installed (scripts/test installs it)")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kafkajs")):
        sys.exit(f"FAILED: kafkajs is not installed; run `npm ci` in {NODE_DIR}")
    if not os.environ.get("FJORD_COMPAT_CLUSTER_DOMAIN"):
        rerun_with_private_hosts(__file__, random_cluster_name(REGION, "localhost"), required=False)
    domain, how = cluster_domain()
    checks = [
        ("kafkajs + AWS_MSK_IAM plugin, TLS", lambda f: kafkajs(f, tls=True)),
        ("kafkajs + AWS_MSK_IAM plugin, plaintext", lambda f: kafkajs(f, tls=False)),
        ("kafka-python AWS_MSK_IAM, TLS", kafka_python),
        ("kcat SCRAM-SHA-512, TLS", kcat),
    ]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as data_dir:
        fjord = Fjord(binary, data_dir, domain)
        if domain:
            try:
                add_host_names([fjord.tls_host])
            except CheckFailed as e:
                fjord.stop()
                sys.exit(f"FAILED: {e}")
            print(f"TLS clients dial the dev cluster by name, {fjord.tls_host} ({how}); SNI picks the cluster")
        else:
            print("TLS clients dial 127.0.0.1 and get the listener's default cluster: cluster names do not "
                  "resolve here and no private mount namespace was possible (SNI not exercised)")
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = fjord.credentials
        os.environ["AWS_PROFILE"] = "fjord"
        try:
            for name, check in checks:
                started = time.monotonic()
                try:
                    detail = check(fjord)
                except Exception as e:  # every failure is reported, then the next check runs
                    failed += 1
                    why = str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
                    print(f"FAIL {name}: {why}", flush=True)
                    continue
                passed += 1
                print(f"ok   {name} ({time.monotonic() - started:.1f} s): {detail}", flush=True)
        finally:
            code = fjord.stop()
        if stopped_cleanly(code):
            passed += 1
        else:
            failed += 1
    print(f"compat (stock clients): {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
