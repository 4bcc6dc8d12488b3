// Errors and notices shown in a page: the service's `detail`, in the page's alert line.

import { apiKey } from "./api.js";
import { t } from "./i18n.js";

/** What to tell the user about a failed call. */
export function describeError(error) {
  if (error === null || typeof error !== "object" || !("status" in error)) {
    return String(error && error.message ? error.message : error);
  }
  if (error.status === 0) return t("common.networkError", { detail: error.detail });
  if (error.status === 401) {
    return apiKey() ? t("auth.rejected", { detail: error.detail }) : t("auth.required");
  }
  if (error.status === 403) return t("common.forbidden", { detail: error.detail });
  return t("common.error", { detail: error.detail });
}

export function showError(section, error) {
  const line = section.querySelector("[data-error]");
  line.textContent = typeof error === "string" ? error : describeError(error);
  line.hidden = false;
}

export function showNotice(section, text) {
  const line = section.querySelector("[data-notice]");
  if (!line) return;
  line.textContent = text;
  line.hidden = false;
}

export function clearMessages(section) {
  for (const line of section.querySelectorAll("[data-error], [data-notice]")) {
    line.hidden = true;
    line.textContent = "";
  }
}

/** Run `work` with the form's submit buttons disabled, showing its error in `section`. */
export async function busy(form, section, work) {
  const buttons = form.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    showError(section, error);
    return undefined;
  } finally {
    for (const button of buttons) button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}
