-- Requests for bench/decide.py (wrk 4.x).
--
-- BENCH_KIND=decide (default): POST /api/v1/actions with the bearer token in BENCH_TOKEN,
--   a refund the benchmark's policy allows, on a different charge for every request.
-- BENCH_KIND=ping: GET /ping.
-- BENCH_SESSIONS=N (N > 0): each decision also names one of N sessions ("session_id"),
--   in turn, so that a canary rollout's sticky assignment by session is exercised.
--
-- At the end one line "BENCH_JSON {...}" sums every thread: requests, status codes,
-- bodies that said "allowed" (or "pong"), socket errors and latency percentiles (µs).

local kind = os.getenv("BENCH_KIND") or "decide"
local token = os.getenv("BENCH_TOKEN") or ""
local sessions = tonumber(os.getenv("BENCH_SESSIONS") or "0") or 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

function init(args)
  sent = 0
  statuses = {}
  good = 0
  headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }
end

function request()
  sent = sent + 1
  if kind == "ping" then
    return wrk.format("GET", "/ping")
  end
  local charge = string.format("ch_%d_%d", thread_no, sent)
  local session = ""
  if sessions > 0 then
    session = string.format(',"session_id":"s-%d"', (thread_no * 7919 + sent) % sessions)
  end
  local body = string.format(
    '{"action":"payments.refund","resource":"stripe:charge/%s",'
      .. '"params":{"amount":%d,"charges":["%s"],"currency":"usd"},'
      .. '"reason":"customer asked for a refund"%s}',
    charge, 20 + sent % 400, charge, session)
  return wrk.format("POST", "/api/v1/actions", headers, body)
end

function response(status, hdrs, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if kind == "ping" then
    if body and body:find('"pong"', 1, true) then good = good + 1 end
  elseif body and body:find('"status"%s*:%s*"allowed"') then
    good = good + 1
  end
end

function done(summary, latency, requests)
  local all = {}
  local total_good = 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do all[k] = (all[k] or 0) + v end
    total_good = total_good + t:get("good")
  end
  local parts = {}
  for k, v in pairs(all) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"statuses":{%s},"good":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, table.concat(parts, ","), total_good,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
