local hs = shared(obj, "Waiting for the operator to profile the dataset")
if hs ~= nil then
  return hs
end
local ready = condition(obj, "Ready")
local refreshing = condition(obj, "Refreshing")
if obj.status.phase == "Failed" then
  return {status = "Degraded", message = said(ready, "Profiling failed")}
end
if ready == nil or ready.status ~= "True" then
  return {status = "Progressing", message = said(ready, "Waiting for the first profile")}
end
local version = "Version " .. tostring(obj.status.version) .. " (" .. tostring(obj.status.fingerprint) .. ")"
if refreshing ~= nil and refreshing.status == "True" then
  return {status = "Progressing", message = version .. "; " .. said(refreshing, "re-reading the source")}
end
if refreshing ~= nil and refreshing.status == "False" and not waiting[refreshing.reason]
    and refreshing.reason ~= "Profiled" and refreshing.reason ~= "SpecChanged" then
  -- The current version stays usable, but the source can no longer be re-read.
  return {status = "Degraded", message = version .. "; refresh failed: " .. said(refreshing, refreshing.reason)}
end
return {status = "Healthy", message = version}
