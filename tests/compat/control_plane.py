#!/usr/bin/env python3
"""boto3 against Fjord's control plane, unchanged: MSK cluster and topic operations, STS.

Environment (as `fjord dev` prints and writes it):
  FJORD_CONTROL_PLANE_URL      the control plane's URL (default http://127.0.0.1:9080)
  AWS_SHARED_CREDENTIALS_FILE  the credentials file `fjord dev` wrote
  AWS_PROFILE                  its profile (default fjord)
  AWS_DEFAULT_REGION           the control plane's region (default us-east-1)

Prints one line per check and exits non-zero if any failed. Topic checks need a live storage
node (as `fjord dev` runs one); set FJORD_COMPAT_SKIP_TOPICS=1 to skip them.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request
import uuid

import boto3
import botocore.auth
import botocore.awsrequest
from botocore.exceptions import ClientError

URL = os.environ.get("FJORD_CONTROL_PLANE_URL", "http://127.0.0.1:9080").rstrip("/")
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
PROFILE = os.environ.get("AWS_PROFILE", "fjord")

failures = 0


def check(name, fn):
    """Runs one check; prints `ok <name>` or `FAIL <name>: <why>`. Returns fn's result."""
    global failures
    try:
        result = fn()
    except Exception as e:  # every failure is reported, then the script goes on
        failures += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        return None
    print(f"ok   {name}", flush=True)
    return result


def expect(cond, why):
    if not cond:
        raise AssertionError(why)


def expect_client_error(code, fn):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        expect(got == code, f"expected {code}, got {got}: {e}")
        return
    raise AssertionError(f"expected ClientError {code}, the call succeeded")


def signed_json(session, method, path, body=None):
    """A request to Fjord's own JSON API, signed like boto3 signs (botocore's SigV4Auth)."""
    data = json.dumps(body).encode() if body is not None else b""
    request = botocore.awsrequest.AWSRequest(
        method=method, url=URL + path, data=data, headers={"Content-Type": "application/json"}
    )
    botocore.auth.SigV4Auth(session.get_credentials(), "kafka", REGION).add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=data or None, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path}: HTTP {e.code} {e.headers.get('x-amzn-ErrorType')}: {e.read()[:300]!r}")


