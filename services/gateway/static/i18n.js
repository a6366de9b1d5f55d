// French and English texts of the pages: the browser's language picks one, the switch in the header the other
// (kept in localStorage). Elements name their text with data-i18n (content), data-i18n-placeholder,
// data-i18n-title and data-i18n-aria-label.

const STORE = "relais.lang";
let texts = {};
let current = "en";

export function pickLanguage() {
  const saved = localStorage.getItem(STORE);
  if (saved === "fr" || saved === "en") return saved;
  const browser = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
  return browser.toLowerCase().startsWith("fr") ? "fr" : "en";
}

export function setup(dictionary, onChange) {
  texts = dictionary;
  apply(pickLanguage());
  const button = document.getElementById("lang-switch");
  if (button) {
    button.addEventListener("click", () => {
      const next = current === "fr" ? "en" : "fr";
      localStorage.setItem(STORE, next);
      apply(next);
      if (onChange) onChange(next);
    });
  }
}

export function lang() {
  return current;
}

/** The text of `key` in the current language, {name} placeholders filled from `values`. */
export function t(key, values = {}) {
  const text = (texts[current] && texts[current][key]) ?? (texts.en && texts.en[key]) ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

function apply(language) {
  current = language;
  document.documentElement.lang = language;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  const button = document.getElementById("lang-switch");
  if (button) {
    // The switch names the other language, in that language.
    button.textContent = language === "fr" ? "English" : "Français";
    button.lang = language === "fr" ? "en" : "fr";
  }
}

/** An element: h("li", {class: "x", onclick: f}, "text", child, ...). Text is always set as text, never as HTML
 * (customer messages are untrusted). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
