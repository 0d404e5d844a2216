-- bench/memory/count.lua: GET BENCH_PATH with Authorization: Bearer BENCH_TOKEN (when set).
local path = os.getenv("BENCH_PATH") or "/health/live"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

request = function()
	return wrk.format("GET", path)
end
