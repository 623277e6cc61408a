// Building the page with the DOM: text is always set as text (never parsed as markup).

const SVG = "http://www.w3.org/2000/svg";
const VIEWS = ["prejoin", "lobby-wait", "room", "final"];

/** el("li", {class: "x"}, "text", child…): an element; strings become text nodes. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === "") continue;
    node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  return node;
}

/** An icon from the page's sprite (<symbol id="i-…">). */
export function icon(id) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", "#" + id);
  svg.append(use);
  return svg;
}

export function setIcon(button, id) {
  const use = button.querySelector("svg use");
  if (use) use.setAttribute("href", "#" + id);
}

export function setLabel(button, text) {
  const label = button.querySelector(".label");
  if (label) label.textContent = text;
}

/** Show one of the page's views (pre-join, lobby, room, final screen) and hide the others. */
export function showOnly(id) {
  for (const view of VIEWS) {
    const node = document.getElementById(view);
    if (node) node.hidden = view !== id;
  }
}