def main():
    session = boto3.Session(profile_name=PROFILE, region_name=REGION)
    kafka = session.client("kafka", endpoint_url=URL)
    sts = session.client("sts", endpoint_url=URL)
    name = f"compat-{uuid.uuid4().hex[:10]}"

    identity = check("sts get-caller-identity", lambda: sts.get_caller_identity())
    account = identity["Account"] if identity else None

    def create():
        r = kafka.create_cluster_v2(
            ClusterName=name,
            Serverless={
                "VpcConfigs": [{"SubnetIds": ["subnet-0"], "SecurityGroupIds": ["sg-0"]}],
                "ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}},
            },
        )
        expect(r["ClusterName"] == name and r["ClusterType"] == "SERVERLESS", r)
        expect(r["ClusterArn"].startswith(f"arn:aws:kafka:{REGION}:"), r["ClusterArn"])
        return r["ClusterArn"]

    arn = check("kafka create-cluster-v2", create)
    if arn is None:
        print(f"{failures} checks failed", flush=True)
        return 1

    check(
        "kafka create-cluster-v2 duplicate -> ConflictException",
        lambda: expect_client_error(
            "ConflictException",
            lambda: kafka.create_cluster_v2(ClusterName=name, Serverless={"VpcConfigs": []}),
        ),
    )

    def describe():
        info = kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]
        expect(info["ClusterArn"] == arn and info["State"] == "ACTIVE", info)
        expect(info["Serverless"]["ClientAuthentication"]["Sasl"]["Iam"]["Enabled"], info)
        expect(info["CreationTime"].year >= 2024, info["CreationTime"])

    check("kafka describe-cluster-v2", describe)

    def list_all():
        pages = kafka.get_paginator("list_clusters_v2").paginate(
            ClusterNameFilter="compat-", PaginationConfig={"PageSize": 1}
        )
        arns = [c["ClusterArn"] for page in pages for c in page["ClusterInfoList"]]
        expect(arn in arns, f"{arn} not in {arns}")

    check("kafka list-clusters-v2 (paginated)", list_all)

    def brokers():
        r = kafka.get_bootstrap_brokers(ClusterArn=arn)
        expect(r.get("BootstrapBrokerStringSaslIam"), r)

    check("kafka get-bootstrap-brokers", brokers)

    if os.environ.get("FJORD_COMPAT_SKIP_TOPICS") != "1":
        configs = base64.b64encode(json.dumps({"retention.ms": "3600000"}).encode()).decode()
        check(
            "kafka create-topic",
            lambda: expect(
                kafka.create_topic(
                    ClusterArn=arn, TopicName="compat", PartitionCount=2, ReplicationFactor=3, Configs=configs
                )["Status"]
                == "ACTIVE",
                "status",
            ),
        )

        def describe_topic():
            t = kafka.describe_topic(ClusterArn=arn, TopicName="compat")
            expect(t["PartitionCount"] == 2, t)
            expect(json.loads(base64.b64decode(t["Configs"]))["retention.ms"] == "3600000", t)

        check("kafka describe-topic", describe_topic)
        check(
            "kafka update-topic (partitions)",
            lambda: kafka.update_topic(ClusterArn=arn, TopicName="compat", PartitionCount=3),
        )
        check(
            "kafka list-topics",
            lambda: expect(
                [t["PartitionCount"] for t in kafka.list_topics(ClusterArn=arn)["Topics"]] == [3], "topics"
            ),
        )
        check(
            "kafka describe-topic-partitions",
            lambda: expect(
                len(kafka.describe_topic_partitions(ClusterArn=arn, TopicName="compat")["Partitions"]) == 3,
                "partitions",
            ),
        )
        check("kafka delete-topic", lambda: kafka.delete_topic(ClusterArn=arn, TopicName="compat"))

    if account:
        role = f"compat-{uuid.uuid4().hex[:8]}"
        role_arn = f"arn:aws:iam::{account}:role/{role}"
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["kafka:List*", "kafka:Describe*"], "Resource": "*"}],
        }

        def make_role():
            signed_json(session, "POST", "/v1/principals", {"name": f"role/{role}"})
            signed_json(session, "PUT", f"/v1/principals/role/{role}/policies/read", {"policyDocument": policy})
            return True

        if check("create role (Fjord JSON API, botocore SigV4Auth)", make_role):

            def assume():
                c = sts.assume_role(RoleArn=role_arn, RoleSessionName="compat", DurationSeconds=900)["Credentials"]
                expect(c["AccessKeyId"].startswith("ASIA"), c["AccessKeyId"])
                temp = boto3.Session(
                    aws_access_key_id=c["AccessKeyId"],
                    aws_secret_access_key=c["SecretAccessKey"],
                    aws_session_token=c["SessionToken"],
                    region_name=REGION,
                ).client("kafka", endpoint_url=URL)
                temp.list_clusters_v2()
                expect_client_error(
                    "ForbiddenException",
                    lambda: temp.create_cluster_v2(ClusterName="nope", Serverless={"VpcConfigs": []}),
                )

            check("sts assume-role and use the temporary credentials", assume)
            check(
                "sts assume-role of a missing role -> NoSuchEntity",
                lambda: expect_client_error(
                    "NoSuchEntity",
                    lambda: sts.assume_role(RoleArn=role_arn + "-missing", RoleSessionName="compat"),
                ),
            )
            check("delete role", lambda: signed_json(session, "DELETE", f"/v1/principals/role/{role}"))

    check("kafka delete-cluster", lambda: kafka.delete_cluster(ClusterArn=arn))
    check(
        "kafka describe-cluster-v2 after delete -> NotFoundException",
        lambda: expect_client_error("NotFoundException", lambda: kafka.describe_cluster_v2(ClusterArn=arn)),
    )

    print(f"{failures} checks failed" if failures else "all control-plane checks passed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
