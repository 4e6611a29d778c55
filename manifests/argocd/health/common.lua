-- Shared by every Gyre kind: a spec change the operator has not yet observed is still progressing.
local function condition(obj, type)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == type then
        return c
      end
    end
  end
  return nil
end

local function stale(obj)
  if obj.status == nil then
    return true
  end
  local observed = obj.status.observedGeneration
  return observed == nil or (obj.metadata.generation ~= nil and observed < obj.metadata.generation)
end
