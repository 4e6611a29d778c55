hs = {status = "Progressing", message = "Waiting for the operator to roll out the model"}
if stale(obj) then
  return hs
end
local ready = condition(obj, "Ready")
local degraded = condition(obj, "Degraded")
local progressing = condition(obj, "Progressing")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = degraded.message
elseif progressing ~= nil and progressing.status == "True" then
  hs.message = progressing.message
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
elseif ready ~= nil then
  hs.message = ready.message
end
return hs
