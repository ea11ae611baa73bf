-- wrk script for pipelined HTTP/1.1 (bench/compare_http's pipelined run):
--   wrk -t1 -c64 -d5s -s bench/wrk_pipeline.lua http://127.0.0.1:PORT/plaintext -- 16
-- Every connection writes DEPTH (the argument after --, default 16) GET requests for the URL's path at once,
-- waits for all DEPTH responses, and repeats; wrk counts each response as one request. wrk's own
-- "Non-2xx or 3xx responses" and "Socket errors" lines still report bad answers.

init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, wrk.path)
  end
  req = table.concat(r)
end

request = function()
  return req
end
