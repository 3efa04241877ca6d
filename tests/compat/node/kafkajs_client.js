// kafkajs 2.x with the AWS_MSK_IAM plugin (@jm18457/kafkajs-msk-iam-authentication-mechanism),
// configured exactly as the plugin's README shows: creates a topic, produces, consumes through a
// consumer group, commits and reads the committed offsets back. Run by ../stock_clients.py.
//
// Environment:
//   FJORD_BOOTSTRAP  host:port of the listener
//   FJORD_CA         PEM CA to trust; set = TLS (the IAM listener), unset = plaintext
//   AWS_REGION       region the plugin signs for
//   AWS_SHARED_CREDENTIALS_FILE / AWS_PROFILE   the dev credentials (the AWS SDK's default chain)
// Exits non-zero with "FAILED: <why>" on the first failed check.

"use strict";

const fs = require("fs");
const crypto = require("crypto");
const { Kafka, logLevel, Partitioners } = require("kafkajs");
const { createMechanism } = require("@jm18457/kafkajs-msk-iam-authentication-mechanism");

const MESSAGES = 500;
const PARTITIONS = 3;
const CONSUME_TIMEOUT_MS = 60000;

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function main() {
  const bootstrap = process.env.FJORD_BOOTSTRAP;
  const region = process.env.AWS_REGION;
  check(bootstrap && region, "FJORD_BOOTSTRAP and AWS_REGION must be set");
  const ca = process.env.FJORD_CA;
  const transport = ca ? "TLS" : "plaintext";

  const kafka = new Kafka({
    clientId: "fjord-compat-kafkajs",
    brokers: [bootstrap],
    ssl: ca ? { ca: [fs.readFileSync(ca, "utf8")] } : false,
    sasl: createMechanism({ region }),
    logLevel: logLevel.ERROR,
    connectionTimeout: 10000,
    retry: { retries: 5 },
  });

  const topic = "js-" + crypto.randomBytes(4).toString("hex");
  const groupId = "js-group-" + topic;

  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS }],
    waitForLeaders: true,
  });
  check(created === true, `createTopics(${topic}) answered ${created}, expected true`);
  const listed = await admin.listTopics();
  check(listed.includes(topic), `listTopics does not show ${topic}: ${JSON.stringify(listed)}`);

  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const batch = [];
  for (let i = 0; i < MESSAGES; i++) {
    batch.push({ key: `k${i % 7}`, value: `message-${i}`, headers: { idx: String(i) } });
  }
  // Several sends, so the consumer's fetches span more than one record batch per partition.
  for (let start = 0; start < MESSAGES; start += 100) {
    const acks = await producer.send({ topic, acks: -1, messages: batch.slice(start, start + 100) });
    check(acks.every((r) => r.errorCode === 0), `produce errors: ${JSON.stringify(acks)}`);
  }
  await producer.disconnect();

  const ends = await admin.fetchTopicOffsets(topic);
  const total = ends.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  check(total === MESSAGES, `high watermarks add up to ${total}, expected ${MESSAGES}: ${JSON.stringify(ends)}`);

  const consumer = kafka.consumer({ groupId, sessionTimeout: 30000, heartbeatInterval: 3000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map();
  const next = new Map();
  let failure = null;
  let resolveAll;
  const all = new Promise((resolve) => {
    resolveAll = resolve;
  });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const idx = Number(message.headers.idx.toString());
      if (message.value.toString() !== `message-${idx}` || message.key.toString() !== `k${idx % 7}`) {
        failure = failure || `message ${idx} changed: key ${message.key} value ${message.value}`;
      }
      seen.set(idx, message.offset);
      next.set(partition, (BigInt(message.offset) + 1n).toString());
      if (seen.size === MESSAGES) {
        resolveAll();
      }
    },
  });
  const timer = setTimeout(resolveAll, CONSUME_TIMEOUT_MS);
  await all;
  clearTimeout(timer);
  check(failure === null, failure);
  check(seen.size === MESSAGES, `consumed ${seen.size} of ${MESSAGES} messages in ${CONSUME_TIMEOUT_MS} ms`);
  const commits = [...next].map(([partition, offset]) => ({ topic, partition, offset }));
  await consumer.commitOffsets(commits);
  await consumer.disconnect();

  const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
  for (const p of committed[0].partitions) {
    const end = ends.find((e) => e.partition === p.partition);
    check(
      p.offset === end.high,
      `committed offset of partition ${p.partition} is ${p.offset}, expected ${end.high}`
    );
  }
  const groups = await admin.describeGroups([groupId]);
  check(groups.groups[0].errorCode === 0, `describeGroups: ${JSON.stringify(groups.groups[0])}`);
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  console.log(`kafkajs (${transport}): created ${topic}, produced and consumed ${MESSAGES} messages through group ${groupId}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`FAILED: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  }
);
