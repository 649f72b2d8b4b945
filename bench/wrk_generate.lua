-- wrk script: POST /generate of 200 characters at temperature 0.5, a different seed per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{"seed_text": "the meaning of life is ", "length": 200, "temperature": 0.5, "seed": %d}', counter)
  return wrk.format(nil, "/generate", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("requests/s %.1f  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
