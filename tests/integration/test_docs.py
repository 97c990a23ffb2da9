#!/usr/bin/env python3
"""The docs are checked against the binary, so that they cannot drift:

- A fenced block right after the line `<!-- doctest: usage -->` holds command synopses exactly
  as `ringcast CMD --help` prints them (its first paragraph, without "usage: " and with the
  continuation lines moved left by as much). Each `ringcast WORDS` group is compared with the
  help of that command; docs/ingress.md's block must also name every command of
  `ringcast --help`.
- A fenced block right after `<!-- doctest: json-lines -->` holds log lines of
  `--log-format json`: each parses as one JSON object with the fields every line has.
- A ```sh block whose first line is `# doctest` is run by bash (-euo pipefail) against a real
  `ringcast serve` on free loopback ports, with `ringcast` on PATH, $RINGCAST_URL its ingress
  (http://HOST:PORT) and $RINGCAST_ADMIN its admin address; it must exit 0 within 30 s.
- The systemd unit of examples/ passes `systemd-analyze verify` without a warning (skipped, with
  a message, when systemd-analyze is not installed).

Every docs/*.md file is scanned; a marker without a block after it is an error."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import BIN_DIR, RINGCAST, Broker, Runner, check, eq  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def blocks(path):
    """(kind, info, first line number, text) of each fenced block; kind is the doctest marker
    just before it ("usage", "json-lines") or None."""
    out = []
    lines = open(path, encoding="utf-8").read().split("\n")
    i, marker = 0, None
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^<!-- doctest: ([a-z-]+) -->$", line)
        if m:
            check(marker is None, "%s:%d: two markers in a row" % (path, i + 1))
            marker = (m.group(1), i + 1)
            i += 1
            continue
        f = re.match(r"^```(\S*)$", line)
        if f:
            start = i + 1
            j = start
            while j < len(lines) and lines[j] != "```":
                j += 1
            check(j < len(lines), "%s:%d: fenced block not closed" % (path, i + 1))
            out.append((marker[0] if marker else None, f.group(1), start + 1,
                        "\n".join(lines[start:j])))
            marker = None
            i = j + 1
            continue
        if marker and line.strip():
            raise AssertionError("%s:%d: doctest marker not followed by a fenced block"
                                 % (path, marker[1]))
        i += 1
    check(marker is None, "%s:%d: marker at the end of the file" % (path, marker[1] if marker
                                                                       else 0))
    return out


def help_synopsis(words):
    p = subprocess.run([RINGCAST] + words + ["--help"], capture_output=True, text=True,
                       timeout=10)
    eq(p.returncode, 0, "ringcast %s --help exit code (%s)" % (" ".join(words), p.stderr))
    para = p.stdout.split("\n\n")[0].split("\n")
    check(para[0].startswith("usage: "), "first line of %s --help: %r" % (words, para[0]))
    out = [para[0][len("usage: "):]]
    for ln in para[1:]:
        check(ln.startswith(" " * 7), "continuation line of %s --help: %r" % (words, ln))
        out.append(ln[7:])
    return "\n".join(out)


def command_words(line):
    """`ringcast rings ls [--x]` -> ["rings", "ls"]: the lowercase words after ringcast."""
    words = []
    for w in line.split()[1:]:
        if not re.match(r"^[a-z]+$", w):
            break
        words.append(w)
    return words


def synopsis_groups(text, where):
    """{("rings", "ls"): "ringcast rings ls ...\\n   ...", ...} in the block's order."""
    groups = {}
    order = []
    key = None
    for ln in text.split("\n"):
        if ln.startswith("ringcast "):
            words = tuple(command_words(ln))
            check(words, "%s: no command in %r" % (where, ln))
            if words != key:
                check(words not in groups, "%s: %s given twice" % (where, " ".join(words)))
                groups[words] = []
                order.append(words)
            key = words
        else:
            check(key is not None and ln.startswith(" "),
                  "%s: a line that is neither a synopsis nor its continuation: %r" % (where, ln))
        groups[key].append(ln)
    return {k: "\n".join(groups[k]) for k in order}


def top_level_commands():
    p = subprocess.run([RINGCAST, "--help"], capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, "ringcast --help exit code")
    body = p.stdout.split("commands:\n", 1)
    check(len(body) == 2, "ringcast --help has no commands section: %r" % p.stdout)
    cmds = []
    for ln in body[1].split("\n"):
        m = re.match(r"^  ([a-z]+)\s", ln)
        if not m:
            break
        cmds.append(m.group(1))
    check(len(cmds) >= 5, "commands of ringcast --help: %r" % cmds)
    return cmds


