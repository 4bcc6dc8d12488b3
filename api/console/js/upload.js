// Upload: dropped files go to the service as they are (POST .../files reads text, Markdown,
// HTML, PDF, Word, and CSV / JSON Lines rows; a file's id is its name), pasted text becomes
// one document; each job's progress is shown until it ends.

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { busy, clearMessages, showError, showNotice } from "./feedback.js";
import { onLanguageChange, t } from "./i18n.js";
import { isFinished, jobCard, watchJob } from "./jobs.js";
import { refreshCollections } from "./state.js";

let section;
let pending = []; // File objects, in the order dropped (one per name)
let skipped = []; // messages about files the service could not read, or empty ones
let jobs = []; // the jobs of the last upload, newest state of each
let stopWatching = [];

export function init(root) {
  section = root;
  const zone = section.querySelector("#drop-zone");
  const input = section.querySelector("#upload-files");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addFiles(event.dataTransfer.files);
  });
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  section.querySelector("#upload-form").addEventListener("submit", send);
  onLanguageChange(() => {
    drawList();
    drawJobs();
    section.querySelector("#upload-text-id").placeholder = t("upload.pasteIdHint", {
      time: stamp(),
    });
  });
  section.querySelector("#upload-text-id").placeholder = t("upload.pasteIdHint", { time: stamp() });
}

function addFiles(files) {
  clearMessages(section);
  skipped = [];
  for (const file of files) {
    pending = pending.filter((kept) => kept.name !== file.name);
    pending.push(file);
  }
  drawList();
}

function drawList() {
  replace(
    section.querySelector("#upload-list"),
    pending.map((file) =>
      h("li", { dataset: { file: file.name } },
        h("span", { class: "file-name" }, file.name),
        h("span", { class: "hint" }, t("upload.fileSize", { size: kilobytes(file.size) })),
        h("button", {
          type: "button",
          class: "secondary",
          "aria-label": t("upload.removeFile", { file: file.name }),
          onclick: () => {
            pending = pending.filter((kept) => kept !== file);
            drawList();
          },
        }, t("upload.remove"))),
    ),
    skipped.map((message) => h("li", { class: "error" }, message)),
  );
}

function kilobytes(size) {
  return size < 1024 ? `${size} B` : `${(size / 1024).toFixed(1)} KiB`;
}

function stamp() {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

function send(event) {
  event.preventDefault();
  clearMessages(section);
  const collection = section.querySelector("#upload-collection").value;
  const files = pending.filter((file) => file.size > 0);
  const notes = pending
    .filter((file) => file.size === 0)
    .map((file) => t("upload.empty", { file: file.name }));
  const pasted = section.querySelector("#upload-text").value;
  const idInput = section.querySelector("#upload-text-id");
  const documents = pasted.trim()
    ? [{ id: idInput.value.trim() || `pasted-${stamp()}`, text: pasted }]
    : [];
  if (files.length === 0 && documents.length === 0) {
    showError(section, [...notes, t("upload.nothing")].join(" "));
    return;
  }
  busy(event.currentTarget, section, async () => {
    const started = [];
    let count = 0;
    if (files.length > 0) {
      const accepted = await api.uploadFiles(collection, files);
      started.push(...accepted.jobs);
      count += accepted.documents;
      notes.push(
        ...accepted.failed.map((failure) =>
          t("upload.failed", { file: failure.name, reason: failure.reason }),
        ),
      );
    }
    if (documents.length > 0) {
      started.push(await api.ingest(collection, documents));
      count += documents.length;
    }
    pending = [];
    skipped = notes;
    section.querySelector("#upload-text").value = "";
    idInput.value = "";
    drawList();
    showNotice(section, t("upload.sent", { count, collection }));
    for (const job of started) {
      window.dispatchEvent(new CustomEvent("semsearch:job", { detail: { collection, job } }));
    }
    follow(started);
  });
}

function follow(started) {
  for (const stop of stopWatching) stop();
  jobs = started;
  drawJobs();
  stopWatching = started.map((job, position) =>
    watchJob(
      job.id,
      (latest) => {
        jobs[position] = latest;
        drawJobs();
        if (jobs.every(isFinished)) {
          refreshCollections().catch((error) => showError(section, error));
        }
      },
      (error) => showError(section, error),
    ),
  );
}

function drawJobs() {
  const cards = section.querySelector("#upload-jobs");
  replace(cards, jobs.map((job) => h("div", { class: "job-card" }, jobCard(job))));
  cards.hidden = jobs.length === 0;
}
