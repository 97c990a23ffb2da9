// Shared by the programs of tests/dapr/ (tests/integration/test_dapr_sdk.py runs them): the one
// argument (a JSON object), the SDK's logger kept to warnings, a failure that says what went
// wrong, and the reading of the error a failed DaprClient call carries. The sidecar port comes
// from DAPR_HTTP_PORT, as `dapr run` sets it, unless a program says otherwise.
"use strict";

const { LogLevel } = require("@dapr/dapr");

function spec() {
    if (process.argv.length < 3) {
        fail("usage: node " + process.argv[1] + " '<JSON spec>'");
    }
    return JSON.parse(process.argv[2]);
}

function fail(msg) {
    console.error("FAIL: " + msg);
    process.exit(1);
}

// Info lines would drown what the driver prints on a failure.
const logger = { level: LogLevel.Warn };

// The HTTP client throws (and publish() returns as `error`) an Error whose message is JSON:
// {"error": statusText, "error_msg": body text, "status": code}. Returns {status, body} with the
// body parsed when it is JSON (Dapr's {"errorCode", "message"}), or null when `e` is something
// else (a transport error).
function sdkError(e) {
    if (!e || typeof e.message !== "string") {
        return null;
    }
    let outer;
    try {
        outer = JSON.parse(e.message);
    } catch (_e) {
        return null;
    }
    let body = outer.error_msg;
    try {
        body = JSON.parse(outer.error_msg);
    } catch (_e) {
        // not JSON: kept as text
    }
    return { status: outer.status, body };
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = { spec, fail, logger, sdkError, sleep };
