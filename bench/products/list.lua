-- bench/products/list.lua - wrk script: GET /api/products, each request as the next of the
-- benchmark's users (tokens file: one line per user, the token first), so the 200 users'
-- sessions and product lists rotate over every connection.
--
--   wrk -t2 -c200 -d30s --latency -s list.lua http://127.0.0.1:18090 -- tokens.txt

local reqs = {}
local n = 0
local i = 0

function init(args)
	for line in io.lines(args[1]) do
		local tok = line:match("^(%S+)")
		if tok then
			n = n + 1
			reqs[n] = wrk.format("GET", "/api/products",
				{ ["Authorization"] = "Bearer " .. tok })
		end
	end
	assert(n > 0, "no tokens in " .. args[1])
	math.randomseed(os.time() + math.floor(os.clock() * 1e6))
	i = math.random(n)
end

function request()
	i = i % n + 1
	return reqs[i]
end
