"""test_openapi: every route the server answers (server/routes.c's table) is in docs/openapi.json,
with the same methods, and the document describes no route the server lacks (the e2e suite checks
that the running server serves the document). Usage: test_openapi.py SOURCE_ROOT"""
import json
import re
import sys


def main():
    root = sys.argv[1]
    table = open(f"{root}/server/routes.c", encoding="utf-8").read()
    served = set(re.findall(r'\{"(GET|POST|DELETE|PUT|PATCH)", "([^"]+)",', table))
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
    print(f"ok: {len(served)} routes, all documented, none extra")
    return 0


if __name__ == "__main__":
    sys.exit(main())
