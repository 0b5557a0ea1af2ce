-- wrk script for bench/run_rest_bench.sh: POST one fixed body, report one parseable line.
--
-- Environment:
--   BENCH_BODY     path of the request body file (read once, sent verbatim)
--   BENCH_HEADERS  extra request headers, "Name: value" entries separated by '|'
--   BENCH_LABEL    free text copied into the result line (no spaces)
--
-- No request() function is defined, so wrk formats the request once and replays the
-- same bytes on every call: the load generator does no per-request Lua work.
--
-- Result line (latencies in microseconds, as wrk records them):
--   WRKRESULT label=L requests=N duration_us=D rps=R p50_us=A p99_us=B mean_us=M max_us=X
--             err_connect=. err_read=. err_write=. err_status=. err_timeout=.

local path = os.getenv("BENCH_BODY")
if not path or path == "" then
  error("BENCH_BODY is not set")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Length"] = tostring(#body)
for entry in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local name, value = string.match(entry, "^%s*([^:]+):%s*(.-)%s*$")
  if not name then
    error("bad BENCH_HEADERS entry: " .. entry)
  end
  wrk.headers[name] = value
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT label=%s requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    os.getenv("BENCH_LABEL") or "-", summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
