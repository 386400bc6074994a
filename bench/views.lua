-- wrk script for bench/views.py: view beacons (POST /v/{id}, as navigator.sendBeacon sends them) or the
-- no-op baseline (GET /livez). Every request comes from its own reader: a distinct address in X-Forwarded-For
-- (the server trusts it from 127.0.0.1, as from a reverse proxy) with one of 100 browser User-Agents, as real
-- readers share a few agents; so each beacon is a new visitor and should count.
--
--   wrk -t2 -c50 -d11s --timeout 10s -s bench/views.lua http://127.0.0.1:PORT -- MODE IDS_FILE SECONDS RUN
--
-- MODE: "beacon" or "livez". IDS_FILE: a Lua file returning a list of article ids (the Zipf-like draws).
-- SECONDS: the measured window, from each thread's start. After it, a beacon thread sends GET /livez until wrk
-- stops (run wrk for SECONDS + 1): a request cut off when wrk stops is then never a beacon, so every beacon the
-- server counted got its 204 here, and the stored total can be compared exactly with the 204s counted below.
-- RUN: a number that keeps the addresses of this run apart from those of any other run against the server.
-- done() prints one line: "views-bench key=value ..." with the counts of all threads.

-- wrk embeds LuaJIT: its ffi gives the monotonic clock that os.time() (whole seconds) cannot.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } views_bench_timespec;
  int clock_gettime(int clock_id, views_bench_timespec *tp);
]]
local timespec = ffi.new("views_bench_timespec")
local function now()  -- CLOCK_MONOTONIC, seconds
   ffi.C.clock_gettime(1, timespec)
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local threads = {}
local count = 0

function setup(thread)
   count = count + 1
   thread:set("index", count)
   table.insert(threads, thread)
end

local mode, ids, deadline, run
local sent, n, position = 0, 0, 0
local base_ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
   .. "Chrome/131.0.0.0 Safari/537.36 "
-- per-thread counters, read by done() through thread:get()
ok_window = 0    -- the expected status (204 beacon, 200 livez) received within the window
ok_total = 0     -- the expected status, all of the run
tail = 0         -- 200s of the tail's /livez requests (beacon mode)
bad = 0          -- anything else
bad_statuses = ""

function init(args)
   mode, run = args[1], args[4]
   ids = dofile(args[2])
   deadline = now() + tonumber(args[3])
   n = #ids
   position = ((index - 1) * 10007) % n  -- threads start at different places in the draws
end

function request()
   sent = sent + 1
   local run_number = tonumber(run) or (10 + string.byte(run) % 8)  -- "w"armup, "p"rofile: their own ranges
   local address = string.format("%d.%d.%d.%d", 10 + run_number * 8 + index, math.floor(sent / 65536) % 256,
                                 math.floor(sent / 256) % 256, sent % 256)
   local headers = {["User-Agent"] = base_ua .. "v" .. (sent % 100), ["X-Forwarded-For"] = address}
   if mode == "beacon" and now() < deadline then
      position = position % n + 1
      -- sendBeacon without data: a POST with an empty body
      return wrk.format("POST", "/v/" .. ids[position], headers, "")
   end
   return wrk.format("GET", "/livez", headers)
end

function response(status, headers, body)
   local expected = (mode == "beacon") and 204 or 200
   if status == expected then
      ok_total = ok_total + 1
      if now() < deadline then
         ok_window = ok_window + 1
      end
   elseif mode == "beacon" and status == 200 then
      tail = tail + 1
   else
      bad = bad + 1
      if #bad_statuses < 200 then
         bad_statuses = bad_statuses .. status .. ","
      end
   end
end

function done(summary, latency, requests)
   local ok_w, ok_t, t, b, statuses = 0, 0, 0, 0, ""
   for _, thread in ipairs(threads) do
      ok_w = ok_w + thread:get("ok_window")
      ok_t = ok_t + thread:get("ok_total")
      t = t + thread:get("tail")
      b = b + thread:get("bad")
      statuses = statuses .. thread:get("bad_statuses")
   end
   io.write(string.format("views-bench ok_window=%d ok_total=%d tail=%d bad=%d bad_statuses=%s\n",
                          ok_w, ok_t, t, b, statuses == "" and "-" or statuses))
end
