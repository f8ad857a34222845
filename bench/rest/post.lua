-- bench/rest/post.lua — wrk script: POST a new post on every request.
-- BB_KEY and BB_TEAM come from the environment (run.sh sets them).
local key = os.getenv("BB_KEY")
local team = os.getenv("BB_TEAM") or "bench"
local n = 0
wrk.method = "POST"
wrk.path = "/v1/teams/" .. team .. "/posts"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

request = function()
  n = n + 1
  local body = '{"author":"bench","content":"benchmark post ' .. n .. '","tags":["bench","t' .. (n % 50) .. '"]}'
  return wrk.format(nil, nil, nil, body)
end
