// Calibration: labelled samples from a file run through a collection's search; the
// precision/recall curve over thresholds; a point of it picked becomes the threshold.

import { api } from "./api.js";
import { h, replace, s, score, share } from "./dom.js";
import { busy, clearMessages, showError, showNotice } from "./feedback.js";
import { onLanguageChange, t } from "./i18n.js";
import { SamplesError, parseSamples } from "./samples.js";
import { collection, currentCollection, onCollectionsChange, updateCollectionEntry } from "./state.js";

const WIDTH = 640;
const HEIGHT = 320;
const MARGIN = { top: 16, right: 16, bottom: 40, left: 44 };
const SERIES = [
  ["precision", "series-precision"],
  ["recall", "series-recall"],
  ["rejection", "series-rejection"],
];

let section;
let loaded = null; // {shape, samples, fileName}
let report = null; // the calibration shown
let picked = null; // the curve point picked
let reportFor = ""; // the collection whose last calibration was asked for

export function init(root) {
  section = root;
  const goal = section.querySelector("#calibration-goal");
  goal.addEventListener("change", () => {
    section.querySelector("#calibration-goal-value").disabled = goal.value === "f1";
  });
  section.querySelector("#calibration-file").addEventListener("change", readFile);
  section.querySelector("#calibration-form").addEventListener("submit", calibrate);
  section.querySelector("#calibration-apply").addEventListener("click", applyPicked);
  onCollectionsChange(() => {
    if (!section.hidden) refresh();
  });
  onLanguageChange(() => {
    drawLoaded();
    if (report) draw();
  });
}

async function readFile(event) {
  clearMessages(section);
  loaded = null;
  const file = event.currentTarget.files[0];
  if (file) {
    try {
      loaded = { ...parseSamples(file.name, await file.text()), fileName: file.name };
    } catch (error) {
      if (!(error instanceof SamplesError)) throw error;
      showError(section, t("calibration.badFile",
        { file: file.name, line: error.line, problem: error.problem }));
    }
  }
  drawLoaded();
}

/** The page is shown: show the last calibration of the collection in use. */
export function onShow() {
  refresh();
}

function refresh() {
  const name = currentCollection();
  if (name && name !== reportFor) showLast(name);
  else if (report) draw();
}

function drawLoaded() {
  section.querySelector("#calibration-loaded").textContent = loaded
    ? t("calibration.loaded", {
      count: loaded.samples.length,
      shape: t(`calibration.shape.${loaded.shape}`),
    })
    : "";
}

/** The collection's last calibration, if it has one (a 404 only means it has none). */
async function showLast(name) {
  reportFor = name;
  try {
    const last = await api.calibration(name);
    if (reportFor !== name) return;
    show(last);
  } catch (error) {
    if (reportFor !== name) return;
    report = null;
    section.querySelector("#calibration-result").hidden = true;
    if (error.status !== 404) showError(section, error);
  }
}

function calibrate(event) {
  event.preventDefault();
  clearMessages(section);
  if (!loaded) {
    showError(section, t("calibration.noFile"));
    return;
  }
  const name = section.querySelector("#calibration-collection").value;
  const goal = section.querySelector("#calibration-goal").value;
  const value = Number(section.querySelector("#calibration-goal-value").value);
  const body = { [loaded.shape]: loaded.samples, target: goal === "f1" ? {} : { [goal]: value } };
  showNotice(section, t("calibration.running", { count: loaded.samples.length, collection: name }));
  reportFor = name;
  const running = section.querySelector("[data-notice]");
  busy(event.currentTarget, section, async () => {
    show(await api.calibrate(name, body));
  }).finally(() => {
    running.hidden = true;
  });
}

function show(next) {
  report = next;
  picked = nearest(report.curve, report.threshold);
  draw();
}

function nearest(curve, threshold) {
  let best = null;
  for (const point of curve) {
    if (!best || Math.abs(point.threshold - threshold) < Math.abs(best.threshold - threshold)) {
      best = point;
    }
  }
  return best;
}

function goalText(target) {
  if (target.kind === "f1") return t("calibration.goalF1");
  const label = target.kind === "precision" ? "calibration.goalPrecision" : "calibration.goalRecall";
  return `${t(label)} ${target.value}`;
}

function draw() {
  const { promised, reached } = report;
  replace(
    section.querySelector("#calibration-summary"),
    t("calibration.summary", {
      collection: report.collection,
      model: report.model,
      mode: report.mode,
      threshold: score(report.threshold),
      goal: goalText(report.target),
      precision: share(promised.precision.value),
      recall: share(promised.recall.value),
      heldPrecision: share(reached.precision.value),
      heldRecall: share(reached.recall.value),
    }),
    " ",
    t("calibration.last", { date: new Date(report.created_at).toLocaleString() }),
  );
  const notes = [...report.warnings];
  if (report.stale.length) notes.unshift(t("calibration.stale", { what: report.stale.join(", ") }));
  replace(
    section.querySelector("#calibration-warnings"),
    notes.map((note) => h("li", {}, note)),
  );
  replace(section.querySelector("#calibration-curve"), curveChart(), legend());
  drawPicked();
  section.querySelector("#calibration-result").hidden = false;
}

function legend() {
  const hasRejection = report.curve.some((point) => point.rejection !== null);
  return h(
    "ul",
    { class: "legend" },
    SERIES.filter(([name]) => name !== "rejection" || hasRejection).map(([name, className]) =>
      h("li", {}, h("span", { class: `swatch ${className}`, "aria-hidden": "true" }),
        t(`calibration.${name}`)),
    ),
    h("li", {}, h("span", { class: "swatch chosen", "aria-hidden": "true" }), t("calibration.chosen")),
    h("li", {}, h("span", { class: "swatch current", "aria-hidden": "true" }), t("calibration.current")),
  );
}