def test_usage_blocks():
    """Every usage block equals the binary's --help, group by group."""
    seen = 0
    for path in DOCS:
        for kind, _info, line, text in blocks(path):
            if kind != "usage":
                continue
            where = "%s:%d" % (os.path.relpath(path, ROOT), line)
            for words, doc in synopsis_groups(text, where).items():
                real = help_synopsis(list(words))
                if doc != real:
                    raise AssertionError("%s: the synopsis of 'ringcast %s' differs from its "
                                         "--help.\ndocs:\n%s\n--help:\n%s"
                                         % (where, " ".join(words), doc, real))
                seen += 1
    check(seen >= 9, "only %d synopses checked" % seen)


def test_ingress_commands_complete():
    """docs/ingress.md's Commands block names every command `ringcast --help` lists (a command
    with subcommands, as `rings`, by each of them)."""
    path = os.path.join(ROOT, "docs", "ingress.md")
    usage = [b for b in blocks(path) if b[0] == "usage"]
    eq(len(usage), 1, "usage blocks in docs/ingress.md")
    documented = {w[0] for w in synopsis_groups(usage[0][3], "docs/ingress.md")}
    real = set(top_level_commands())
    eq(sorted(real - documented), [], "commands of `ringcast --help` missing in docs/ingress.md")
    eq(sorted(documented - real), [], "commands in docs/ingress.md that `ringcast --help` lacks")


def test_json_log_examples():
    seen = 0
    for path in DOCS:
        for kind, _info, line, text in blocks(path):
            if kind != "json-lines":
                continue
            for k, ln in enumerate(text.split("\n")):
                where = "%s:%d" % (os.path.relpath(path, ROOT), line + k)
                try:
                    obj = json.loads(ln)
                except ValueError as e:
                    raise AssertionError("%s: not JSON (%s): %r" % (where, e, ln))
                for key in ("time", "level", "component", "pid", "msg"):
                    check(key in obj, "%s: no %s" % (where, key))
                seen += 1
    check(seen >= 3, "only %d JSON log lines in the docs" % seen)


def test_runnable_examples():
    runnable = []
    for path in DOCS:
        for _kind, info, line, text in blocks(path):
            if info == "sh" and text.split("\n", 1)[0].strip() == "# doctest":
                runnable.append(("%s:%d" % (os.path.relpath(path, ROOT), line), text))
    check(len(runnable) >= 2, "only %d runnable examples" % len(runnable))
    with Broker(args=["--log-format", "json"]) as b, tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env["PATH"] = os.path.abspath(BIN_DIR) + os.pathsep + env.get("PATH", "")
        env["RINGCAST_URL"] = "http://%s:%d" % (b.host, b.port)
        env["RINGCAST_ADMIN"] = "%s:%d" % (b.host, b.admin_port)
        for where, text in runnable:
            p = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=tmp, env=env,
                               capture_output=True, text=True, timeout=30)
            if p.returncode != 0:
                raise AssertionError("%s: the example exited %d\nstdout:\n%s\nstderr:\n%s"
                                     % (where, p.returncode, p.stdout, p.stderr))
        eq(b.stop(), 0, "serve exit code")
        for n, ln in enumerate(b.log().splitlines(), 1):
            try:
                json.loads(ln)
            except ValueError:
                raise AssertionError("serve log line %d is not JSON: %r" % (n, ln))


def test_systemd_unit():
    unit = os.path.join(ROOT, "examples", "ringcast.service")
    check(os.path.exists(unit), "examples/ringcast.service is missing")
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("    skipped: systemd-analyze is not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        # verify wants the commands to exist: the unit is checked with this build's binary.
        text = open(unit).read().replace("/usr/local/bin/ringcast", os.path.abspath(RINGCAST))
        path = os.path.join(tmp, "ringcast.service")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([tool, "verify", path], capture_output=True, text=True, timeout=60)
        out = (p.stdout + p.stderr).strip()
        # Warnings about the machine's own units (not this one) are not its business.
        own = [ln for ln in out.splitlines() if "ringcast.service" in ln]
        eq(p.returncode, 0, "systemd-analyze verify exit code (%s)" % out)
        eq(own, [], "systemd-analyze verify says about the unit")
        s = subprocess.run([tool, "security", "--offline=yes", path], capture_output=True,
                           text=True, timeout=60)
        m = re.search(r"Overall exposure level for ringcast\.service: ([0-9.]+)", s.stdout)
        if m:
            print("    systemd-analyze security: exposure %s" % m.group(1))
            check(float(m.group(1)) <= 3.0, "exposure %s over 3.0" % m.group(1))


def main():
    Runner().run([test_usage_blocks, test_ingress_commands_complete, test_json_log_examples,
                  test_runnable_examples, test_systemd_unit])


if __name__ == "__main__":
    main()
