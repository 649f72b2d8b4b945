#!/usr/bin/env python3
"""The requests of openai_client.py without the openai package: only the standard library.

    python3 examples/openai_raw.py

Environment: LSTMGEN_URL (default http://localhost:8080), LSTMGEN_API_KEY (sent as a Bearer
token; any string works unless the server has --api-key without --public-generate), LSTMGEN_MODEL
(default: the server's default model, GET /v1/models/default), PROMPT and SCORE_TEXT (their
characters must be in the model's vocabulary).

Tokens are characters here: max_tokens counts characters, and each logprobs entry is one
character. See docs/API.md, "OpenAI-compatible subset".
"""
import json
import os
import sys
import urllib.error
import urllib.request

BASE = os.environ.get("LSTMGEN_URL", "http://localhost:8080").rstrip("/") + "/v1"
API_KEY = os.environ.get("LSTMGEN_API_KEY", "not-needed")
PROMPT = os.environ.get("PROMPT", "The ")
SCORE_TEXT = os.environ.get("SCORE_TEXT", "To be, or not to be, that is the question.")


def request(method, path, body=None):
    """Sends a request; returns the open response (the caller reads it), or exits on an error."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + API_KEY)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        return urllib.request.urlopen(req, timeout=120)
    except urllib.error.HTTPError as e:  # lstmgen's errors: {"error": {code, message, type, param}}
        err = json.loads(e.read() or b"{}").get("error", {})
        sys.exit(f"{method} {path}: HTTP {e.code} {err.get('code')}: {err.get('message')}")
    except urllib.error.URLError as e:
        sys.exit(f"cannot reach {BASE}: {e.reason} (set LSTMGEN_URL)")


def completion(**body):
    with request("POST", "/completions", body) as resp:
        return json.load(resp)


def stream_completion(**body):
    """Yields the JSON chunks of a streamed completion (server-sent events) until data: [DONE]."""
    with request("POST", "/completions", dict(body, stream=True)) as resp:
        data = []
        for raw in resp:  # http.client yields lines as they arrive (and undoes the chunking)
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif line == "" and data:  # a blank line ends an event
                payload, data = "\n".join(data), []
                if payload == "[DONE]":
                    return
                chunk = json.loads(payload)
                if "error" in chunk:  # e.g. the server's --request-timeout, mid-stream
                    raise RuntimeError(chunk["error"]["message"])
                yield chunk


def main():
    with request("GET", "/models") as resp:
        models = [m["id"] for m in json.load(resp)["data"]]
    model = os.environ.get("LSTMGEN_MODEL")
    if not model:  # the server's default: what a request without "model" gets
        with request("GET", "/models/default") as resp:
            model = json.load(resp).get("root", "default")
    print(f"models: {models}; using {model!r}\n")

    # 1. A plain completion.
    resp = completion(model=model, prompt=PROMPT, max_tokens=120, temperature=0.7)
    choice = resp["choices"][0]
    print("== completion")
    print(PROMPT + choice["text"])
    print(f"-- finish_reason={choice['finish_reason']} usage={resp['usage']} seed={resp['seed']}\n")

    # 2. Two choices with a seed: choice i uses seed + i, so the same request gives the same
    #    texts again. top_k is an lstmgen extra (the openai client passes it in extra_body).
    body = dict(model=model, prompt=PROMPT, max_tokens=60, temperature=0.8, n=2, seed=42, top_k=20)
    first, again = completion(**body), completion(**body)
    print("== n=2, seed=42")
    for c in first["choices"]:
        print(f"[{c['index']}] {PROMPT + c['text']!r}")
    same = [c["text"] for c in first["choices"]] == [c["text"] for c in again["choices"]]
    print(f"-- the same request again gives the same texts: {same}\n")
    assert same

    # 3. Streamed: chunks of one or more characters; the last chunk of each choice has "text": ""
    #    and its finish_reason.
    print("== streamed")
    print(PROMPT, end="", flush=True)
    finish = None
    for chunk in stream_completion(model=model, prompt=PROMPT, max_tokens=200, temperature=0.7):
        c = chunk["choices"][0]
        print(c["text"], end="", flush=True)
        finish = c["finish_reason"] or finish
    print(f"\n-- finish_reason={finish}\n")

    # 4. Chat: the messages become one plain-text prompt (GET /props shows the template), and
    #    the reply continues it. A character model writes like its corpus; it does not answer.
    with request("POST", "/chat/completions", {"model": model, "max_tokens": 80, "seed": 7,
                                               "messages": [{"role": "user",
                                                             "content": PROMPT}]}) as resp:
        chat = json.load(resp)
    print("== chat")
    print(f"{PROMPT!r} -> {chat['choices'][0]['message']['content']!r}\n")

    # 5. Scoring: echo + max_tokens 0 returns the prompt with one natural-log probability per
    #    character (None for the first, which has no context), plus the top alternatives.
    resp = completion(model=model, prompt=SCORE_TEXT, max_tokens=0, echo=True, logprobs=3)
    lp = resp["choices"][0]["logprobs"]
    scored = [(t, p) for t, p in zip(lp["tokens"], lp["token_logprobs"]) if p is not None]
    total = sum(p for _, p in scored)
    print(f"== score of {SCORE_TEXT!r}")
    print(f"{total:.3f} nats over {len(scored)} predicted characters: "
          f"{total / len(scored):.3f} nats per character")
    worst = min(range(1, len(lp["tokens"])), key=lambda i: lp["token_logprobs"][i])
    alts = ", ".join(f"{t!r} {p:.2f}" for t, p in lp["top_logprobs"][worst].items())
    print(f"least expected: {lp['tokens'][worst]!r} at offset {lp['text_offset'][worst]} "
          f"({lp['token_logprobs'][worst]:.2f}); the model expected {alts}")


if __name__ == "__main__":
    main()
