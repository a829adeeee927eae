-- wrk script: a flow run whose upstream request is post.lua's ("Say hello", max_tokens 16).
wrk.method = "POST"
wrk.body = '{"input":{"text":"Say hello"}}'
wrk.headers["Content-Type"] = "application/json"
