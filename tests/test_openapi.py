"""test_openapi: every route the server answers (server/routes.c's table) is in docs/openapi.json,
with the same methods, and the document describes no route the server lacks (the e2e suite checks
that the running server serves the document). Who may call each route is written once, in the
table: the document's security requirements and docs/API.md's endpoint table must say the same.
Usage: test_openapi.py SOURCE_ROOT"""
import json
import re
import sys


def main():
    root = sys.argv[1]
    table = open(f"{root}/server/routes.c", encoding="utf-8").read()
    auth = {(m, p): a for m, p, a in
            re.findall(r'\{"(GET|POST|DELETE|PUT|PATCH)", "([^"]+)", \w+, (AUTH_\w+)', table)}
    served = set(auth)
    if not served:
        print("FAIL: no routes found in server/routes.c")
        return 1
    doc = json.load(open(f"{root}/docs/openapi.json", encoding="utf-8"))
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    missing = sorted(served - documented)
    extra = sorted(documented - served)
    for m, p in missing:
        print(f"FAIL: {m} {p} is served but not in docs/openapi.json")
    for m, p in extra:
        print(f"FAIL: {m} {p} is in docs/openapi.json but not served")
    for p, ops in doc["paths"].items():
        for m, o in ops.items():
            if not o.get("responses"):
                print(f"FAIL: {m.upper()} {p} documents no responses")
                return 1
    if missing or extra:
        return 1
    # who may call it: the table's AUTH_* in the document and in docs/API.md
    words = {"AUTH_NONE": "no", "AUTH_KEY": "yes", "AUTH_GENERATE": "unless `--public-generate`",
             "AUTH_METRICS": "unless `--public-metrics`"}
    api = open(f"{root}/docs/API.md", encoding="utf-8").read()
    bad = 0
    for (m, p), a in sorted(auth.items()):
        o = doc["paths"][p][m.lower()]
        keyed = bool(o.get("security")) and "401" in o["responses"]
        if keyed != (a != "AUTH_NONE"):
            said = "needed" if keyed else "not needed"
            print(f"FAIL: {m} {p} is {a} but docs/openapi.json says key {said}")
            bad = 1
        row = re.search(r"^\| %s \| `%s` \| .* \| ([^|]*) \|$" % (m, re.escape(p)), api, re.M)
        if not row or row.group(1).strip() != words[a]:
            print(f"FAIL: docs/API.md's endpoint table does not say '{words[a]}' for {m} {p}")
            bad = 1
    if bad:
        return 1
    print(f"ok: {len(served)} routes, all documented with who may call them, none extra")
    return 0


if __name__ == "__main__":
    sys.exit(main())
