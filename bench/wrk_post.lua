-- wrk script for bench/run_rest_bench.sh: POST one fixed body, report one parseable line.
--
-- Environment:
--   BENCH_BODY     path of the request body file (read once, sent verbatim)
--   BENCH_HEADERS  extra request headers, "Name: value" entries separated by '|'
--   BENCH_LABEL    free text copied into the result line (no spaces)
--   BENCH_EXPECT   optional: path of a checked JSON answer. Then every 200 answer is
--                  compared with it: byte-identical, or "close" when its text outside
--                  the numbers is identical and every number is within 1e-6 relative
--                  (+1e-9 absolute) of the expected one (a batched run may round
--                  differently); anything else is "wrong". Without it no response() is
--                  defined, so wrk parses no body.
--
-- No request() function is defined, so wrk formats the request once and replays the
-- same bytes on every call: the load generator does no per-request Lua work.
--
-- Result line (latencies in microseconds, as wrk records them):
--   WRKRESULT label=L requests=N duration_us=D rps=R p50_us=A p99_us=B mean_us=M max_us=X
--             err_connect=. err_read=. err_write=. err_status=. err_timeout=.
--             [identical=I close=C wrong=W]   (with BENCH_EXPECT)

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

local NUMBER = "[-+]?%d+%.?%d*[eE]?[-+]?%d*"
local expect_path = os.getenv("BENCH_EXPECT")
if expect_path and expect_path ~= "" then
  local ef = assert(io.open(expect_path, "rb"))
  local expect = ef:read("*a")
  ef:close()
  local eskeleton = string.gsub(expect, NUMBER, "#")
  local enums = {}
  for n in string.gmatch(expect, NUMBER) do enums[#enums + 1] = tonumber(n) end
  identical, close, wrong = 0, 0, 0
  function response(status, headers, rbody)
    if status ~= 200 then return end -- counted by wrk as a status error
    if rbody == expect then
      identical = identical + 1
      return
    end
    if string.gsub(rbody, NUMBER, "#") ~= eskeleton then
      wrong = wrong + 1
      return
    end
    local i = 0
    for n in string.gmatch(rbody, NUMBER) do
      i = i + 1
      local got, want = tonumber(n), enums[i]
      if not got or not want or math.abs(got - want) > 1e-9 + 1e-6 * math.abs(want) then
        wrong = wrong + 1
        return
      end
    end
    close = close + 1
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT label=%s requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d",
    os.getenv("BENCH_LABEL") or "-", summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
  if expect_path and expect_path ~= "" then
    local ni, nc, nw = 0, 0, 0
    for _, t in ipairs(threads) do
      ni, nc, nw = ni + t:get("identical"), nc + t:get("close"), nw + t:get("wrong")
    end
    io.write(string.format(" identical=%d close=%d wrong=%d", ni, nc, nw))
  end
  io.write("\n")
end
