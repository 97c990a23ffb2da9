-- wrk script: POST one binary-mode CloudEvent (100-byte JSON data) per request.
wrk.method = "POST"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "0d7bd1e4-6f4e-4bb3-9d3a-3b1c2f6b9e01"
wrk.headers["ce-source"] = "/bench/wrk"
wrk.headers["ce-type"] = "dev.ringcast.bench"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"order":"A-1000001","customer":"c-42","amount":1999,"currency":"EUR","items":3,"x":"abcdefghijklm"}'
