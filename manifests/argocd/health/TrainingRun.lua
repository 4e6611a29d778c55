local hs = shared(obj, "Waiting for the operator to start training")
if hs ~= nil then
  return hs
end
local phase = obj.status.phase
if phase == "Failed" then
  return {status = "Degraded", message = said(condition(obj, "Failed"), "Training failed")}
end
if phase == "Succeeded" then
  local validated = condition(obj, "Validated")
  if validated ~= nil and validated.status == "False" then
    -- The run finished but its model must not be promoted.
    return {status = "Degraded", message = said(validated, "The model failed its validation gates")}
  end
  return {status = "Healthy", message = said(validated, "Training succeeded")}
end
local dataset = condition(obj, "DatasetReady")
if dataset ~= nil and dataset.status == "False" then
  return {status = "Progressing", message = said(dataset, "Waiting for the dataset")}
end
return {status = "Progressing", message = "Training is " .. tostring(phase or "pending")}
