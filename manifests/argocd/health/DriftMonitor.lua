hs = {status = "Progressing", message = "Waiting for the first drift check"}
if stale(obj) or obj.status.lastCheckTime == nil then
  return hs
end
local drifted = condition(obj, "Drifted")
if drifted ~= nil and drifted.status == "True" then
  -- Drift is what this resource exists to surface: show it in Argo CD rather than hide it as healthy.
  hs.status = "Degraded"
  hs.message = drifted.message
else
  hs.status = "Healthy"
  hs.message = (drifted and drifted.message) or "No drift"
end
return hs
