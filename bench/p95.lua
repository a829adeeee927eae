-- wrk script: bench/paced.lua, printing the 95th percentile latency (wrk's own output stops at
-- 90 and 99) and the request count, for bench/batches.py.
dofile("bench/paced.lua")
function done(summary, latency, requests)
  io.write(string.format("p95_us %d\nrequests %d\nnon2xx %d\n", latency:percentile(95), summary.requests, summary.errors.status))
end
