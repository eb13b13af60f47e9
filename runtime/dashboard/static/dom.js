// Small DOM helpers. Text always goes in as text nodes: contexts hold tokens like <obs> that must show as words.

/** el("td", { class: "num" }, "0.5", otherNode) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A number for a table: fixed digits, "—" for a value not measured. */
export function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(digits);
}

export const PALETTE = ["#1f6feb", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#0a7d8c", "#d1242f", "#6e7781", "#e16f24", "#2da44e"];
