-- POST the JSON body named by BENCH_BODY_FILE on every request (bench/wrk.py sets it).
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
file:close()
