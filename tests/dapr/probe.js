// What an app sees before it does anything: DaprClient.start() polls the sidecar's
// GET /v1.0/metadata every 500 ms until it answers 2xx with a non-empty body (and gives up with
// DAPR_SIDECAR_COULD_NOT_BE_STARTED after about 30 s); ringcast must pass on the first poll.
// Then metadata.get() (id, components with our pubsub), health.isHealthy(), GET /v1.0/healthz
// and /v1.0/healthz/outbound (204), once with daprHost/daprPort options and once with
// DAPR_HTTP_PORT alone.
//
// spec: {"port": sidecar port, "pubsub": component name expected in the metadata}
"use strict";

const { DaprClient } = require("@dapr/dapr");
const { spec, fail, logger } = require("./common");

const s = spec();

async function check(client, how) {
    const t0 = Date.now();
    await client.start();
    const ms = Date.now() - t0;
    if (ms > 400) {
        fail(`${how}: DaprClient.start() took ${ms} ms: the first GET /v1.0/metadata was not ` +
             "answered 2xx with a body");
    }
    const md = await client.metadata.get();
    if (!md || typeof md !== "object") {
        fail(`${how}: metadata.get() returned ${JSON.stringify(md)}`);
    }
    if (typeof md.id !== "string" || md.id === "") {
        fail(`${how}: metadata has no id: ${JSON.stringify(md)}`);
    }
    const comps = Array.isArray(md.components) ? md.components : [];
    const ours = comps.find((c) => c.name === s.pubsub);
    if (!ours || ours.type !== "pubsub.ringcast") {
        fail(`${how}: no component {name: ${s.pubsub}, type: pubsub.ringcast} in ` +
             JSON.stringify(md.components));
    }
    if (!Array.isArray(md.subscriptions)) {
        fail(`${how}: metadata.subscriptions is not an array: ${JSON.stringify(md)}`);
    }
    if ((await client.health.isHealthy()) !== true) {
        fail(`${how}: health.isHealthy() is not true`);
    }
    await client.stop();
}

async function main() {
    await check(new DaprClient({ daprHost: "127.0.0.1", daprPort: String(s.port), logger }),
                "daprHost/daprPort options");
    process.env.DAPR_HTTP_PORT = String(s.port);
    await check(new DaprClient({ logger }), "DAPR_HTTP_PORT");
    for (const path of ["/v1.0/healthz", "/v1.0/healthz/outbound"]) {
        const res = await fetch(`http://127.0.0.1:${s.port}${path}`);
        if (res.status !== 204) {
            fail(`GET ${path}: ${res.status} ${await res.text()}, want 204`);
        }
    }
    console.log("probe ok");
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e)));
