-- wrk script for bench/run_batching_bench.sh: POST one fixed binary-tensor body and check
-- every response against the answer the sanity check verified with onnxruntime.
--
-- Environment:
--   BENCH_BODY          path of the request body file (read once, sent verbatim)
--   BENCH_HEADERS       extra request headers, "Name: value" entries separated by '|'
--   BENCH_EXPECT        path of the checked response body (JSON header + raw FP32 output)
--   BENCH_EXPECT_IHCL   its Inference-Header-Content-Length (bytes of JSON header)
--   BENCH_LABEL         free text copied into the result line (no spaces)
--
-- As in bench/wrk_post.lua there is no request() function: wrk replays one pre-formatted
-- request.  response() compares each body with the expected one; when the bytes differ (a
-- batched GEMM may round differently from batch 1), the JSON header must be identical and
-- every float must be within 1e-4 (absolute) + 1e-4 (relative) of the expected one.
--
-- Result line (latencies in microseconds):
--   WRKRESULT label=L requests=N duration_us=D rps=R p50_us=A p99_us=B mean_us=M max_us=X
--             err_connect=. err_read=. err_write=. err_status=. err_timeout=.
--             identical=I close=C wrong=W

local ffi = require("ffi")

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local body_path = os.getenv("BENCH_BODY")
if not body_path or body_path == "" then error("BENCH_BODY is not set") end
local body = slurp(body_path)

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Length"] = tostring(#body)
for entry in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local name, value = string.match(entry, "^%s*([^:]+):%s*(.-)%s*$")
  if not name then error("bad BENCH_HEADERS entry: " .. entry) end
  wrk.headers[name] = value
end

local expect = slurp((assert(os.getenv("BENCH_EXPECT"), "BENCH_EXPECT is not set")))
local ehl = tonumber((assert(os.getenv("BENCH_EXPECT_IHCL"), "BENCH_EXPECT_IHCL is not set")))
local ehead = string.sub(expect, 1, ehl)
local nfloat = (#expect - ehl) / 4
local efl = ffi.cast("const float*", ffi.cast("const char*", expect) + ehl)

identical, close, wrong = 0, 0, 0

function response(status, headers, rbody)
  if status ~= 200 then return end -- counted by wrk as a status error
  if rbody == expect then
    identical = identical + 1
    return
  end
  if #rbody ~= #expect or string.sub(rbody, 1, ehl) ~= ehead then
    wrong = wrong + 1
    return
  end
  local got = ffi.cast("const float*", ffi.cast("const char*", rbody) + ehl)
  for i = 0, nfloat - 1 do
    local want = efl[i]
    if math.abs(got[i] - want) > 1e-4 + 1e-4 * math.abs(want) then
      wrong = wrong + 1
      return
    end
  end
  close = close + 1
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local ni, nc, nw = 0, 0, 0
  for _, t in ipairs(threads) do
    ni = ni + t:get("identical")
    nc = nc + t:get("close")
    nw = nw + t:get("wrong")
  end
  io.write(string.format(
    "WRKRESULT label=%s requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d identical=%d close=%d wrong=%d\n",
    os.getenv("BENCH_LABEL") or "-", summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, ni, nc, nw))
end
