-- wrk script for the soak: bench/full.lua (a new prompt each request) with each connection
-- pausing PACE_MS between requests, for a steady moderate rate.
dofile("bench/full.lua")
function delay() return tonumber(os.getenv("PACE_MS") or "40") end
