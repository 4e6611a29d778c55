hs = {status = "Progressing", message = "Waiting for the operator to start training"}
if stale(obj) then
  return hs
end
local validated = condition(obj, "Validated")
local phase = obj.status.phase
if phase == "Failed" then
  local failed = condition(obj, "Failed")
  hs.status = "Degraded"
  hs.message = (failed and failed.message) or "Training failed"
elseif phase == "Succeeded" then
  if validated ~= nil and validated.status == "False" then
    -- The run finished but its model must not be promoted.
    hs.status = "Degraded"
    hs.message = validated.message
  else
    hs.status = "Healthy"
    hs.message = (validated and validated.message) or "Training succeeded"
  end
else
  hs.message = "Training is " .. tostring(phase or "pending")
end
return hs
