// The console's entry point: language, API key, pages, and the shared lists.

import { apiKey, saveApiKey } from "./api.js";
import * as calibration from "./calibration.js";
import * as collectionsPage from "./collections.js";
import { describeError } from "./feedback.js";
import { language, onLanguageChange, setLanguage, t, translatePage } from "./i18n.js";
import * as search from "./search.js";
import * as similarity from "./similarity.js";
import { initCollectionSelects, loadModels, refreshCollections } from "./state.js";
import * as upload from "./upload.js";

const DEFAULT_PAGE = "search";
const MODULES = {
  similarity,
  search,
  collections: collectionsPage,
  upload,
  calibration,
};

const banner = document.getElementById("auth-banner");
const keyStatus = document.getElementById("key-status");
const keyInput = document.getElementById("api-key");
const toggle = document.getElementById("language-toggle");

function showPage() {
  const wanted = location.hash.slice(1);
  const page = Object.hasOwn(MODULES, wanted) ? wanted : DEFAULT_PAGE;
  for (const section of document.querySelectorAll("section[data-page]")) {
    section.hidden = section.dataset.page !== page;
  }
  for (const link of document.querySelectorAll("[data-page-link]")) {
    if (link.dataset.pageLink === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.currentPage = page;
  MODULES[page].onShow?.();
}

function drawLanguageToggle() {
  toggle.textContent = t("lang.other");
  toggle.lang = language() === "zh" ? "en" : "zh";
}

async function loadShared() {
  try {
    await Promise.all([loadModels(), refreshCollections()]);
    banner.hidden = true;
  } catch (error) {
    if (error.status !== 401) {
      banner.textContent = describeError(error);
      banner.hidden = false;
    }
  }
}

function initKeyForm() {
  keyInput.value = apiKey();
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveApiKey(keyInput.value.trim());
    keyStatus.textContent = t(keyInput.value.trim() ? "key.saved" : "key.forgotten");
    keyStatus.hidden = false;
    loadShared();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    keyInput.value = "";
    saveApiKey("");
    keyStatus.textContent = t("key.forgotten");
    keyStatus.hidden = false;
  });
  window.addEventListener("semsearch:unauthorized", (event) => {
    banner.textContent = describeError(event.detail);
    banner.hidden = false;
    keyStatus.hidden = true;
    keyInput.setAttribute("aria-invalid", "true");
    keyInput.focus();
  });
  keyInput.addEventListener("input", () => keyInput.removeAttribute("aria-invalid"));
}

function init() {
  translatePage(document);
  drawLanguageToggle();
  toggle.addEventListener("click", () => setLanguage(language() === "zh" ? "en" : "zh"));
  onLanguageChange(() => {
    drawLanguageToggle();
    keyStatus.hidden = true;
    if (!banner.hidden && !apiKey()) banner.textContent = t("auth.required");
  });
  initKeyForm();
  initCollectionSelects();
  similarity.init(document.getElementById("page-similarity"));
  search.init(document.getElementById("page-search"));
  collectionsPage.init(document.getElementById("page-collections"));
  upload.init(document.getElementById("page-upload"));
  calibration.init(document.getElementById("page-calibration"));
  window.addEventListener("hashchange", showPage);
  showPage();
  loadShared().then(() => {
    document.body.dataset.ready = "true";
  });
}

init();
