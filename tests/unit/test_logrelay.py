import io
import json

from lienthong.runtime.logrelay import relay, to_json_line


def test_plain_text_becomes_json_with_component_and_level():
    line = json.loads(to_json_line("\x1b[32m2026-01-01 WARN slow join\x1b[0m\n", "broker", "tansu"))
    assert line["event"] == "2026-01-01 WARN slow join"
    assert line["level"] == "warning"
    assert line["component"] == "broker"
    assert line["logger"] == "tansu"
    assert line["timestamp"].endswith("Z")


def test_relay_skips_blank_lines_and_defaults_to_info():
    out = io.StringIO()
    relay(io.StringIO("ready in 0ms\n\n"), out, "broker", "tansu")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(x["level"], x["event"]) for x in lines] == [("info", "ready in 0ms")]
