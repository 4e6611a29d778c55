hs = {status = "Progressing", message = "Waiting for the operator to profile the dataset"}
if stale(obj) then
  return hs
end
local ready = condition(obj, "Ready")
if obj.status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = (ready and ready.message) or "Profiling failed"
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Version " .. tostring(obj.status.version) .. " (" .. tostring(obj.status.fingerprint) .. ")"
elseif ready ~= nil then
  hs.message = ready.message
end
return hs
