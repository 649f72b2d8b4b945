#!/usr/bin/env python3
"""The official OpenAI Python client (openai>=1.0) talking to lstmgen's /v1/completions.

    pip install 'openai>=1.0'
    python3 examples/openai_client.py

Environment: LSTMGEN_URL (default http://localhost:8080), LSTMGEN_API_KEY (any string works
unless the server has --api-key without --public-generate), LSTMGEN_MODEL (default: the server's
default model, models.retrieve("default")), PROMPT and SCORE_TEXT (their characters must be in
the model's vocabulary).

Tokens are characters here: max_tokens counts characters, and each logprobs entry is one
character. examples/openai_raw.py makes the same requests with the standard library only. See
docs/API.md, "OpenAI-compatible subset", for what is supported.
"""
import os
import sys

import openai
from openai import OpenAI

URL = os.environ.get("LSTMGEN_URL", "http://localhost:8080").rstrip("/")
PROMPT = os.environ.get("PROMPT", "The ")
SCORE_TEXT = os.environ.get("SCORE_TEXT", "To be, or not to be, that is the question.")

# The client requires an api_key; lstmgen ignores it unless it was started with --api-key.
# The default max_retries (2) retries a 503 after the Retry-After the server sends.
client = OpenAI(base_url=URL + "/v1", api_key=os.environ.get("LSTMGEN_API_KEY", "not-needed"))


def main():
    models = [m.id for m in client.models.list()]
    # the server's default model (what a request without "model" gets); root is its own name
    model = os.environ.get("LSTMGEN_MODEL") or getattr(client.models.retrieve("default"),
                                                       "root", "default")
    print(f"models: {models}; using {model!r}\n")

    # 1. A plain completion. lstmgen adds the seed it used to the response (an extra field).
    resp = client.completions.create(model=model, prompt=PROMPT, max_tokens=120, temperature=0.7)
    choice = resp.choices[0]
    print("== completion")
    print(PROMPT + choice.text)
    print(f"-- finish_reason={choice.finish_reason} usage={resp.usage} "
          f"seed={getattr(resp, 'seed', None)}\n")

    # 2. Two choices with a seed: choice i uses seed + i, so the same request gives the same
    #    texts again. top_k is an lstmgen extra, so it goes in extra_body.
    args = dict(model=model, prompt=PROMPT, max_tokens=60, temperature=0.8, n=2, seed=42,
                extra_body={"top_k": 20})
    first = client.completions.create(**args)
    again = client.completions.create(**args)
    print("== n=2, seed=42")
    for c in first.choices:
        print(f"[{c.index}] {PROMPT + c.text!r}")
    same = [c.text for c in first.choices] == [c.text for c in again.choices]
    print(f"-- the same request again gives the same texts: {same}\n")

    # 3. Streamed: chunks of one or more characters; the last chunk of each choice has text ""
    #    and its finish_reason. The stream ends with data: [DONE], which the client consumes.
    print("== streamed")
    print(PROMPT, end="", flush=True)
    finish = None
    stream = client.completions.create(model=model, prompt=PROMPT, max_tokens=200,
                                       temperature=0.7, stream=True)
    for chunk in stream:
        c = chunk.choices[0]
        print(c.text, end="", flush=True)
        finish = c.finish_reason or finish
    print(f"\n-- finish_reason={finish}\n")

    # 4. Chat: the messages become one plain-text prompt (GET /props shows the template), and
    #    the reply continues it. A character model writes like its corpus; it does not answer.
    chat = client.chat.completions.create(model=model, max_tokens=80, seed=7,
                                          messages=[{"role": "user", "content": PROMPT}])
    print("== chat")
    print(f"{PROMPT!r} -> {chat.choices[0].message.content!r}\n")

    # 5. Scoring: echo + max_tokens 0 returns the prompt with one natural-log probability per
    #    character (None for the first, which has no context), plus the top alternatives.
    resp = client.completions.create(model=model, prompt=SCORE_TEXT, max_tokens=0, echo=True,
                                     logprobs=3)
    lp = resp.choices[0].logprobs
    scored = [(t, p) for t, p in zip(lp.tokens, lp.token_logprobs) if p is not None]
    total = sum(p for _, p in scored)
    print(f"== score of {SCORE_TEXT!r}")
    print(f"{total:.3f} nats over {len(scored)} predicted characters: "
          f"{total / len(scored):.3f} nats per character")
    worst = min(range(1, len(lp.tokens)), key=lambda i: lp.token_logprobs[i])
    alts = ", ".join(f"{t!r} {p:.2f}" for t, p in lp.top_logprobs[worst].items())
    print(f"least expected: {lp.tokens[worst]!r} at offset {lp.text_offset[worst]} "
          f"({lp.token_logprobs[worst]:.2f}); the model expected {alts}")


if __name__ == "__main__":
    try:
        main()
    except openai.APIConnectionError:
        sys.exit(f"cannot reach {URL} (set LSTMGEN_URL)")
    except openai.APIStatusError as e:  # lstmgen's {"error": {code, message, type, param}}
        sys.exit(f"HTTP {e.status_code}: {e.message}")
    except openai.APIError as e:  # e.g. an error event in a stream (--request-timeout)
        sys.exit(f"error: {e.message}")
