-- The edge's own rules, run by Envoy's Lua filter BEFORE the gRPC-JSON transcoder.
-- Inlined into envoy.yaml by gateway/render.py. Request: keep HTTP clients out of gRPC's
-- control metadata and refuse what the transcoder cannot carry. Response: the service's
-- x-http-status becomes the real status, and a bare gRPC status (no body: the gRPC runtime
-- or the transcoder failed, not the service's renderer) becomes an OpenAI error envelope.

-- Request headers that mean something to gRPC, the transcoder or Envoy's router. A client
-- that sets them could pick the service's deadline (grpc-timeout), break the gRPC layer
-- (grpc-encoding, undecodable *-bin values) or steer Envoy (x-envoy-*): they are dropped.
-- Names outside gRPC's metadata key alphabet (0-9 a-z _ . -), such as "~" or "a!b", make the
-- gRPC server fail the call (a 500): they are dropped too, as no part of the service reads them.
local function is_control_header(name)
  return (name:sub(1, 1) ~= ":" and name:find("[^0-9a-z_.%-]") ~= nil)
    or name == "te"
    or name == "x-http-status"
    or name:sub(1, 5) == "grpc-"
    or name:sub(1, 8) == "x-envoy-"
    or name:sub(-4) == "-bin"
end

local function json_string(text)
  local escaped = text:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

local function envelope(message, error_type, code, param)
  return '{"error":{"message":' .. json_string(message)
    .. ',"type":' .. json_string(error_type)
    .. ',"param":' .. (param and json_string(param) or "null")
    .. ',"code":' .. json_string(code) .. "}}"
end

-- Envoy answers a request that claims to be gRPC (content-type application/grpc*) in gRPC
-- form (HTTP 200 + grpc-status); the intended status is kept here for envoy_on_response.
local STASH = "openai.edge"

local function refuse(handle, status, message, code, param, allow)
  handle:streamInfo():dynamicMetadata():set(STASH, "status", tostring(status))
  local headers = { [":status"] = tostring(status), ["content-type"] = "application/json" }
  if allow then
    headers["allow"] = allow
  end
  handle:respond(headers, envelope(message, "invalid_request_error", code, param))
end

-- True when s is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local length, low, high = 1, 0x80, 0xBF
    if c < 0x80 then
      length = 1
    elseif c >= 0xC2 and c <= 0xDF then
      length = 2
    elseif c >= 0xE0 and c <= 0xEF then
      length = 3
      if c == 0xE0 then low = 0xA0 elseif c == 0xED then high = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      length = 4
      if c == 0xF0 then low = 0x90 elseif c == 0xF4 then high = 0x8F end
    else
      return false
    end
    for j = i + 1, i + length - 1 do
      local d = s:byte(j)
      if d == nil or d < low or d > high then
        return false
      end
      low, high = 0x80, 0xBF
    end
    i = i + length
  end
  return true
end

local function percent_decoded(text)
  return (text:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

-- The URLs of the HTTP face and their methods: the http rules of proto/imagegen/v1/*.proto
-- plus /openapi.json, served by Envoy itself (tests/unit/test_edge_routes.py keeps them in
-- step). A known URL with another method is a 405; unknown URLs go on to the transcoder's 404.
local ROUTES = {
  { "^/v1/images/generations$", "POST" },
  { "^/v1/images/edits$", "POST" },
  { "^/v1/images/variations$", "POST" },
  { "^/v1/models$", "GET" },
  { "^/v1/models/.+$", "GET" },
  { "^/v1/organization/usage/images$", "GET" },
  { "^/mcp$", "POST, GET, DELETE" },
  { "^/openapi%.json$", "GET" },
}

local function check_method(handle, method, path)
  if method == "OPTIONS" then -- CORS preflight: not ours to answer
    return true
  end
  local route = path:match("^[^?]*")
  for _, entry in ipairs(ROUTES) do
    if route:find(entry[1]) then
      if (", " .. entry[2] .. ","):find(", " .. method .. ",", 1, true) then
        return true
      end
      refuse(handle, 405, method .. " is not allowed on " .. route .. "; use " .. entry[2] .. ".",
        "method_not_allowed", nil, entry[2])
      return false
    end
  end
  return true
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local control, bad_text = {}, nil
  for name, value in pairs(headers) do
    if is_control_header(name) then
      control[#control + 1] = name
    elseif not valid_utf8(value) then
      bad_text = name -- gRPC metadata is UTF-8 text: the service could not read it
    end
  end
  for _, name in ipairs(control) do
    headers:remove(name)
  end
  if bad_text ~= nil then
    refuse(handle, 400, "The " .. bad_text .. " header is not valid UTF-8 text.",
      "invalid_header", bad_text)
    return
  end

  local content_type = (headers:get("content-type") or ""):lower()
  if content_type:find("^application/grpc") then
    refuse(handle, 415, "This endpoint speaks HTTP/JSON; gRPC clients call the gRPC port.",
      "unsupported_media_type", "Content-Type")
    return
  end

  local path = headers:get(":path") or ""
  local decoded = percent_decoded(path)
  if not valid_utf8(decoded) or decoded:find("%z") then
    local param = path:find("?", 1, true) and "query" or "path"
    refuse(handle, 400, "The request URL is not valid UTF-8 text (or holds a NUL byte).",
      "invalid_url", param)
    return
  end
  check_method(handle, headers:get(":method") or "", path)
end

-- gRPC status code -> HTTP status, OpenAI error type, code, message.
local GRPC_STATUS = {
  ["1"] = { 499, "request_cancelled", "cancelled", "The request was cancelled." },
  ["2"] = { 500, "server_error", "internal_error", "The server failed to process the request." },
  ["3"] = { 400, "invalid_request_error", "invalid_request", "The request is not valid." },
  ["4"] = { 504, "timeout_error", "timeout", "The image service did not answer in time." },
  ["5"] = { 404, "not_found_error", "not_found", "Not found." },
  ["6"] = { 409, "conflict_error", "conflict", "The request conflicts with another one." },
  ["7"] = { 403, "permission_error", "permission_denied", "Permission denied." },
  ["8"] = { 429, "rate_limit_error", "resource_exhausted",
    "The service is out of capacity for this request; retry later." },
  ["9"] = { 400, "invalid_request_error", "failed_precondition", "The request cannot be served." },
  ["10"] = { 409, "conflict_error", "aborted", "The request was aborted; retry it." },
  ["11"] = { 400, "invalid_request_error", "out_of_range", "A request value is out of range." },
  ["12"] = { 404, "invalid_request_error", "unknown_url", "Unknown request URL." },
  ["13"] = { 500, "server_error", "internal_error", "The server failed to process the request." },
  ["14"] = { 503, "service_unavailable", "service_unavailable",
    "The image service is unavailable; retry later." },
  ["15"] = { 500, "server_error", "internal_error", "The server failed to process the request." },
  ["16"] = { 401, "authentication_error", "unauthenticated", "Authentication failed." },
}

function envoy_on_response(handle)
  local headers = handle:headers()
  local status = headers:get("x-http-status")
  if status ~= nil then
    headers:replace(":status", status)
    headers:remove("x-http-status")
    return
  end
  -- A gRPC status in the response HEADERS is a trailers-only answer: the RPC failed
  -- before the service wrote a body. The service never answers the HTTP face this way.
  local grpc_status = headers:get("grpc-status")
  if grpc_status == nil or grpc_status == "0" then
    return
  end
  local mapped = GRPC_STATUS[grpc_status] or GRPC_STATUS["2"]
  local body = envelope(mapped[4], mapped[2], mapped[3], nil)
  local message = percent_decoded(headers:get("grpc-message") or "")
  if message:sub(1, 9) == '{"error":' then -- Envoy's own reply, already an envelope
    body = message
  end
  local stash = handle:streamInfo():dynamicMetadata():get(STASH)
  headers:replace(":status", stash and stash.status or tostring(mapped[1]))
  headers:replace("content-type", "application/json")
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("content-length")
  handle:body(true):setBytes(body)
end
