// Formatting and quoting for the console (console.js, lists.js): display text only; the numbers the
// page keeps (data-value, CSV) are the API's own, unrounded.
export const number = (v, digits) => (v === null || v === undefined || !Number.isFinite(v) ? "—"
  : v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
export const money = (v) => number(v, Math.abs(v) >= 1 ? 2 : 4);
export const percent = (v) => (v === null || v === undefined ? "—" : number(v * 100, 1) + " %");
export const ratio = (a, b) => (b > 0 ? a / b : null);
export const isIdle = (name) => name === "__idle__" || name.startsWith("idle:");
export const quote = (v) => '"' + String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
export const utc = (text) => text.replace("T", " ").replace(/:00Z$/, "").replace(/ 00:00$/, "");


// A CSV cell (RFC 4180); text starting with = + - @ tab or CR gets a leading ' so that spreadsheets do not
// run it as a formula (the API's own CSV rule, api.payloads); numbers are written as they are.
export function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = "'" + text; // no spreadsheet formulas
  return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

