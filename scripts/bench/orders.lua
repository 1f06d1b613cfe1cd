-- wrk script for scripts/bench-orders.sh: two accounts take turns, A selling and B
-- buying 0.001 BTC-PERP at 50 000, so every pair of orders trades. Counts statuses.
local tokens = { os.getenv("TOKEN_A"), os.getenv("TOKEN_B") }
local bodies = {
  '{"symbol":"BTC-PERP","side":"sell","type":"limit","price":"50000","quantity":"0.001"}',
  '{"symbol":"BTC-PERP","side":"buy","type":"limit","price":"50000","quantity":"0.001"}',
}
local n = 0
request = function()
  n = n + 1
  local i = (n % 2) + 1
  return wrk.format("POST", "/v1/orders", {
    ["Authorization"] = "Bearer " .. tokens[i],
    ["Content-Type"] = "application/json",
  }, bodies[i])
end
