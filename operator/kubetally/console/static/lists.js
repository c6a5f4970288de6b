// The object views of the console: CostReports, CostWeights in force, CostBudgets, each a list from
// GET /apis/query.kubetally.io/v1alpha1/<path>, one row per object, the columns below.
import { utc } from "./format.js";

const condition = (status, type) => ((status.conditions || []).find((c) => c.type === type) || {});
export const LISTS = {
  reports: {
    title: "CostReports", path: "costreports", columns: [
      ["Namespace", (o) => o.metadata.namespace], ["Name", (o) => o.metadata.name],
      ["Ready", (o) => [condition(o.status, "Ready").status, condition(o.status, "Ready").reason].filter(Boolean).join(" ")],
      ["Degraded", (o) => [condition(o.status, "Degraded").status, condition(o.status, "Degraded").reason].filter(Boolean).join(" ")],
      ["Window", (o) => (o.status.window ? `${utc(o.status.window.start)} → ${utc(o.status.window.end)}` : "")],
      ["Cost", (o) => ((o.status.totals || {}).cost ?? "")], ["Idle cost", (o) => ((o.status.totals || {}).idleCost ?? "")],
      ["Currency", (o) => o.status.currency || ""], ["Computed", (o) => o.status.lastComputedTime || ""],
      ["Message", (o) => condition(o.status, "Ready").message || ""],
    ],
  },
  weights: {
    title: "CostWeights in force", path: "costweights", columns: [
      ["Name", (o) => o.metadata.name], ["Currency", (o) => o.spec.currency || ""],
      ["Effective from", (o) => o.status.effectiveFrom], ["Versions", (o) => String(o.status.versions)],
      ["Pending from", (o) => o.status.pendingFrom || ""],
      ["Unit prices", (o) => Object.entries(o.spec.unitPrices || {}).map(([k, v]) => `${k} ${v}`).join(", ")],
      ["Weights", (o) => Object.entries(o.spec.weights || {}).map(([k, v]) => `${k} ${v}`).join(", ")],
      ["Node prices", (o) => String((o.spec.nodePrices || []).length)],
    ],
  },
  budgets: {
    title: "CostBudgets", path: "costbudgets", columns: [
      ["Namespace", (o) => o.metadata.namespace], ["Name", (o) => o.metadata.name],
      ["Amount", (o) => o.status.amount || ""], ["Spent", (o) => o.status.spent || ""], ["Spent %", (o) => o.status.percent || ""],
      ["Forecast", (o) => o.status.forecast || ""], ["Currency", (o) => o.status.currency || ""],
      ["Exceeded", (o) => condition(o.status, "Exceeded").status || ""],
      ["Period", (o) => (o.status.period ? `${utc(o.status.period.start)} → ${utc(o.status.period.end)}` : "")],
    ],
  },
};

