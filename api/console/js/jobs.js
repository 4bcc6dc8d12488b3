// Ingestion and re-index jobs: a progress card, and polling until a job ends.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const POLL_MS = 400;

export function isFinished(job) {
  return job.status === "succeeded" || job.status === "failed";
}

/** A job's kind, status, progress bar, the parts it was split into (a large ingest) and,
 * when it failed, its error. */
export function jobCard(job) {
  const total = Math.max(job.documents_total, 1);
  const done = job.status === "succeeded" ? total : job.documents_done;
  return h(
    "div",
    { class: `job job-${job.status}`, dataset: { jobId: job.id, jobStatus: job.status } },
    h(
      "div",
      { class: "job-title" },
      h("strong", {}, t("job.title", {
        kind: t(`job.kind.${job.kind}`),
        status: t(`job.status.${job.status}`),
      })),
      h("time", { datetime: job.created_at }, new Date(job.created_at).toLocaleString()),
    ),
    h("progress", {
      max: total,
      value: done,
      "aria-label": t("job.progressLabel", { job: job.id }),
    }),
    h(
      "span",
      { class: "job-progress" },
      t("job.progress", {
        done: job.documents_done,
        total: job.documents_total,
        chunks: job.chunks_done,
      }),
    ),
    job.parts
      ? h("span", { class: "job-parts" }, t("job.parts", { parts: job.parts }))
      : null,
    job.error ? h("p", { class: "error", role: "alert" }, job.error) : null,
  );
}

/**
 * Poll a job until it ends, calling onUpdate(job) after every read and onError(error) if a
 * read fails (polling stops then). Returns a function that stops polling.
 */
export function watchJob(jobId, onUpdate, onError) {
  let stopped = false;
  let timer = 0;
  const poll = async () => {
    if (stopped) return;
    try {
      const job = await api.job(jobId);
      if (stopped) return;
      onUpdate(job);
      if (!isFinished(job)) timer = setTimeout(poll, POLL_MS);
    } catch (error) {
      if (!stopped && onError) onError(error);
    }
  };
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * Poll a collection's recent jobs while any is unfinished, calling onUpdate(jobs) after each
 * read. Returns a function that stops polling.
 */
export function watchCollectionJobs(name, onUpdate, onError) {
  let stopped = false;
  let timer = 0;
  const poll = async () => {
    if (stopped) return;
    try {
      const { jobs } = await api.jobs(name);
      if (stopped) return;
      onUpdate(jobs);
      if (jobs.some((job) => !isFinished(job))) timer = setTimeout(poll, POLL_MS);
    } catch (error) {
      if (!stopped && onError) onError(error);
    }
  };
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
