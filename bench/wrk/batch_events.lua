-- wrk script: POST a batch (application/cloudevents-batch+json) of 100 events per request,
-- each with 100 bytes of JSON data. Events per second = requests per second * 100.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/cloudevents-batch+json"
local events = {}
for i = 1, 100 do
    events[i] = string.format(
        '{"specversion":"1.0","id":"e-%03d","source":"/bench/wrk","type":"dev.ringcast.bench",' ..
        '"datacontenttype":"application/json","data":' ..
        '{"order":"A-1000001","customer":"c-42","amount":1999,"currency":"EUR","items":3,"x":"abcdefghijklm"}}', i)
end
wrk.body = "[" .. table.concat(events, ",") .. "]"
