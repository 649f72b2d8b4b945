-- wrk script: POST /generate of LENGTH characters (env, default 200) at temperature 0.5 with
-- MODEL (env, default: the server's default), a different seed per request. Prints one JSON line.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local length = tonumber(os.getenv("LENGTH") or "200")
local model = os.getenv("MODEL")
local model_field = model and string.format('"model": "%s", ', model) or ""
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{%s"seed_text": "the meaning of life is ", "length": %d, '
    .. '"temperature": 0.5, "seed": %d}', model_field, length, counter)
  return wrk.format(nil, "/generate", nil, body)
end
done = function(summary, latency, requests)
  local rps = summary.requests / (summary.duration / 1e6)
  io.write(string.format('{"requests_per_sec": %.1f, "chars_per_sec": %.0f, "p50_ms": %.1f, '
    .. '"p99_ms": %.1f, "errors": %d}\n', rps, rps * length, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
