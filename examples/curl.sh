#!/usr/bin/env bash
# A tour of the lstmgen HTTP API with curl: generation, streaming, OpenAI completions, a corpus
# upload and a training job followed to the end. Needs bash, curl (7.76 or newer), sed, grep
# and awk.
#
#   bash examples/curl.sh
#   LSTMGEN_URL=http://host:8080 LSTMGEN_API_KEY=KEY CORPUS=some.txt bash examples/curl.sh
#
# LSTMGEN_URL      the server (default http://localhost:8080)
# LSTMGEN_API_KEY  sent as "Authorization: Bearer KEY" (needed if the server has --api-key)
# CORPUS           a UTF-8 text file to train on (default: a small generated text)
# MODEL_NAME       the model the training job publishes (default curl-example; replaced if it
#                  exists)
#
# The generation sections use the server's default model and are skipped when the server has
# no model yet; the end of the script generates with the model the job trained.
# docs/API.md describes every endpoint and field.
set -euo pipefail

URL=${LSTMGEN_URL:-http://localhost:8080}
URL=${URL%/}
MODEL_NAME=${MODEL_NAME:-curl-example}
AUTH=()
if [[ -n ${LSTMGEN_API_KEY:-} ]]; then
    AUTH=(-H "Authorization: Bearer $LSTMGEN_API_KEY")
fi

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
section() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ %s\n' "$*"; }

# api METHOD PATH [curl options...]: prints the response body. On an HTTP error it prints the
# body, {"error": {...}}, on stderr and fails.
api() {
    local method=$1 path=$2 out rc=0
    shift 2
    out=$(curl -sS --fail-with-body -X "$method" "${AUTH[@]}" "$URL$path" "$@" 2>/dev/null) || rc=$?
    if ((rc)); then
        printf '%s %s failed: %s\n' "$method" "$path" "${out:-curl exit code $rc}" >&2
        [[ $out == *'"unauthorized"'* ]] && echo "(set LSTMGEN_API_KEY to the server's --api-key)" >&2
        return "$rc"
    fi
    printf '%s\n' "$out"
}

# api_stream METHOD PATH [curl options...]: the same, unbuffered, for server-sent events.
api_stream() {
    local method=$1 path=$2
    shift 2
    curl -sS -N --fail-with-body -X "$method" "${AUTH[@]}" "$URL$path" "$@"
}

# json_str KEY: the last "KEY": string in the JSON on stdin, still escaped; json_num KEY: the first
# "KEY": number. Enough for lstmgen's one-line responses; use jq or python for anything serious.
json_str() { sed -nE 's/.*"'"$1"'":"(([^"\\]|\\.)*)".*/\1/p'; }
json_num() { grep -oE '"'"$1"'":-?[0-9.eE+-]+' | head -n 1 | cut -d: -f2; }

# Undoes the JSON string escapes cJSON writes (\" \\ \n \r \t; other control characters are rare
# in generated text and are left as they are).
unescape() {
    local s=$1
    s=${s//\\\\/$'\x01'}
    s=${s//\\n/$'\n'}
    s=${s//\\r/$'\r'}
    s=${s//\\t/$'\t'}
    s=${s//\\\"/\"}
    printf '%s' "${s//$'\x01'/\\}"
}

# ---------------------------------------------------------------------------------------------
section "Is the server up?"
show "curl $URL/readyz"
ready=$(api GET /readyz) || { echo "no lstmgen server at $URL (set LSTMGEN_URL)"; exit 1; }
echo "$ready"
n_models=$(json_num models <<<"$ready")

show "curl $URL/models"
api GET /models
echo

if [[ ${n_models:-0} -gt 0 ]]; then
    # -------------------------------------------------------------------------------------------
    section "Generate (JSON): the continuation, the seed that makes it replayable, usage, timing"
    # curl -d sends Content-Type application/x-www-form-urlencoded, which the server takes as
    # JSON; -H 'Content-Type: application/json' is the explicit form. unknown_chars "skip" drops
    # seed characters the model has never seen (the default, "error", answers 400).
    body='{"seed_text": "The ", "length": 200, "temperature": 0.5, "seed": 42, "unknown_chars": "skip"}'
    show "curl $URL/generate -H 'Content-Type: application/json' -d '$body'"
    out=$(api POST /generate -H 'Content-Type: application/json' -d "$body")
    echo "$out"
    echo "-- the text:"
    unescape "$(json_str text <<<"$out")"
    echo

    section "The same request again gives the same text (same model, request and seed)"
    again=$(api POST /generate -d "$body")
    [[ $(json_str text <<<"$again") == "$(json_str text <<<"$out")" ]] && echo "identical" ||
        echo "different (was the model file replaced?)"

    section "Stop strings: stop at the first blank line; finish_reason becomes \"stop\""
    body='{"seed_text": "The ", "length": 1000, "temperature": 0.5, "stop": ["\n\n"], "seed": 3, "unknown_chars": "skip"}'
    show "curl $URL/generate -d '$body'"
    api POST /generate -d "$body"

    # -------------------------------------------------------------------------------------------
    section "Stream: server-sent events, one or more whole characters per event"
    # Each event is 'data: {"text": "..."}' and a blank line; the last one has no text but
    # finish_reason, seed, usage and timing. -N turns off curl's buffering.
    body='{"seed_text": "The ", "length": 300, "temperature": 0.7, "stream": true, "unknown_chars": "skip"}'
    show "curl -N $URL/generate -d '$body'"
    echo "-- first events as they arrive on the wire:"
    api_stream POST /generate -d "$body" | head -n 6 || true # head hangs up early: curl exits 23
    echo "-- the text as it streams, then the summary event:"
    while IFS= read -r line; do
        case $line in
        'data: {"text":'*) unescape "$(json_str text <<<"${line#data: }")" ;;
        'data: '*) printf '\n-- %s\n' "${line#data: }" ;;
        esac
    done < <(api_stream POST /generate -d "$body")

    section "Cancel a streamed generation from another connection (its id is in X-Request-Id)"
    headers=$(mktemp)
    body='{"seed_text": "The ", "length": 5000, "mode": "window", "stream": true, "unknown_chars": "skip"}'
    api_stream POST /generate -D "$headers" -d "$body" >"$headers.body" &
    stream_pid=$!
    id=
    for _ in $(seq 50); do # wait for the headers
        id=$(sed -nE 's/^[Xx]-[Rr]equest-[Ii]d: *([^[:space:]]+).*/\1/p' "$headers")
        [[ -n $id ]] && break
        sleep 0.1
    done
    if [[ -n $id ]]; then
        show "curl -X DELETE $URL/generations/$id"
        api DELETE "/generations/$id" || true # 404 if it has already finished
    fi
    wait "$stream_pid" || true
    echo "-- the stream's last event:"
    grep '^data: ' "$headers.body" | tail -n 1
    rm -f "$headers" "$headers.body"

    # -------------------------------------------------------------------------------------------
    section "OpenAI-compatible completions (tokens are characters)"
    body='{"prompt": "the ", "max_tokens": 60, "temperature": 0.7, "n": 2, "seed": 7}'
    show "curl $URL/v1/completions -d '$body'"
    api POST /v1/completions -d "$body"

    section "OpenAI streaming: text_completion chunks, then data: [DONE]"
    body='{"prompt": "the ", "max_tokens": 4, "seed": 7, "stream": true}'
    show "curl -N $URL/v1/completions -d '$body'"
    api_stream POST /v1/completions -d "$body"

    section "Score a text: echo + max_tokens 0 + logprobs (natural logs, one per character)"
    body='{"prompt": "the end of the ", "max_tokens": 0, "echo": true, "logprobs": 1}'
    show "curl $URL/v1/completions -d '$body'"
    scored=$(api POST /v1/completions -d "$body")
    echo "$scored"
    logprobs=$(sed -nE 's/.*"token_logprobs":\[([^]]*)\].*/\1/p' <<<"$scored")
    awk -v RS=, '$1 != "null" { s += $1; n++ } END { printf "-- %d characters scored: %.3f nats in all, %.3f per character\n", n, s, s / n }' <<<"$logprobs"

    section "An error: every error is {\"error\": {code, message, type, param}}"
    show "curl $URL/generate -d '{\"seed_txt\": \"oops\"}'"
    api POST /generate -d '{"seed_txt": "oops"}' 2>&1 || true
else
    section "The server has no model yet: skipping generation until the job below has trained one"
fi

# ---------------------------------------------------------------------------------------------
section "Upload a corpus (raw text: Content-Type text/plain and ?name=)"
corpus_file=${CORPUS:-}
if [[ -z $corpus_file ]]; then
    # A small made-up text, so the script needs nothing else. Any UTF-8 file works: CORPUS=...
    corpus_file=$(mktemp)
    trap 'rm -f "$corpus_file"' EXIT
    subjects=("The old sailor" "A quiet river" "The miller's daughter" "The grey wolf" "A tired king")
    verbs=("walked along" "sang about" "dreamed of" "looked across" "remembered")
    objects=("the silver sea." "the winter road." "the lanterns of the town." "the long night." "the hills at dawn.")
    RANDOM=1
    for _ in $(seq 3000); do
        printf '%s %s %s\n' "${subjects[RANDOM % 5]}" "${verbs[RANDOM % 5]}" "${objects[RANDOM % 5]}"
        if ((RANDOM % 4 == 0)); then printf '\n'; fi
    done >"$corpus_file"
fi
show "curl '$URL/corpora?name=curl-example' -H 'Content-Type: text/plain' --data-binary @$corpus_file"
corpus=$(api POST '/corpora?name=curl-example' -H 'Content-Type: text/plain' --data-binary @"$corpus_file")
echo "$corpus"
corpus_id=$(json_num id <<<"$corpus")
# The JSON form does the same: -d '{"name": "...", "text": "..."}'

show "curl $URL/corpora?limit=3"
api GET '/corpora?limit=3'

# ---------------------------------------------------------------------------------------------
section "Queue a training job and poll its progress"
hp='{"regime": "sequence", "layers": 1, "hidden": 128, "epochs": 20, "max_seconds": 120, "sample_chars": 60}'
body="{\"corpus_id\": $corpus_id, \"model_name\": \"$MODEL_NAME\", \"hyperparameters\": $hp}"
show "curl $URL/jobs -d '$body'"
job=$(api POST /jobs -d "$body")
echo "$job"
job_id=$(json_num id <<<"$job")

# GET /jobs/{id} every 2 s until the job has finished. (GET /jobs/{id}/events streams the same
# progress as server-sent events; see below.)
while :; do
    job=$(api GET "/jobs/$job_id")
    status=$(json_str status <<<"$job")
    progress=$(sed -nE 's/.*"progress":\{([^}]*)\}.*/\1/p' <<<"$job")
    printf '%s  status=%-9s epoch %s/%s  step %s/%s  fraction %s  train_loss %s\n' "$(date +%T)" \
        "$status" "$(json_num epoch <<<"$progress")" "$(json_num epochs <<<"$progress")" \
        "$(json_num step <<<"$progress")" "$(json_num steps <<<"$progress")" \
        "$(json_num fraction <<<"$progress")" "$(json_num train_loss <<<"$progress")"
    case $status in queued | running) sleep 2 ;; *) break ;; esac
done
if [[ $status != succeeded ]]; then
    echo "the job ended $status: $(json_str error <<<"$job")"
    exit 1
fi

section "The job's events: for a finished job, every epoch is replayed, then progress and end"
show "curl -N $URL/jobs/$job_id/events"
# Each event is "event: NAME", "data: JSON" and a blank line; shown here one line each, cut short.
api_stream GET "/jobs/$job_id/events" |
    awk '/^event: / { name = substr($0, 8) } /^data: / { printf "%-8s %s\n", name, substr($0, 7, 110) }'

# ---------------------------------------------------------------------------------------------
section "Generate with the new model"
show "curl $URL/models/$MODEL_NAME"
api GET "/models/$MODEL_NAME"
body="{\"model\": \"$MODEL_NAME\", \"seed_text\": \"The old \", \"length\": 200, \"temperature\": 0.5, \"unknown_chars\": \"skip\"}"
show "curl $URL/generate -d '$body'"
out=$(api POST /generate -d "$body")
echo "$out"
echo "-- the text:"
unescape "$(json_str text <<<"$out")"
echo

section "Delete the corpus (the job keeps its history, with corpus_id null)"
show "curl -X DELETE $URL/corpora/$corpus_id"
api DELETE "/corpora/$corpus_id"
echo
echo "done: model '$MODEL_NAME' stays on the server (curl -X DELETE $URL/models/$MODEL_NAME removes it)"
