"""Stock Python clients against `fjord dev`, unchanged.

Starts `fjord dev` on a fresh data dir, then uses confluent-kafka with the token from
aws-msk-iam-sasl-signer-python (OAUTHBEARER, exactly as the MSK docs show) to create a topic,
produce and consume through a consumer group, and finally stops Fjord with SIGTERM and checks it
exits cleanly. Exits non-zero with a message on the first failed check.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

REGION = "us-east-1"
MESSAGES = 2000


def start_fjord(binary, data_dir):
    proc = subprocess.Popen(
        [binary, "dev", "--data-dir", data_dir, "--kafka-addr", "127.0.0.1:0", "--region", REGION,
         "--control-plane-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "FJORD_LOG": os.environ.get("FJORD_LOG", "warn")},
    )
    deadline = time.monotonic() + 60
    bootstrap = None
    for line in proc.stdout:
        match = re.search(r"bootstrap: (\S+)", line)
        if match:
            bootstrap = match.group(1)
        match = re.search(r"control plane: (http://\S+)", line)
        if match and bootstrap:
            return proc, bootstrap, match.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    sys.exit("fjord dev did not print its bootstrap address and control-plane URL")


def token(_config):
    tok, expiry_ms = MSKAuthTokenProvider.generate_auth_token(REGION)
    return tok, expiry_ms / 1000


def client_config(bootstrap):
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "oauth_cb": token,
    }


def check(condition, message):
    if not condition:
        sys.exit("FAILED: " + message)


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as data_dir:
        proc, bootstrap, control_plane = start_fjord(binary, data_dir)
        try:
            os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(data_dir, "credentials")
            os.environ["AWS_PROFILE"] = "fjord"
            run(bootstrap)
            # boto3's kafka and sts clients against the control plane of the same process.
            cp = subprocess.run(
                [sys.executable, os.path.join(os.path.dirname(__file__), "control_plane.py")],
                env={**os.environ, "FJORD_CONTROL_PLANE_URL": control_plane,
                     "AWS_DEFAULT_REGION": REGION},
                timeout=300,
            )
            check(cp.returncode == 0, "control_plane.py (boto3 against the control plane) failed")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                sys.exit("FAILED: fjord dev did not stop within 60 s of SIGTERM")
        check(code == 0, f"fjord dev exited with {code} after SIGTERM")
    print("compat: 2 passed, 0 failed")


def run(bootstrap):
    topic = "py-" + uuid.uuid4().hex[:8]
    admin = AdminClient(client_config(bootstrap))
    futures = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=-1)])
    futures[topic].result(timeout=30)

    delivered = []
    producer = Producer({**client_config(bootstrap), "acks": "all", "enable.idempotence": True})
    for i in range(MESSAGES):
        producer.produce(
            topic,
            key=f"k{i % 7}".encode(),
            value=f"message-{i}".encode(),
            headers=[("idx", str(i).encode())],
            on_delivery=lambda err, msg: delivered.append((err, msg)),
        )
        producer.poll(0)
    check(producer.flush(30) == 0, "producer did not deliver everything within 30 s")
    errors = [err for err, _ in delivered if err is not None]
    check(not errors, f"delivery errors: {errors[:3]}")
    check(len(delivered) == MESSAGES, f"{len(delivered)} delivery reports for {MESSAGES} messages")

    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": "py-group-" + topic,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = {}
    deadline = time.monotonic() + 60
    while len(seen) < MESSAGES and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        idx = int(dict(msg.headers())["idx"])
        check(msg.value() == f"message-{idx}".encode(), f"value of message {idx} changed")
        check(msg.key() == f"k{idx % 7}".encode(), f"key of message {idx} changed")
        seen[idx] = msg.offset()
    check(len(seen) == MESSAGES, f"consumed {len(seen)} of {MESSAGES} messages")
    consumer.commit(asynchronous=False)
    committed = consumer.committed(consumer.assignment(), timeout=10)
    check(all(tp.offset > 0 for tp in committed), f"committed offsets missing: {committed}")
    consumer.close()


if __name__ == "__main__":
    main()
