-- wrk script: bench/post.lua with each connection waiting PACE_MS (default 2) between requests,
-- so that every target serves about the same load whatever its capacity.
dofile("bench/post.lua")
function delay() return tonumber(os.getenv("PACE_MS") or "2") end
