// Collections: the list, creating one, and one collection's threshold, term map and jobs.

import { api } from "./api.js";
import { facts, h, replace, score } from "./dom.js";
import { busy, clearMessages, showError, showNotice } from "./feedback.js";
import { onLanguageChange, t } from "./i18n.js";
import { isFinished, jobCard, watchCollectionJobs } from "./jobs.js";
import {
  collection,
  collections,
  currentCollection,
  onCollectionsChange,
  refreshCollections,
  updateCollectionEntry,
  useCollection,
} from "./state.js";

let section;
let detailName = ""; // the collection the detail panel shows
let stopJobs = () => {};
let jobs = [];

export function init(root) {
  section = root;
  section.querySelector("#create-form").addEventListener("submit", create);
  section.querySelector("#threshold-form").addEventListener("submit", saveThreshold);
  section.querySelector("#term-map-form").addEventListener("submit", saveTermMap);
  section.querySelector("#term-map-add").addEventListener("click", () => {
    const row = termRow("", "");
    section.querySelector("#term-map-rows").append(row);
    row.querySelector("input").focus();
  });
  section.querySelector("#collection-delete").addEventListener("click", remove);
  onCollectionsChange(draw);
  onLanguageChange(() => {
    draw();
    drawJobs();
  });
  // Another page started a job: follow it here too.
  window.addEventListener("semsearch:job", (event) => {
    if (event.detail.collection === detailName) followJobs(detailName);
  });
}

function draw() {
  drawTable();
  const name = currentCollection();
  const panel = section.querySelector("#collection-detail");
  const entry = collection(name);
  if (!entry) {
    panel.hidden = true;
    detailName = "";
    stopJobs();
    return;
  }
  const thresholdInput = section.querySelector("#detail-threshold");
  if (name !== detailName || document.activeElement !== thresholdInput) {
    thresholdInput.value = String(entry.threshold);
  }
  if (name !== detailName) {
    detailName = name;
    fillTermMap(entry.reindex ? entry.reindex.term_map : entry.term_map);
    followJobs(name);
  }
  drawDetail(entry);
  panel.hidden = false;
}

function drawTable() {
  const rows = collections().map((entry) =>
    h(
      "tr",
      {
        class: entry.name === currentCollection() ? "selected" : undefined,
        "aria-current": entry.name === currentCollection() ? "true" : undefined,
        dataset: { collection: entry.name },
      },
      h("th", { scope: "row" },
        h("button", { type: "button", class: "link", onclick: () => useCollection(entry.name) },
          entry.name)),
      h("td", { class: "number", dataset: { field: "documents" } }, String(entry.document_count)),
      h("td", {}, entry.model),
      h("td", { class: "number", dataset: { field: "threshold" } }, score(entry.threshold)),
      h("td", {}, entry.mode === "auto" ? `auto → ${entry.effective_mode}` : entry.mode),
    ),
  );
  replace(section.querySelector("#collections-table tbody"), rows);
  section.querySelector("#collections-empty").hidden = rows.length > 0;
}

function drawDetail(entry) {
  section.querySelector("#collection-detail-heading").textContent =
    t("collections.detail", { name: entry.name });
  facts(section.querySelector("#collection-facts"), [
    [t("common.model"), `${entry.model} (${entry.dimension})`],
    [t("collections.documents"), String(entry.document_count)],
    [t("common.threshold"), score(entry.threshold)],
    [t("collections.effectiveMode"), entry.effective_mode],
    [t("collections.chunking"), t("collections.chunkingValue", {
      tokens: entry.chunking.max_tokens,
      overlap: entry.chunking.overlap_sentences,
    })],
    [t("collections.reindexing"), entry.reindex ? entry.reindex.job_id : null],
    [t("collections.languageWarning"), entry.language.warning],
  ]);
}

function termRow(term, replacement) {
  const row = h("tr", {},
    h("td", {}, h("input", { value: term, "aria-label": t("collections.term"), class: "term" })),
    h("td", {}, h("input", {
      value: replacement, "aria-label": t("collections.replacement"), class: "replacement",
    })),
    h("td", {}, h("button", {
      type: "button",
      class: "secondary",
      "aria-label": t("collections.removeTermOf", { term }),
      onclick: () => row.remove(),
    }, t("collections.removeTerm"))),
  );
  return row;
}

function fillTermMap(termMap) {
  replace(
    section.querySelector("#term-map-rows"),
    Object.entries(termMap).map(([term, replacement]) => termRow(term, replacement)),
  );
}

/** The edited term map, or null (and a message) when a row is half filled. */
function editedTermMap() {
  const termMap = {};
  const rows = [...section.querySelectorAll("#term-map-rows tr")];
  for (const [index, row] of rows.entries()) {
    const term = row.querySelector(".term").value.trim();
    const replacement = row.querySelector(".replacement").value.trim();
    if (!term && !replacement) continue;
    if (!term || !replacement) {
      showError(section, t("collections.termIncomplete", { row: index + 1 }));
      return null;
    }
    termMap[term] = replacement;
  }
  return termMap;
}

function followJobs(name) {
  stopJobs();
  let sawUnfinished = false;
  stopJobs = watchCollectionJobs(
    name,
    (latest) => {
      jobs = latest;
      drawJobs();
      if (latest.some((job) => !isFinished(job))) sawUnfinished = true;
      else if (sawUnfinished) {
        sawUnfinished = false;
        refreshCollections().catch((error) => showError(section, error));
      }
    },
    (error) => showError(section, error),
  );
}

function drawJobs() {
  const list = section.querySelector("#collection-jobs");
  if (jobs.length === 0) {
    replace(list, h("li", { class: "hint" }, t("collections.noJobs")));
  } else {
    replace(list, jobs.map((job) => h("li", {}, jobCard(job))));
  }
}

function create(event) {
  event.preventDefault();
  clearMessages(section);
  const form = event.currentTarget;
  const name = section.querySelector("#create-name").value.trim();
  const body = {
    name,
    model: section.querySelector("#create-model").value || undefined,
    mode: section.querySelector("#create-mode").value,
  };
  const threshold = section.querySelector("#create-threshold").value;
  if (threshold !== "") body.threshold = Number(threshold);
  busy(form, section, async () => {
    await api.createCollection(body);
    await refreshCollections();
    useCollection(name);
    form.reset();
    showNotice(section, t("collections.created", { name }));
  });
}

function saveThreshold(event) {
  event.preventDefault();
  clearMessages(section);
  const name = detailName;
  const threshold = Number(section.querySelector("#detail-threshold").value);
  busy(event.currentTarget, section, async () => {
    updateCollectionEntry(await api.updateCollection(name, { threshold }));
    showNotice(section, t("collections.thresholdSaved", { name, threshold: score(threshold) }));
  });
}

function saveTermMap(event) {
  event.preventDefault();
  clearMessages(section);
  const name = detailName;
  const termMap = editedTermMap();
  if (termMap === null) return;
  busy(event.currentTarget, section, async () => {
    const entry = await api.updateCollection(name, { term_map: termMap });
    updateCollectionEntry(entry);
    fillTermMap(entry.reindex ? entry.reindex.term_map : entry.term_map);
    showNotice(section, t(entry.reindex ? "collections.termMapSaved" : "collections.termMapUnchanged"));
    followJobs(name);
  });
}

async function remove() {
  clearMessages(section);
  const name = detailName;
  if (!window.confirm(t("collections.confirmDelete", { name }))) return;
  try {
    await api.deleteCollection(name);
    detailName = "";
    await refreshCollections();
    showNotice(section, t("collections.deleted", { name }));
  } catch (error) {
    showError(section, error);
  }
}
