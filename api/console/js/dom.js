// Building DOM nodes: text always goes in as text nodes, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * h("p", {class: "x", onclick: fn}, "text", child): an element. Attributes named on* become
 * listeners, `dataset` an object of data-*; children are nodes or strings (as text).
 */
export function h(tag, attributes = {}, ...children) {
  return fill(document.createElement(tag), attributes, children);
}

/** The same for SVG elements. */
export function s(tag, attributes = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attributes, children);
}

function fill(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A score or threshold as shown everywhere: three decimals. */
export function score(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(3);
}

/** A share (precision, recall) as shown everywhere. */
export function share(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(3);
}

/** A definition list's entries: [[term, description], ...]. */
export function facts(list, entries) {
  replace(
    list,
    entries
      .filter(([, description]) => description !== undefined && description !== null)
      .map(([term, description]) => [h("dt", {}, term), h("dd", {}, description)]),
  );
}

/** Where `value` sits on a bar drawn from `low` to 1, as a fraction of its width. */
export function position(value, low = 0) {
  return Math.max(0, Math.min(1, (value - low) / (1 - low)));
}

/** A score bar from `low` to 1, filled to `value`, with vertical marks at `marks`
 * ([[value, class], ...]). */
export function scoreBar(value, low, marks, label) {
  const fill = h("div", { class: "score-fill" });
  fill.style.width = `${position(value, low) * 100}%`;
  const bar = h("div", { class: "score-bar", role: "img", "aria-label": label }, fill);
  for (const [markValue, className] of marks) {
    const mark = h("span", { class: className, "aria-hidden": "true" });
    mark.style.left = `${position(markValue, low) * 100}%`;
    bar.append(mark);
  }
  return bar;
}
