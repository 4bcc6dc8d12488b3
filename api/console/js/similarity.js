// The similarity tester: two texts, their score, and what each became after cleaning.

import { api } from "./api.js";
import { h, replace, score, scoreBar } from "./dom.js";
import { busy, clearMessages } from "./feedback.js";
import { onLanguageChange, t } from "./i18n.js";
import { collection } from "./state.js";

let section;
let lastResult = null;

export function init(root) {
  section = root;
  const form = section.querySelector("#similarity-form");
  const model = section.querySelector("#similarity-model");
  const scorer = section.querySelector("#similarity-collection");
  scorer.addEventListener("change", () => {
    model.disabled = scorer.value !== "";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearMessages(section);
    const body = {
      a: section.querySelector("#similarity-a").value,
      b: section.querySelector("#similarity-b").value,
    };
    if (scorer.value) body.collection = scorer.value;
    else if (model.value) body.model = model.value;
    busy(form, section, async () => {
      lastResult = await api.explainSimilarity(body);
      draw();
    });
  });
  onLanguageChange(() => lastResult && draw());
}

function draw() {
  const result = lastResult;
  const a = section.querySelector("#similarity-a").value;
  const b = section.querySelector("#similarity-b").value;
  const threshold = result.collection ? collection(result.collection)?.threshold : undefined;
  const low = Math.min(0, result.score, threshold ?? 0) < 0 ? -1 : 0;
  const marks = threshold === undefined ? [] : [[threshold, "threshold-mark"]];
  const bar = scoreBar(result.score, low, marks, score(result.score));
  const container = section.querySelector("#similarity-result");
  replace(
    container,
    h("p", { class: "big-score" }, t("similarity.score"), " ",
      h("output", { id: "similarity-score" }, score(result.score))),
    bar,
    h("p", { class: "hint" }, result.collection
      ? t("similarity.byCollection", { collection: result.collection, model: result.model })
      : t("similarity.byModel", { model: result.model })),
    threshold === undefined ? null : h("p", {},
      t(result.score >= threshold ? "similarity.above" : "similarity.below",
        { threshold: score(threshold) })),
    embedded("similarity-embedded-a", t("similarity.embeddedA"), result.a, result.a === a),
    embedded("similarity-embedded-b", t("similarity.embeddedB"), result.b, result.b === b),
  );
  container.hidden = false;
}

function embedded(id, label, text, unchanged) {
  return h("div", { class: "embedded" },
    h("h3", {}, label, unchanged ? h("span", { class: "tag" }, t("similarity.unchanged")) : null),
    h("pre", { id, class: "embedded-text" }, text));
}