/** The curve as SVG: thresholds across, shares up; each point a button that picks it. */
function curveChart() {
  const curve = [...report.curve].sort((left, right) => left.threshold - right.threshold);
  const current = collection(report.collection)?.threshold;
  const values = curve.map((point) => point.threshold).concat(report.threshold);
  if (current !== undefined) values.push(current);
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high - low < 1e-6) {
    low -= 0.05;
    high += 0.05;
  }
  const pad = (high - low) * 0.03;
  low -= pad;
  high += pad;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value) => MARGIN.left + ((value - low) / (high - low)) * plotWidth;
  const y = (value) => MARGIN.top + (1 - value) * plotHeight;

  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "group",
    "aria-label": t("calibration.curveLabel"),
    class: "chart",
  });
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(
      s("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(tick), y2: y(tick), class: "grid" }),
      s("text", { x: MARGIN.left - 6, y: y(tick) + 4, class: "tick", "text-anchor": "end" },
        tick.toFixed(2)),
    );
  }
  for (let index = 0; index <= 4; index += 1) {
    const value = low + ((high - low) * index) / 4;
    svg.append(
      s("text", { x: x(value), y: HEIGHT - MARGIN.bottom + 16, class: "tick", "text-anchor": "middle" },
        value.toFixed(3)),
    );
  }
  svg.append(
    s("text", { x: MARGIN.left + plotWidth / 2, y: HEIGHT - 6, class: "axis-label", "text-anchor": "middle" },
      t("calibration.threshold")),
    s("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, class: "axis" }),
    s("line", {
      x1: MARGIN.left, x2: WIDTH - MARGIN.right,
      y1: HEIGHT - MARGIN.bottom, y2: HEIGHT - MARGIN.bottom, class: "axis",
    }),
  );
  const verticals = [[report.threshold, "chosen-line"]];
  if (current !== undefined) verticals.push([current, "current-line"]);
  for (const [value, className] of verticals) {
    svg.append(s("line", {
      x1: x(value), x2: x(value), y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, class: className,
    }));
  }
  if (picked) {
    svg.append(s("line", {
      x1: x(picked.threshold), x2: x(picked.threshold),
      y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, class: "picked-line",
    }));
  }
  for (const [name, className] of SERIES) {
    const points = curve.filter((point) => point[name] !== null);
    if (points.length === 0) continue;
    svg.append(s("polyline", {
      points: points.map((point) => `${x(point.threshold)},${y(point[name])}`).join(" "),
      class: `series ${className}`,
    }));
  }
  for (const point of curve) {
    for (const [name, className] of SERIES.slice(0, 2)) {
      svg.append(s("circle", {
        cx: x(point.threshold),
        cy: y(point[name]),
        r: 4,
        class: `point ${className}${point === picked ? " picked" : ""}`,
        "aria-hidden": "true",
      }));
    }
  }
  // Each threshold owns the column up to half-way to its neighbours: a click anywhere in it
  // picks it (the points of two series often coincide), and arrow keys move the pick.
  const edges = curve.map((point, index) => [
    index === 0 ? MARGIN.left : (x(curve[index - 1].threshold) + x(point.threshold)) / 2,
    index === curve.length - 1
      ? WIDTH - MARGIN.right
      : (x(point.threshold) + x(curve[index + 1].threshold)) / 2,
  ]);
  curve.forEach((point, index) => {
    const label = t("calibration.pointLabel", {
      threshold: score(point.threshold),
      precision: share(point.precision),
      recall: share(point.recall),
    });
    const [left, right] = edges[index];
    svg.append(s("rect", {
      x: left,
      y: MARGIN.top,
      width: Math.max(right - left, 1),
      height: plotHeight,
      class: `pick-band${point === picked ? " picked" : ""}`,
      tabindex: point === picked || (!picked && index === 0) ? 0 : -1,
      role: "button",
      "aria-label": label,
      "aria-pressed": point === picked ? "true" : "false",
      dataset: { threshold: point.threshold },
      onclick: () => pick(point),
      onkeydown: (event) => {
        const step = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1 }[event.key];
        if (step && curve[index + step]) {
          event.preventDefault();
          pick(curve[index + step]);
        } else if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          pick(point);
        }
      },
    }, s("title", {}, label)));
  });
  return svg;
}

function pick(point) {
  picked = point;
  clearMessages(section);
  replace(section.querySelector("#calibration-curve"), curveChart(), legend());
  drawPicked();
  section.querySelector("#calibration-curve rect.pick-band.picked")?.focus();
}

function drawPicked() {
  const text = section.querySelector("#calibration-picked");
  const apply = section.querySelector("#calibration-apply");
  if (!picked) {
    text.textContent = "";
    apply.hidden = true;
    return;
  }
  text.textContent = t("calibration.picked", {
    threshold: score(picked.threshold),
    precision: share(picked.precision),
    recall: share(picked.recall),
    f1: share(picked.f1),
  });
  apply.textContent = t("calibration.apply", {
    threshold: score(picked.threshold),
    collection: report.collection,
  });
  apply.hidden = false;
}

async function applyPicked() {
  clearMessages(section);
  const name = report.collection;
  try {
    const entry = await api.updateCollection(name, { threshold: picked.threshold });
    updateCollectionEntry(entry);
    showNotice(section, t("calibration.applied", { collection: name, threshold: score(entry.threshold) }));
  } catch (error) {
    showError(section, error);
  }
}
