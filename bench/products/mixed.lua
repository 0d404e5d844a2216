-- bench/products/mixed.lua - wrk script: the mixed workload of 200 product users. Every request
-- is made as a random user (tokens file: "token pid:sid pid:sid ..." per line, the user's
-- products with their conversation session) and picks an operation by weight:
--
--   25 % GET  /api/products                               list
--   25 % GET  /api/products/{id}                          get
--   15 % POST /api/db/phase-submissions                   update a submission (upsert)
--   15 % POST /api/db/conversation-history                append a chat message
--   20 % GET  /api/db/knowledge-articles?product_id&search search the knowledge base
--
--   wrk -t2 -c200 -d60s --latency -s mixed.lua http://127.0.0.1:18090 -- tokens.txt

local users = {}
local n = 0
local seq = 0
local words = { "roadmap", "pricing", "queue", "enterprise tier", "milestones", "the" }
local statuses = { "draft", "in_progress", "completed" }

local thread_no = 0
function setup(thread)
	thread_no = thread_no + 1
	thread:set("thread_no", thread_no)
end

function init(args)
	for line in io.lines(args[1]) do
		local f = {}
		for w in line:gmatch("%S+") do
			f[#f + 1] = w
		end
		if #f >= 2 then
			local u = { auth = "Bearer " .. f[1], products = {} }
			for k = 2, #f do
				local pid, sid = f[k]:match("^([^:]+):(.+)$")
				u.products[#u.products + 1] = { pid = pid, sid = sid }
			end
			n = n + 1
			users[n] = u
		end
	end
	assert(n > 0, "no users in " .. args[1])
	math.randomseed(os.time() * 100 + (thread_no or 0))
end

local function hdr(u, json)
	local h = { ["Authorization"] = u.auth }
	if json then
		h["Content-Type"] = "application/json"
	end
	return h
end

function request()
	seq = seq + 1
	local u = users[math.random(n)]
	local p = u.products[math.random(#u.products)]
	local r = math.random(100)
	if r <= 25 then
		return wrk.format("GET", "/api/products", hdr(u))
	elseif r <= 50 then
		return wrk.format("GET", "/api/products/" .. p.pid, hdr(u))
	elseif r <= 65 then
		local body = string.format(
			'{"product_id":"%s","phase_id":"00000000-0000-0000-0001-000000000002",'
				.. '"form_data":{"market_size":"%d teams","competitors":"several"},'
				.. '"status":"%s"}',
			p.pid, seq, statuses[math.random(#statuses)])
		return wrk.format("POST", "/api/db/phase-submissions", hdr(u, true), body)
	elseif r <= 80 then
		local body = string.format(
			'{"session_id":"%s","product_id":"%s","message_type":"user",'
				.. '"content":"Benchmark message %d: what does the market look like?"}',
			p.sid, p.pid, seq)
		return wrk.format("POST", "/api/db/conversation-history", hdr(u, true), body)
	else
		local q = words[math.random(#words)]:gsub(" ", "+")
		return wrk.format("GET", "/api/db/knowledge-articles?product_id=" .. p.pid
			.. "&search=" .. q, hdr(u))
	end
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"mixed: %d requests, %.0f req/s, errors: status %d, connect %d, read %d, write %d, "
			.. "timeout %d; latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
		summary.requests, summary.requests / (summary.duration / 1e6), e.status, e.connect,
		e.read, e.write, e.timeout, latency:percentile(50) / 1000,
		latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
