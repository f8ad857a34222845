-- bench/gateway/mcp-call.lua — wrk script: POST one MCP JSON-RPC request
-- on an open session, over and over.  Everything comes from the environment
-- (set by run.sh): BENCH_KEY, BENCH_SID, BENCH_BODY.
local key  = os.getenv("BENCH_KEY")
local sid  = os.getenv("BENCH_SID")
local body = os.getenv("BENCH_BODY")

wrk.method = "POST"
wrk.body = body
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Session-Id"] = sid
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"

local errors = 0
function response(status, headers, resp_body)
  if status ~= 200 or string.find(resp_body, '"isError":true', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
