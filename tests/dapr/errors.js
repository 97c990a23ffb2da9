// The SDK's error surface for bad input: each refused call must carry Dapr's status and
// errorCode (CONTRACTS.md "Dapr"). DaprClient.pubsub.publish() does not throw: it returns
// {error}, an Error whose message is JSON {"error", "error_msg": the sidecar's body, "status"};
// publishBulk() returns every entry in failedMessages with that error. Prints one line per
// check and exits 1 if any failed.
//
// spec: {"configured": false} for a ringcast without any pubsub Component (only that check)
"use strict";

const { DaprClient } = require("@dapr/dapr");
const { spec, logger, sdkError } = require("./common");

const s = spec();
const failures = [];

function expectError(name, err, status, code) {
    const got = sdkError(err);
    const ok = got && got.status === status && got.body && got.body.errorCode === code &&
               typeof got.body.message === "string" && got.body.message !== "";
    console.log(`${ok ? "ok  " : "FAIL"} ${name}: want ${status} ${code}, got ` +
                (got ? JSON.stringify(got) : String(err)));
    if (!ok) {
        failures.push(name);
    }
}

async function publishError(name, pubsub, topic, data, options, status, code) {
    const res = await client.pubsub.publish(pubsub, topic, data, options);
    if (!res || !res.error) {
        console.log(`FAIL ${name}: accepted, want ${status} ${code}`);
        failures.push(name);
        return;
    }
    expectError(name, res.error, status, code);
}

async function bulkError(name, pubsub, entries, status, code) {
    const res = await client.pubsub.publishBulk(pubsub, "orders", entries);
    const failed = res && Array.isArray(res.failedMessages) ? res.failedMessages : [];
    if (failed.length !== entries.length) {
        console.log(`FAIL ${name}: ${failed.length} of ${entries.length} entries failed, want all`);
        failures.push(name);
        return;
    }
    expectError(name, failed[0].error, status, code);
}

const client = new DaprClient({ logger });

async function main() {
    if (s.configured === false) {
        await publishError("no pubsub component at all", "pubsub", "orders", { a: 1 }, {}, 400,
                           "ERR_PUBSUB_NOT_CONFIGURED");
    } else {
        const good = await client.pubsub.publish("pubsub", "orders", { good: 1 });
        console.log(`${good.error ? "FAIL" : "ok  "} a good publish: ${JSON.stringify(good)}`);
        if (good.error) {
            failures.push("a good publish");
        }
        await publishError("unknown pubsub", "nope", "orders", { a: 1 }, {}, 404,
                           "ERR_PUBSUB_NOT_FOUND");
        await publishError("empty pubsub name", "", "orders", { a: 1 }, {}, 404,
                           "ERR_PUBSUB_EMPTY");
        await publishError("empty topic", "pubsub", "", { a: 1 }, {}, 404,
                           "ERR_TOPIC_NAME_EMPTY");
        await publishError("cloudevents+json body that is a JSON string", "pubsub", "orders",
                           "not an event", { contentType: "application/cloudevents+json" }, 500,
                           "ERR_PUBSUB_CLOUD_EVENTS_SER");
        await publishError("cloudevents+json body that is a JSON array", "pubsub", "orders",
                           [1, 2], { contentType: "application/cloudevents+json" }, 500,
                           "ERR_PUBSUB_CLOUD_EVENTS_SER");
        await publishError("metadata.rawPayload=maybe", "pubsub", "orders", { a: 1 },
                           { metadata: { rawPayload: "maybe" } }, 400,
                           "ERR_PUBSUB_REQUEST_METADATA");
        // Without this the duplicate case below proves nothing: a sidecar that cannot read the
        // SDK's `entryID` key refuses every bulk with the same status and code.
        const goodBulk = await client.pubsub.publishBulk("pubsub", "orders",
                                                         [{ entryID: "one", event: { bulk: 1 } },
                                                          { entryID: "two", event: { bulk: 2 } }]);
        const fm = goodBulk && goodBulk.failedMessages;
        const bulkOk = Array.isArray(fm) && fm.length === 0;
        console.log(`${bulkOk ? "ok  " : "FAIL"} a good bulk with entryIDs one, two: ` +
                    (bulkOk ? "stored" : JSON.stringify(fm && fm.length ? sdkError(fm[0].error)
                                                                        : goodBulk)));
        if (!bulkOk) {
            failures.push("a good bulk");
        }
        await bulkError("bulk to an unknown pubsub", "nope", [{ a: 1 }, "two"], 404,
                        "ERR_PUBSUB_NOT_FOUND");
        await bulkError("bulk with a duplicate entryID", "pubsub",
                        [{ entryID: "same", event: { a: 1 } },
                         { entryID: "same", event: { a: 2 } }],
                        400, "ERR_PUBSUB_EVENTS_SER");
    }
    await client.stop();
    if (failures.length) {
        console.log("FAIL: " + failures.join("; "));
        process.exit(1);
    }
    console.log("errors ok");
}

main().catch((e) => {
    console.log("FAIL: " + String(e && e.stack ? e.stack : e));
    process.exit(1);
});
