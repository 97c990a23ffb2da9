// A publisher as users write it: DaprClient against the sidecar of DAPR_HTTP_PORT (publish and
// publishBulk), or the CloudEvents SDK against ringcast's Knative ingress. Every item must be
// accepted; the first refusal ends the program with exit code 1 and the SDK's error.
//
// spec: {"mode", "pubsub", "topic", "items": [DATA...] | "count": N, "prefix", "options",
//        "itemOptions": [OPTIONS...], "metadata", "batch", "concurrency", "ingress", "type"}
//   mode "publish":       client.pubsub.publish(pubsub, topic, item, options) for each item
//                         (options: itemOptions[i], else `options`), `concurrency` at a time
//                         (default 1: in order)
//   mode "bulk":          client.pubsub.publishBulk(pubsub, topic, chunk, metadata), chunks of
//                         `batch` items (default all)
//   mode "ce-binary":     emitterFor(httpTransport(ingress), binary) of CloudEvents whose data
//                         is each item and whose extension `topic` is spec.topic
//   mode "ce-structured": HTTP.structured(event) POSTed to `ingress`, answer checked (202)
// "count": N makes the items {"id": "<prefix>-<i>", "n": i} for i in 0..N-1.
// Prints {"published": N} on success.
"use strict";

const { DaprClient } = require("@dapr/dapr");
const { CloudEvent, HTTP, Mode, emitterFor, httpTransport } = require("cloudevents");
const { spec, fail, logger, sdkError } = require("./common");

const s = spec();

function items() {
    if (s.items) {
        return s.items;
    }
    const out = [];
    for (let i = 0; i < s.count; i++) {
        out.push({ id: `${s.prefix || "e"}-${i}`, n: i });
    }
    return out;
}

function describe(e) {
    const parsed = sdkError(e);
    return parsed ? JSON.stringify(parsed) : String(e && e.stack ? e.stack : e);
}

async function publishEach(client, list) {
    const width = Math.max(1, s.concurrency || 1);
    let next = 0;
    async function lane() {
        while (next < list.length) {
            const i = next++;
            const opts = (s.itemOptions && s.itemOptions[i]) || s.options || {};
            const res = await client.pubsub.publish(s.pubsub, s.topic, list[i], opts);
            if (res && res.error) {
                fail(`publish of item ${i} (${JSON.stringify(list[i])}) refused: ` +
                     describe(res.error));
            }
        }
    }
    const lanes = [];
    for (let k = 0; k < width; k++) {
        lanes.push(lane());
    }
    await Promise.all(lanes);
}

async function publishBulk(client, list) {
    const size = s.batch || list.length;
    for (let i = 0; i < list.length; i += size) {
        const chunk = list.slice(i, i + size);
        const res = await client.pubsub.publishBulk(s.pubsub, s.topic, chunk, s.metadata);
        if (!res || !Array.isArray(res.failedMessages)) {
            fail("publishBulk gave no failedMessages array: " + JSON.stringify(res));
        }
        if (res.failedMessages.length) {
            const f = res.failedMessages[0];
            fail(`publishBulk: ${res.failedMessages.length} of ${chunk.length} failed, ` +
                 `first ${JSON.stringify(f.message)}: ${describe(f.error)}`);
        }
    }
}

function cloudEvent(data, i) {
    return new CloudEvent({
        id: `${s.prefix || "ce"}-${i}`,
        source: "/tests/dapr/publish.js",
        type: s.type || "test.knative",
        topic: s.topic,
        datacontenttype: "application/json",
        data,
    });
}

async function publishCloudEvents(list) {
    if (s.mode === "ce-binary") {
        const emit = emitterFor(httpTransport(s.ingress), { mode: Mode.BINARY });
        for (let i = 0; i < list.length; i++) {
            // httpTransport resolves with the body and headers only; delivery is checked by
            // the driver, and a refusal carries a JSON error body.
            const res = await emit(cloudEvent(list[i], i));
            if (res && res.body) {
                fail(`binary event ${i} answered with a body: ${res.body}`);
            }
        }
        return;
    }
    for (let i = 0; i < list.length; i++) {
        const msg = HTTP.structured(cloudEvent(list[i], i));
        const res = await fetch(s.ingress, { method: "POST", headers: msg.headers,
                                             body: msg.body });
        if (res.status !== 202) {
            fail(`structured event ${i}: ${res.status} ${await res.text()}`);
        }
    }
}

async function main() {
    const list = items();
    if (s.mode === "ce-binary" || s.mode === "ce-structured") {
        await publishCloudEvents(list);
    } else {
        const client = new DaprClient({ logger });
        if (s.mode === "publish") {
            await publishEach(client, list);
        } else if (s.mode === "bulk") {
            await publishBulk(client, list);
        } else {
            fail("unknown mode " + s.mode);
        }
        await client.stop();
    }
    console.log(JSON.stringify({ published: list.length }));
    // Keep-alive sockets of the HTTP agents would hold the process for seconds.
    process.exit(0);
}

main().catch((e) => fail(describe(e)));
