-- wrk script: one chat completion request, non-streaming.
wrk.method = "POST"
wrk.body = '{"model":"mock","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
