local hs = shared(obj, "Waiting for the operator to roll out the model")
if hs ~= nil then
  return hs
end
local ready = condition(obj, "Ready")
local degraded = condition(obj, "Degraded")
local progressing = condition(obj, "Progressing")
if degraded ~= nil and degraded.status == "True" then
  return {status = "Degraded", message = said(degraded, "The model server is failing")}
end
if progressing ~= nil and progressing.status == "True" then
  return {status = "Progressing", message = said(progressing, "Rolling out")}
end
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = said(ready, "Serving")}
end
return {status = "Progressing", message = said(ready, "Waiting for the model server")}
