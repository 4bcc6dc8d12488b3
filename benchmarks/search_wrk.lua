-- wrk client of benchmarks/search.py: POSTs the JSON bodies of the file named by
-- SEMSEARCH_WRK_BODIES (one per line) in turn, and prints one JSON line of figures at the end.
local bodies = {}
for line in io.lines(os.getenv("SEMSEARCH_WRK_BODIES")) do
  bodies[#bodies + 1] = line
end
local next_body = 0
local headers = { ["Content-Type"] = "application/json" }

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", nil, headers, bodies[next_body])
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p95_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
