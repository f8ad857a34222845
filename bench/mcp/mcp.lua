-- bench/mcp/mcp.lua — wrk script: one JSON-RPC method over MCP Streamable
-- HTTP on an already open session (run.sh opens it and passes the id).
--
--   MCP_SESSION  Mcp-Session-Id        MCP_AUTH  "Bearer <key>"
--   MCP_METHOD   e.g. tools/call       MCP_PARAMS JSON object text ("{}")
--   REST_PATH    instead of MCP: GET this path (the REST baseline)
--
-- done() prints one line the runner parses:
--   RESULT <requests/s> <p50 ms> <p99 ms> <errors> <non-2xx> <requests>
local rest = os.getenv("REST_PATH")

wrk.headers["Authorization"] = os.getenv("MCP_AUTH")
if rest then
  wrk.method = "GET"
  wrk.path = rest
else
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["Mcp-Session-Id"] = os.getenv("MCP_SESSION")
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
  wrk.body = string.format('{"jsonrpc":"2.0","id":1,"method":"%s","params":%s}',
                           os.getenv("MCP_METHOD"), os.getenv("MCP_PARAMS") or "{}")
end

-- No response() hook: wrk then skips parsing bodies (it would cost more
-- than the server's work); non-2xx counts come from summary.errors.status.

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write +
               summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %.2f %d %d %d\n", summary.requests / secs,
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000, errs,
                         summary.errors.status, summary.requests))
end
