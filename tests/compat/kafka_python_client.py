"""kafka-python with its built-in AWS_MSK_IAM mechanism, unchanged, over TLS (SASL_SSL).

Creates a topic, produces, consumes through a consumer group and checks the committed offsets.
kafka-python signs with botocore's default credentials (here the dev credentials file) for the
region in AWS_DEFAULT_REGION. Run by stock_clients.py.

Environment:
  FJORD_BOOTSTRAP   host:port of the TLS IAM listener
  FJORD_CA          PEM CA to trust (the dev CA)
  AWS_DEFAULT_REGION, AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE
Exits non-zero with "FAILED: <why>" on the first failed check.
"""

import os
import sys
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

MESSAGES = 500
PARTITIONS = 3


def check(condition, message):
    if not condition:
        sys.exit("FAILED: " + message)


def main():
    bootstrap = os.environ["FJORD_BOOTSTRAP"]
    common = {
        "bootstrap_servers": [bootstrap],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "AWS_MSK_IAM",
        "ssl_cafile": os.environ["FJORD_CA"],
        "client_id": "fjord-compat-kafka-python",
        "request_timeout_ms": 30000,
    }
    topic = "kp-" + uuid.uuid4().hex[:8]
    group = "kp-group-" + topic

    admin = KafkaAdminClient(**common)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=-1)])
    check(topic in admin.list_topics(), f"list_topics does not show {topic}")

    producer = KafkaProducer(**common, acks="all", retries=5)
    futures = [
        producer.send(
            topic,
            key=f"k{i % 7}".encode(),
            value=f"message-{i}".encode(),
            headers=[("idx", str(i).encode())],
        )
        for i in range(MESSAGES)
    ]
    producer.flush(timeout=30)
    metadata = [f.get(timeout=30) for f in futures]
    check(len(metadata) == MESSAGES, f"{len(metadata)} acknowledgements for {MESSAGES} messages")
    producer.close(timeout=10)

    consumer = KafkaConsumer(
        topic,
        **common,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    seen = {}
    deadline = time.monotonic() + 60
    while len(seen) < MESSAGES and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            for msg in records:
                idx = int(dict(msg.headers)["idx"])
                check(msg.value == f"message-{idx}".encode(), f"value of message {idx} changed")
                check(msg.key == f"k{idx % 7}".encode(), f"key of message {idx} changed")
                seen[idx] = msg.offset
    check(len(seen) == MESSAGES, f"consumed {len(seen)} of {MESSAGES} messages in 60 s")
    consumer.commit()
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    ends = consumer.end_offsets(partitions)
    for tp in partitions:
        committed = consumer.committed(tp)
        check(committed == ends[tp], f"committed offset of {tp} is {committed}, expected {ends[tp]}")
    check(sum(ends.values()) == MESSAGES, f"end offsets add up to {sum(ends.values())}, not {MESSAGES}")
    consumer.close()

    admin.delete_topics([topic])
    admin.close()
    print(f"kafka-python (TLS, AWS_MSK_IAM): created {topic}, produced and consumed {MESSAGES} "
          f"messages through group {group}")


if __name__ == "__main__":
    main()
