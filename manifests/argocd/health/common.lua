-- Shared by every Gyre kind. Argo CD runs argocd-cm health scripts with only Lua's base, table and package
-- libraries (no string.*, math.*, os.*): use nothing else here.
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

-- Ready=False reasons (gyre.api.reasons) that mean "waiting for something else", not "broken". Any other reason on
-- Ready=False (InvalidSpec, CheckFailed, ImageNotAllowed, SourceRefused, ProfilingFailed, a store error, ...) is
-- Degraded, so a reason added later shows up rather than hiding as progress.
local waiting = {
  Profiling = true,
  DatasetNotFound = true,
  DatasetNotReady = true,
  DeploymentNotFound = true,
  ReferenceUnknown = true,
  ReferenceNotReady = true,
  TrainingRunNotFound = true,
  WaitingForTraining = true,
  WaitingForValidatedRun = true,
  RollingOut = true,
}

local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

-- The states every kind shares, in order: being deleted; a write the API server refused (Synced=False: the status
-- then stays as it was, observedGeneration included, so this comes before staleness); a spec change the operator
-- has not observed yet; Ready=False. nil when none applies and the kind decides.
local function shared(obj, pending)
  local meta = obj.metadata or {}
  if meta.deletionTimestamp ~= nil then
    return {status = "Progressing", message = "Being deleted: waiting for the operator to release it"}
  end
  local synced = condition(obj, "Synced")
  if synced ~= nil and synced.status == "False" then
    return {status = "Degraded", message = said(synced, "The API server refused the operator's write")}
  end
  local observed = obj.status and obj.status.observedGeneration
  if observed == nil or (meta.generation ~= nil and observed < meta.generation) then
    return {status = "Progressing", message = pending}
  end
  local ready = condition(obj, "Ready")
  if ready ~= nil and ready.status == "False" then
    if waiting[ready.reason] then
      return {status = "Progressing", message = said(ready, pending)}
    end
    return {status = "Degraded", message = said(ready, "Not ready: " .. tostring(ready.reason))}
  end
  return nil
end
