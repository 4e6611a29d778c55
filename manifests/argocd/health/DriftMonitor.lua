local hs = shared(obj, "Waiting for the operator to schedule the first drift check")
if hs ~= nil then
  return hs
end
local ready = condition(obj, "Ready")
local drifted = condition(obj, "Drifted")
if drifted ~= nil and drifted.status == "True" then
  -- Drift is what this resource exists to surface: show it in Argo CD rather than hide it as healthy.
  return {status = "Degraded", message = said(drifted, "Drift detected")}
end
local degraded = condition(obj, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  -- The served model performs worse than on its test split (spec.performance): as visible as drift.
  return {status = "Degraded", message = said(degraded, "Performance degraded")}
end
if obj.status.lastCheckTime == nil then
  return {status = "Progressing", message = said(ready, "Waiting for the first drift check")}
end
if drifted ~= nil then
  return {status = "Healthy", message = said(drifted, "No drift")}
end
-- Checked, but without a verdict yet (too few rows in the window).
return {status = "Healthy", message = said(ready, "No drift")}
