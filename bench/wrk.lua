-- Copyright (C) ngx_ai_gateway contributors

-- bench/wrk.lua: the request of bench/run.sh and a parseable summary.
--
--   BENCH_STREAM=1 wrk -s bench/wrk.lua URL    chat completion, "stream":true
--   wrk -s bench/wrk.lua URL                   chat completion, JSON answer
--
-- done() prints one line:
--   BENCH requests=N duration_us=N rps=F p50_us=N p99_us=N mean_us=F
--         bytes=N connect_err=N read_err=N write_err=N status_err=N
--         timeout_err=N

local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer sk-test"
wrk.headers["Content-Type"] = "application/json"

if stream then
   wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user",'
              .. '"content":"hi"}],"stream":true}'
else
   wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user",'
              .. '"content":"hi"}]}'
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
