#!/usr/bin/env bash
# `ringcast cesql`: output line, error kinds and exit codes of the real binary.
set -u
bin="${RC_BIN_DIR:?RC_BIN_DIR not set}/ringcast"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect EXIT_CODE EXPECTED_STDOUT ARGS...
expect() {
    local want_rc=$1 want_out=$2
    shift 2
    local out rc
    out=$("$bin" cesql "$@" 2>"$tmp/stderr")
    rc=$?
    if [[ $rc != "$want_rc" || $out != "$want_out" ]]; then
        echo "FAIL: ringcast cesql $*"
        echo "  got rc=$rc out=$out (stderr: $(cat "$tmp/stderr"))"
        echo "  want rc=$want_rc out=$want_out"
        fails=$((fails + 1))
    fi
}

cat >"$tmp/event.json" <<'JSON'
{"specversion": "1.0", "id": "e-1", "source": "https://example.com/orders",
 "type": "com.example.order.created", "time": "2018-04-26T14:48:09+02:00",
 "sequence": "7", "priority": 3, "urgent": true, "ratio": 1.5, "nothing": null,
 "data": {"amount": 10}}
JSON

expect 0 '{"result": 10, "error": null}' '4 * 2 + 4 / 2'
expect 0 '{"result": "abc", "error": null}' "CONCAT('a', \"b\", 'c')"
expect 0 '{"result": null, "error": "parse"}' 'ABC('
expect 0 '{"result": false, "error": "missingFunction"}' 'NOPE(1)'
expect 0 '{"result": 0, "error": "math"}' '5 / 0'
expect 0 '{"result": 2147483647, "error": "math"}' 'ABS(-2147483648)'
expect 0 '{"result": 0, "error": "cast"}' "INT('x')"
expect 0 '{"result": "abc", "error": "functionEvaluation"}' "LEFT('abc', -1)"
expect 0 '{"result": false, "error": "missingAttribute"}' 'type'
expect 0 '{"result": false, "error": null}' 'EXISTS id'
expect 0 '{"result": -10, "error": null}' '-5 * 2'
expect 0 '{"result": -10, "error": null}' -- '-5 * 2'
expect 0 '{"result": "say \"hi\" \\x", "error": null}' "'say \"hi\" \\x'"
expect 0 '{"result": true, "error": null}' --event "$tmp/event.json" \
    "type LIKE 'com.example.%' AND source LIKE 'https://%' AND sequence > 5"
expect 0 '{"result": "2018-04-26T14:48:09+02:00", "error": null}' --event "$tmp/event.json" time
expect 0 '{"result": 3, "error": null}' --event="$tmp/event.json" priority
expect 0 '{"result": true, "error": null}' --event "$tmp/event.json" 'urgent AND ratio = '"'"'1.5'"'"
expect 0 '{"result": false, "error": null}' --event "$tmp/event.json" 'EXISTS data OR EXISTS nothing'
expect 0 '{"result": false, "error": "missingAttribute"}' --event "$tmp/event.json" 'subject = 1'
echo '{"id": "from-stdin"}' >"$tmp/stdin.json"
out=$("$bin" cesql --event - id <"$tmp/stdin.json")
[[ $out == '{"result": "from-stdin", "error": null}' ]] || { echo "FAIL: stdin: $out"; fails=$((fails + 1)); }

# Bad usage and unusable events: exit 2, nothing on stdout.
expect 2 '' 
expect 2 '' a b
expect 2 '' --bogus x
expect 2 '' --event
expect 2 '' --event "$tmp/missing.json" '1'
echo '[1]' >"$tmp/array.json"
expect 2 '' --event "$tmp/array.json" '1'
echo '{"a": {"b": 1}}' >"$tmp/nested.json"
expect 2 '' --event "$tmp/nested.json" '1'
echo '{"a": ' >"$tmp/broken.json"
expect 2 '' --event "$tmp/broken.json" '1'
expect 2 '' --event "$tmp" '1'
head -c $((17 << 20)) /dev/zero | tr '\0' ' ' >"$tmp/huge.json"
expect 2 '' --event "$tmp/huge.json" '1'

"$bin" cesql --help | grep -q 'usage: ringcast cesql' || { echo "FAIL: --help"; fails=$((fails + 1)); }
"$bin" --help | grep -q 'cesql' || { echo "FAIL: ringcast --help lacks cesql"; fails=$((fails + 1)); }

if [[ $fails != 0 ]]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "cesql_cli: ok"
