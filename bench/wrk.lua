-- Copyright (C) ngx_ai_gateway contributors

-- bench/wrk.lua: the request of bench/run.sh and a parseable summary.
--
--   BENCH_BODY='{...}' BENCH_HEADERS='x-api-key: sk-test' \
--       wrk -s bench/wrk.lua URL
--
-- BENCH_BODY     the JSON body of the POST (default: an OpenAI chat
--                completion, with "stream":true when BENCH_STREAM=1)
-- BENCH_HEADERS  request headers, one "Name: value" a line (default:
--                "Authorization: Bearer sk-test"); Content-Type is always
--                application/json
--
-- done() prints one line:
--   BENCH requests=N duration_us=N rps=F p50_us=N p99_us=N mean_us=F
--         bytes=N connect_err=N read_err=N write_err=N status_err=N
--         timeout_err=N

local body = os.getenv("BENCH_BODY")
local headers = os.getenv("BENCH_HEADERS")

if body == nil or body == "" then
   body = '{"model":"gpt-4o-mini","messages":[{"role":"user",'
          .. '"content":"hi"}]'
   if os.getenv("BENCH_STREAM") == "1" then
      body = body .. ',"stream":true'
   end
   body = body .. '}'
end

if headers == nil or headers == "" then
   headers = "Authorization: Bearer sk-test"
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

for line in string.gmatch(headers, "[^\n]+") do
   local name, value = string.match(line, "^([^:]+):%s*(.*)$")
   if name then
      wrk.headers[name] = value
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d"
      .. " mean_us=%.1f bytes=%d connect_err=%d read_err=%d write_err=%d"
      .. " status_err=%d timeout_err=%d\n",
      summary.requests, summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.mean,
      summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
