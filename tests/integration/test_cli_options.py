"""Integration test of the commands' shared option parser (net/cli/options.c), through the real
`ringcast` binary: every command's --help is made from its option table, and every command
reports the same kinds of usage errors the same way (exit 2, one line naming the option). Nothing
here listens or connects: each case fails or finishes before any socket or ring is used."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rc_harness import Runner, check, eq, run_cli  # noqa: E402

COMMANDS = ["serve", "send", "tail", "sink", "cesql"]


def usage_error(args, message):
    """Runs `ringcast ARGS`, which must fail with exit 2 and `message` on stderr."""
    rc, out, err = run_cli(args)
    eq(rc, 2, "exit code of %r (stderr %r)" % (args, err))
    check(message in err, "%r: %r not in stderr %r" % (args, message, err))
    eq(out, "", "%r prints nothing on stdout" % args)
    return err


def test_help_from_the_table():
    for cmd in COMMANDS:
        for flag in ("--help", "-h"):
            rc, out, err = run_cli([cmd, flag])
            eq(rc, 0, "%s %s" % (cmd, flag))
            check(out.startswith("usage: ringcast %s" % cmd), out)
            check("Exit codes" in out, "%s: no exit codes in %r" % (cmd, out))
        synopsis, _, rest = out.partition("\n\n")
        _, _, table = rest.partition("options:\n")
        rows = set(re.findall(r"^  (?:-\w, )?--([a-z-]+)", table, re.M))
        check("help" in rows, "%s: no --help row" % cmd)
        for name in re.findall(r"--([a-z][a-z-]*)", synopsis):
            check(name in rows, "%s: --%s in the synopsis, not in the options" % (cmd, name))
        # --help wins wherever it is, before the other options are checked.
        rc, out, _ = run_cli([cmd, "--nonsense-first", "--help"])
        eq(rc, 2, "%s: an unknown option before --help is still an error" % cmd)
        rc, out, _ = run_cli([cmd, "--help", "--nonsense-after"])
        eq(rc, 0, "%s: --help before an unknown option" % cmd)


def test_unknown_option_and_stray_operand():
    for cmd in COMMANDS:
        err = usage_error([cmd, "--nope"], "ringcast %s: unknown option '--nope'" % cmd)
        check("usage: ringcast %s" % cmd in err, "the help follows: %r" % err)
    usage_error(["serve", "stray"], "ringcast serve: unexpected argument 'stray'")
    usage_error(["sink", "stray"], "ringcast sink: unexpected argument 'stray'")
    usage_error(["tail", "a/b", "c/d"], "ringcast tail: more than one broker ('c/d')")
    usage_error(["send", "http://127.0.0.1:1/a", "http://127.0.0.1:1/b"],
                "ringcast send: more than one URL ('http://127.0.0.1:1/b')")
    usage_error(["cesql", "1", "2"], "ringcast cesql: more than one EXPRESSION ('2')")


def test_values():
    # A missing value, in either spelling of the option.
    usage_error(["serve", "--loops"], "ringcast serve: --loops needs a value")
    usage_error(["tail", "a/b", "--timeout"], "ringcast tail: --timeout needs a value")
    # Numbers: digits only, then the range.
    usage_error(["send", "http://127.0.0.1:1/a", "--timeout", "abc"],
                "ringcast send: --timeout: not a number: 'abc'")
    usage_error(["send", "http://127.0.0.1:1/a", "--timeout=abc"],
                "ringcast send: --timeout: not a number: 'abc'")
    usage_error(["serve", "--loops", "65"], "ringcast serve: --loops must be 1..64, not '65'")
    usage_error(["sink", "--count=0"], "ringcast sink: --count must be a positive integer")
    usage_error(["sink", "--delay", "-1"], "ringcast sink: --delay: not a number: '-1'")
    # Durations.
    usage_error(["tail", "a/b", "--timeout", "soon"], "ringcast tail: --timeout: not a duration")
    usage_error(["send", "http://127.0.0.1:1/a", "--types", "t", "--every", "90000s"],
                "ringcast send: --every must be 0..86400000 ms")
    # Choices.
    usage_error(["tail", "a/b", "--from=middle"],
                "ringcast tail: --from must be oldest, latest or an RFC 3339 time such as "
                "2026-01-02T15:04:05Z, not 'middle'")
    # Flags take no value.
    usage_error(["sink", "--quiet=yes"], "ringcast sink: --quiet takes no value")
    # A repeatable option has a limit.
    usage_error(["send", "http://127.0.0.1:1/a"] + ["--ext", "a=b"] * 17,
                "ringcast send: --ext may be given at most 16 times")


def test_operands_after_double_dash():
    # After --, an argument that looks like an option is an operand.
    usage_error(["send", "--type", "t", "--source", "s", "--", "--weird"],
                "ringcast send: URL must be http://HOST[:PORT]/PATH, not '--weird'")
    usage_error(["tail", "--", "--help"], "ringcast tail: expected NAMESPACE/BROKER")
    rc, out, err = run_cli(["cesql", "--", "--5"])
    eq((rc, out), (0, '{"result": 5, "error": null}\n'), "cesql -- --5: " + err)
    # A value is the next argument, whatever it looks like.
    rc, out, err = run_cli(["cesql", "--event", "-", "id"], input_text='{"id": "--x"}')
    eq((rc, out), (0, '{"result": "--x", "error": null}\n'), "cesql --event -: " + err)


if __name__ == "__main__":
    Runner().run([test_help_from_the_table, test_unknown_option_and_stray_operand, test_values,
                  test_operands_after_double_dash])
