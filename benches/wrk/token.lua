-- wrk script of the token bench (benches/token_vs_hsm.rs, EIDGATE_BENCH_WRK=1): each
-- connection redeems pre-minted authorization codes at /token, each code once
-- (client_secret_basic, PKCE). Codes are dealt to the threads round-robin from the file
-- EIDGATE_WRK_CODES. A thread out of codes asks GET /healthz (never counted) and stops.
-- done() prints one line "EIDGATE_WRK {json}" with the counts and latency percentiles.
local codes_path = os.getenv("EIDGATE_WRK_CODES")
local basic = os.getenv("EIDGATE_WRK_BASIC")
local verifier = os.getenv("EIDGATE_WRK_VERIFIER")
local redirect = "https%3A%2F%2Frp.example%2Fcb"
local threads = {}
local made = 0

function setup(thread)
  thread:set("id", made)
  made = made + 1
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("EIDGATE_WRK_THREADS"))
  mine = {}
  local i = 0
  for line in io.lines(codes_path) do
    if i % n == id then
      mine[#mine + 1] = line
    end
    i = i + 1
  end
  nexti = 1
  ok = 0
  bad = 0
  out = 0
end

function request()
  local code = mine[nexti]
  if code == nil then
    out = 1
    return wrk.format("GET", "/healthz")
  end
  nexti = nexti + 1
  local body = "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect .. "&code_verifier=" .. verifier
  return wrk.format("POST", "/token", {
    ["Authorization"] = "Basic " .. basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end

function response(status, headers, body)
  if out == 1 then
    wrk.thread:stop()
    return
  end
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local ok_all, bad_all, ran_out = 0, 0, 0
  for _, t in ipairs(threads) do
    ok_all = ok_all + t:get("ok")
    bad_all = bad_all + t:get("bad")
    ran_out = ran_out + t:get("out")
  end
  io.write(string.format(
    "EIDGATE_WRK {\"ok\": %d, \"bad\": %d, \"ran_out\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"max_us\": %d}\n",
    ok_all, bad_all, ran_out, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
