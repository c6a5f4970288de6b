-- Argo CD health check for kubetally's billing objects (group kubetally.io): CostReport, CostWeights,
-- and any later kind whose status carries the same fields (CostBudget): status.observedGeneration and
-- the conditions Ready (True: Computed or Recorded; False: InvalidSpec or MetricsUnavailable) and
-- Degraded (True: InvalidSpec, MetricsUnavailable, DataGap or NoData; False: Complete).
--
-- Argo CD runs it with gopher-lua (Lua 5.1) on the live object, the global `obj`, and reads the table
-- it returns: {status = "Healthy" | "Progressing" | "Degraded", message = "..."}. A script from argocd-cm
-- gets only Lua's base and table libraries (no string.*, no math.*), hence only `..` and tostring here.
-- One script for every kind; argocd-cm names it once per kind (manifests/argocd/argocd-cm.yaml).
--
-- The verdict, first rule that applies:
-- 1. No status, or status.observedGeneration or Ready's observedGeneration (the lower of those set)
--    below metadata.generation: Progressing, "waiting for kubetally to observe generation N". kubetally
--    has not judged this spec yet, so neither Healthy nor Degraded would be true; a sync wave waits for
--    the verdict instead of passing a spec nobody has checked.
-- 2. Ready=False, whatever the reason: Degraded, "<reason>: <message>". InvalidSpec needs a fix in Git;
--    MetricsUnavailable means the report has no figures of this computation. Either way the object
--    does not do its job, and Argo CD should say so (MetricsUnavailable turns Healthy by itself once
--    kubetally computes the report again with Prometheus answering).
-- 3. Ready=True: Healthy, with Ready's message; when Degraded=True too (DataGap, NoData,
--    MetricsUnavailable: the report holds figures, but from partial data), the message says so and the
--    health stays Healthy. A gap in Prometheus is a fact about the past, not about the spec: no commit
--    can fix it, and it lasts as long as the gap stays inside the report's window (a week, a month).
--    As Degraded it would turn the whole Application red and fail every sync with a later wave for
--    that long; the message keeps it visible without doing so.
-- 4. Ready=Unknown, or no Ready condition yet: Progressing.

local function find(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == kind then
      return condition
    end
  end
  return nil
end

local function text(value)
  if value == nil then
    return ""
  end
  return tostring(value)
end

-- "<reason>: <message>", or the one of them that is set.
local function say(condition)
  local reason, message = text(condition.reason), text(condition.message)
  if reason == "" or message == "" then
    return reason .. message
  end
  return reason .. ": " .. message
end

local hs = {}
local status = obj.status or {}
local ready = find(status.conditions, "Ready")
local degraded = find(status.conditions, "Degraded")
local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if ready ~= nil and ready.observedGeneration ~= nil and (observed == nil or ready.observedGeneration < observed) then
  observed = ready.observedGeneration
end

if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for kubetally to observe generation " .. text(generation)
  if observed ~= nil then
    hs.message = hs.message .. " (status is of generation " .. text(observed) .. ")"
  end
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for kubetally to set the Ready condition"
  return hs
end

if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = say(ready)
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = say(ready)
  if degraded ~= nil and degraded.status == "True" then
    hs.message = hs.message .. "; degraded data: " .. say(degraded)
  end
  return hs
end

hs.status = "Progressing"
hs.message = "Ready is " .. text(ready.status) .. ", " .. say(ready)
return hs
