-- wrk script: a chat completion at temperature 0 whose prompt is new on every request (a random
-- prefix per run and a counter), so that the exact cache looks up, misses and stores each time.
math.randomseed(os.time() + os.clock() * 1e6)
local run = math.random(1, 1e9)
local n = 0
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local body = '{"model":"mock","temperature":0,"max_tokens":16,"messages":[{"role":"user","content":"Say hello to Dana at dana@example.com, ticket '
    .. run .. '-' .. n .. '"}]}'
  -- nil headers: wrk.headers, which carries the -H ones (an authorization key).
  return wrk.format("POST", nil, nil, body)
end
