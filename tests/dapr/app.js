// A Dapr app as users write it with the JS SDK: a DaprServer on its own port, its sidecar found
// through DAPR_HTTP_PORT, subscribing programmatically (the SDK answers GET /dapr/subscribe).
// Each delivery it gets is one JSON line in spec.out. Prints READY once DaprServer.start() has
// returned, which is after the SDK saw the sidecar answer GET /v1.0/metadata.
//
// spec: {"port", "appId", "replica", "out", "subs": [SUB...], "routes": [PATH...]}
//   SUB {"how": "subscribe", "topic"}                      pubsub.subscribe(pubsub, topic, cb)
//       {"how": "options", "topic", "deadLetterTopic"}     pubsub.subscribeWithOptions
//       {"how": "rules", "topic", "rules": [{match, path}], "default"}
//                                                          routes.rules, one handler per route
//       {"how": "bulk", "topic", "maxMessagesCount", "maxAwaitDurationMs"}
//                                                          pubsub.subscribeBulk
//       (pubsub: SUB.pubsub, default "pubsub")
//   routes: POST paths served by an express app of its own (declarative Subscriptions name
//   paths the SDK does not make), recording the whole request body.
// What a handler answers comes from the event's data: {"action": "retry:N"} is RETRY for the
// first N deliveries of that data.id and SUCCESS after, "retry" is always RETRY, "drop" DROP;
// anything else SUCCESS. With data.on the action holds on that topic only (so a dead-letter
// subscriber can take the same data).
"use strict";

const fs = require("fs");
const express = require("express");
const { DaprServer, DaprPubSubStatusEnum } = require("@dapr/dapr");
const { spec, fail, logger } = require("./common");

const s = spec();
const attempts = new Map();

function record(line) {
    line.app = s.appId;
    line.replica = s.replica || 0;
    fs.appendFileSync(s.out, JSON.stringify(line) + "\n");
}

function decide(topic, data) {
    const action = data && typeof data === "object" ? data.action : undefined;
    if (typeof action !== "string" || (data.on && data.on !== topic)) {
        return DaprPubSubStatusEnum.SUCCESS;
    }
    const key = topic + "\u0000" + data.id;
    const n = (attempts.get(key) || 0) + 1;
    attempts.set(key, n);
    if (action === "retry") {
        return DaprPubSubStatusEnum.RETRY;
    }
    if (action === "drop") {
        return DaprPubSubStatusEnum.DROP;
    }
    const m = /^retry:(\d+)$/.exec(action);
    if (m && n <= Number(m[1])) {
        return DaprPubSubStatusEnum.RETRY;
    }
    return DaprPubSubStatusEnum.SUCCESS;
}

function handler(topic, route) {
    return async (data, _headers) => {
        const status = decide(topic, data);
        record({ topic, route, data, status });
        return status;
    };
}

async function subscribe(server, sub) {
    const pubsub = sub.pubsub || "pubsub";
    const topic = sub.topic;
    switch (sub.how) {
        case "subscribe":
            await server.pubsub.subscribe(pubsub, topic, handler(topic, "default"));
            break;
        case "options":
            await server.pubsub.subscribeWithOptions(pubsub, topic, {
                deadLetterTopic: sub.deadLetterTopic,
                callback: handler(topic, "default"),
            });
            break;
        case "rules":
            // No callback here: each route gets its own handler below, so a line says which
            // path the sidecar chose.
            await server.pubsub.subscribeWithOptions(pubsub, topic, {
                route: { rules: sub.rules, default: sub.default },
            });
            for (const p of new Set([sub.default, ...sub.rules.map((r) => r.path)])) {
                server.pubsub.subscribeToRoute(pubsub, topic, p, handler(topic, p));
            }
            break;
        case "bulk":
            await server.pubsub.subscribeBulk(pubsub, topic, handler(topic, "bulk"), {
                maxMessagesCount: sub.maxMessagesCount,
                maxAwaitDurationMs: sub.maxAwaitDurationMs,
            });
            break;
        default:
            fail("unknown subscription kind " + sub.how);
    }
}

async function main() {
    let serverHttp;
    if (s.routes) {
        serverHttp = express();
    }
    const server = new DaprServer({
        serverHost: "127.0.0.1",
        serverPort: String(s.port),
        serverHttp,
        logger,
    });
    // The SDK installs its body parsers on the express app in the constructor, so routes added
    // now see parsed CloudEvents.
    for (const path of s.routes || []) {
        serverHttp.post(path, (req, res) => {
            record({ route: path, contentType: req.headers["content-type"], event: req.body });
            res.status(200).json({ status: "SUCCESS" });
        });
    }
    for (const sub of s.subs || []) {
        await subscribe(server, sub);
    }
    await server.start();
    console.log("READY");
}

main().catch((e) => fail("app " + s.appId + ": " + (e && e.stack ? e.stack : e)));
