// The search playground: hits with their scores, the collection's threshold on each score
// bar, and a slider to try another threshold without asking the service again.

import { api } from "./api.js";
import { facts, h, position, replace, score, scoreBar } from "./dom.js";
import { busy, clearMessages, showError, showNotice } from "./feedback.js";
import { onLanguageChange, t } from "./i18n.js";
import { updateCollectionEntry } from "./state.js";

const LOWEST_THRESHOLD = -1; // the API's minimum: every hit the engine finds comes back

let section;
let slider;
let shown = null; // {name, response, threshold: the collection's}

export function init(root) {
  section = root;
  slider = section.querySelector("#search-threshold");
  const form = section.querySelector("#search-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearMessages(section);
    const body = requestBody();
    if (body === null) return;
    const name = section.querySelector("#search-collection").value;
    busy(form, section, async () => {
      const [collection, response] = await Promise.all([
        api.collection(name),
        api.search(name, body),
      ]);
      updateCollectionEntry(collection);
      shown = { name, response, threshold: collection.threshold };
      slider.value = String(collection.threshold);
      draw();
    });
  });
  slider.addEventListener("input", filterHits);
  section.querySelector("#search-save-threshold").addEventListener("click", saveThreshold);
  onLanguageChange(() => shown && draw());
}

/** The search request, asking for hits at any score; null (and a message) for a bad filter. */
function requestBody() {
  const body = {
    query: section.querySelector("#search-query").value,
    threshold: LOWEST_THRESHOLD,
  };
  const topK = Number.parseInt(section.querySelector("#search-top-k").value, 10);
  if (Number.isFinite(topK)) body.top_k = topK;
  const mode = section.querySelector("#search-mode").value;
  if (mode) body.mode = mode;
  body.unit = section.querySelector("#search-unit").value;
  const filterText = section.querySelector("#search-filter").value.trim();
  if (filterText) {
    try {
      body.filter = JSON.parse(filterText);
    } catch (error) {
      showError(section, t("search.filterInvalid", { detail: error.message }));
      return null;
    }
    if (body.filter === null || typeof body.filter !== "object" || Array.isArray(body.filter)) {
      showError(section, t("search.filterInvalid", { detail: typeof body.filter }));
      return null;
    }
  }
  return body;
}

/** The lowest score the bars and the slider show: 0, or below it to the tenth that holds
 * every score and the collection's threshold. */
function lowest() {
  const scores = shown.response.hits.map((hit) => hit.score);
  return Math.max(-1, Math.min(0, Math.floor(Math.min(shown.threshold, ...scores) * 10) / 10));
}

function draw() {
  const { response, threshold } = shown;
  facts(section.querySelector("#search-facts"), [
    [t("search.embedded"), h("q", { id: "search-embedded" }, response.query)],
    [t("search.model"), response.model],
    [t("search.mode"), response.mode],
    [t("search.unit"), h("span", { id: "search-unit-shown" }, response.unit === "document"
      ? t("search.unitDocumentFact") : t("search.unitPassage"))],
    [t("search.collectionThreshold"), h("span", { id: "search-collection-threshold" },
      score(threshold))],
    [t("search.warning"), response.warning],
  ]);
  const low = lowest();
  slider.min = String(low);
  replace(
    section.querySelector("#search-hits"),
    response.hits.map((hit, index) => hitItem(hit, index, low)),
  );
  section.querySelector("#search-result").hidden = false;
  filterHits();
}

function hitItem(hit, index, low) {
  const below = hit.score < shown.threshold;
  const where = hitWhere(hit);
  return h(
    "li",
    { class: below ? "hit below" : "hit", dataset: { score: hit.score, documentId: hit.document_id } },
    h("div", { class: "hit-head" },
      h("span", { class: "rank" }, `${index + 1}.`),
      h("strong", { class: "hit-title" }, hit.title || hit.document_id),
      h("span", { class: "hit-where" }, where),
      h("span", { class: "hit-score" }, score(hit.score)),
      below ? h("span", { class: "tag warn" }, t("search.belowCollection")) : null),
    scoreBar(hit.score, low, [[shown.threshold, "threshold-mark"], [Number(slider.value), "try-mark"]],
      t("search.scoreLabel", { score: score(hit.score), threshold: score(shown.threshold) })),
    h("p", { class: "hit-text" }, hit.text),
    Object.keys(hit.metadata).length
      ? h("code", { class: "hit-metadata" }, JSON.stringify(hit.metadata))
      : null,
  );
}

/** Where a hit comes from: a whole document, or a chunk (of a document named by its title). */
function hitWhere(hit) {
  if (shown.response.unit === "document") return t("search.hitDocument");
  return hit.title && hit.title !== hit.document_id
    ? t("search.hitWhere", { document: hit.document_id, chunk: hit.chunk_index })
    : t("search.hitChunk", { chunk: hit.chunk_index });
}

/** Show the hits at or above the slider's threshold; move the slider's mark on each bar. */
function filterHits() {
  if (!shown) return;
  const value = Number(slider.value);
  const low = lowest();
  let visible = 0;
  for (const item of section.querySelectorAll("#search-hits > li")) {
    const keep = Number(item.dataset.score) >= value;
    item.hidden = !keep;
    if (keep) visible += 1;
    const mark = item.querySelector(".try-mark");
    mark.style.left = `${position(value, low) * 100}%`;
  }
  section.querySelector("#search-threshold-value").textContent = score(value);
  const total = shown.response.hits.length;
  section.querySelector("#search-count").textContent =
    visible === 0 ? t("search.none")
      : t("search.count", { shown: visible, total, threshold: score(value) });
  const save = section.querySelector("#search-save-threshold");
  save.textContent = t("search.saveThreshold", { threshold: score(value) });
  save.hidden = Math.abs(value - shown.threshold) < 1e-9;
}

async function saveThreshold() {
  clearMessages(section);
  const value = Number(slider.value);
  try {
    const collection = await api.updateCollection(shown.name, { threshold: value });
    updateCollectionEntry(collection);
    shown.threshold = collection.threshold;
    draw();
    showNotice(section, t("search.thresholdSaved",
      { collection: shown.name, threshold: score(collection.threshold) }));
  } catch (error) {
    showError(section, error);
  }
}
