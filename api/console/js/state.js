// What several pages share: the models, the collections, the collection in use.

import { api } from "./api.js";
import { h } from "./dom.js";
import { onLanguageChange, t } from "./i18n.js";

const state = { models: [], collections: [], current: "" };
const listeners = new Set();

export function models() {
  return state.models;
}

export function collections() {
  return state.collections;
}

export function collection(name) {
  return state.collections.find((entry) => entry.name === name);
}

export function currentCollection() {
  return state.current;
}

/** Make `name` the collection every page's collection list shows. */
export function useCollection(name) {
  state.current = name;
  fillCollectionSelects();
  for (const listener of listeners) listener();
}

/** Call `listener` whenever the collections or the one in use change. */
export function onCollectionsChange(listener) {
  listeners.add(listener);
}

export async function loadModels() {
  state.models = (await api.models()).models;
  fillModelSelects();
}

/** Read the collections again (after a change); throws the API's error. */
export async function refreshCollections() {
  state.collections = (await api.collections()).collections;
  if (!collection(state.current)) state.current = state.collections[0]?.name ?? "";
  fillCollectionSelects();
  for (const listener of listeners) listener();
}

/** Replace one collection's entry with a fresher copy (an answer of PATCH or GET). */
export function updateCollectionEntry(entry) {
  const index = state.collections.findIndex((known) => known.name === entry.name);
  if (index >= 0) state.collections[index] = entry;
  else state.collections.push(entry);
  for (const listener of listeners) listener();
}

function fillCollectionSelects() {
  for (const select of document.querySelectorAll("select[data-collection-select]")) {
    const allowNone = select.hasAttribute("data-allow-none");
    const kept = allowNone ? select.value : state.current;
    select.replaceChildren(
      allowNone ? h("option", { value: "" }, t("common.none")) : null,
      ...state.collections.map((entry) => h("option", { value: entry.name }, entry.name)),
    );
    select.value = collection(kept) ? kept : allowNone ? "" : state.current;
  }
}

function fillModelSelects() {
  for (const select of document.querySelectorAll("#similarity-model, #create-model")) {
    const kept = select.value;
    select.replaceChildren(
      ...state.models.map((model) =>
        h(
          "option",
          { value: model.name },
          model.default ? t("common.defaultModel", { model: model.name }) : model.name,
        ),
      ),
    );
    const fallback = state.models.find((model) => model.default)?.name ?? "";
    select.value = state.models.some((model) => model.name === kept) ? kept : fallback;
  }
}

/** Wire the collection lists: choosing in one makes it the one in use everywhere. */
export function initCollectionSelects() {
  for (const select of document.querySelectorAll("select[data-collection-select]")) {
    if (select.hasAttribute("data-allow-none")) continue;
    select.addEventListener("change", () => useCollection(select.value));
  }
  onLanguageChange(() => {
    fillCollectionSelects();
    fillModelSelects();
  });
}
