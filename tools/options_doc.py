#!/usr/bin/python3
"""options_doc: the training options' table (core/trainopts.c, as `lstmgen train --options-json`
prints it) written into docs/API.md's hyperparameters table and docs/openapi.json's
Hyperparameters schema, so neither can drift from it.

usage: options_doc.py LSTMGEN SOURCE_ROOT [--write]
Without --write it only checks (the `options` test): exit 1 and the differences when the docs
are not what the table gives. With --write it rewrites them (then review the diff)."""
import json
import re
import subprocess
import sys

BEGIN = "<!-- options table: tools/options_doc.py writes it from lstmgen train --options-json -->"
END = "<!-- end of options table -->"


def fmt_num(v):
    if v == 2 ** 53:
        return "2^53"
    if v == int(v) and abs(v) < 1e7:
        return str(int(v))
    return "%g" % v


def fmt_default(o, regime):
    v = o["default"][regime]
    if o["type"] == "string":
        return "`%s`" % v
    if o["type"] == "boolean":
        return "true" if v else "false"
    return fmt_num(v)


def markdown(options):
    rows = ["| key | type | default: `window` | default: `sequence` | range | meaning |",
            "|---|---|---|---|---|---|"]
    for o in options:
        if o["type"] == "string":
            rng = ", ".join("`%s`" % c for c in o["enum"])
        elif o["type"] == "boolean":
            rng = ""
        else:
            rng = "%s to %s" % (fmt_num(o["minimum"]), fmt_num(o["maximum"]))
        rows.append("| `%s` | %s | %s | %s | %s | %s |" % (
            o["name"], o["type"], fmt_default(o, "window"), fmt_default(o, "sequence"), rng,
            o["help"] + "."))
    return "\n".join([BEGIN] + rows + [END])


def schema(options, old):
    props = {}
    for o in options:
        p = {"type": o["type"], "description": o["help"]}
        if "enum" in o:
            p["enum"] = o["enum"]
        if "minimum" in o:
            p["minimum"], p["maximum"] = o["minimum"], o["maximum"]
        if o["default"]["window"] == o["default"]["sequence"]:
            p["default"] = o["default"]["window"]
        if o.get("architecture"):  # the web app locks these when it fine-tunes
            p["x-architecture"] = True
        props[o["name"]] = p
    new = dict(old)
    new["properties"] = props
    return new


def main():
    lstmgen, root = sys.argv[1], sys.argv[2]
    write = "--write" in sys.argv[3:]
    options = json.loads(subprocess.run([lstmgen, "train", "--options-json"], check=True,
                                        capture_output=True).stdout)
    api_path, oas_path = root + "/docs/API.md", root + "/docs/openapi.json"
    api = open(api_path, encoding="utf-8").read()
    oas = json.load(open(oas_path, encoding="utf-8"))
    m = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), api, re.S)
    if not m:
        print("FAIL: docs/API.md has no options table between the markers")
        return 1
    want_md = markdown(options)
    hp = oas["components"]["schemas"]["Hyperparameters"]
    want_schema = schema(options, hp)
    help_text = subprocess.run([lstmgen, "train", "--help"], check=True,
                               capture_output=True).stdout.decode()
    bad = 0
    for o in options:
        if "--" + o["name"].replace("_", "-") not in help_text:
            print("FAIL: lstmgen train --help does not list --%s" % o["name"].replace("_", "-"))
            bad = 1
    if write:
        api = api[:m.start()] + want_md + api[m.end():]
        open(api_path, "w", encoding="utf-8").write(api)
        oas["components"]["schemas"]["Hyperparameters"] = want_schema
        open(oas_path, "w", encoding="utf-8").write(json.dumps(oas, indent=1, ensure_ascii=False)
                                                    + "\n")
        print("wrote the options into docs/API.md and docs/openapi.json")
        return bad
    if m.group(0) != want_md:
        print("FAIL: docs/API.md's options table differs from lstmgen train --options-json "
              "(run tools/options_doc.py LSTMGEN . --write)")
        for a, b in zip(m.group(0).splitlines(), want_md.splitlines()):
            if a != b:
                print("  docs:  %s\n  table: %s" % (a, b))
        bad = 1
    if hp != want_schema:
        print("FAIL: docs/openapi.json's Hyperparameters schema differs from the table")
        bad = 1
    if not bad:
        print("ok: %d training options, the same in lstmgen train --help, docs/API.md and "
              "docs/openapi.json" % len(options))
    return bad


if __name__ == "__main__":
    sys.exit(main())
