// models: the model list (shared with the pickers of the generation views) and the Models view:
// each model's metadata, a link into the playground, and delete.
import * as api from "./api.js";
import { $, el, errorText, fmt, setStatus } from "./ui.js";

// GET /models, until something changes the list
export const loadModels = api.oncePerKey(() => api.getJSON("/models"));

export function forgetModels() {
  loadModels.forget();
}

// Fills a <select> with the usable models; keeps its choice, else picks `wanted`, else the
// server's default. Returns the list (or throws what GET /models threw).
export async function fillModelPicker(select, wanted) {
  const { models, default_model: fallback } = await loadModels();
  const keep = wanted || select.value || fallback;
  select.replaceChildren(...models.filter((m) => !m.error).map((m) =>
    el("option", { value: m.name }, m.default && m.name !== "default" ? `${m.name} (default)` : m.name)));
  if (models.some((m) => m.name === keep && !m.error)) select.value = keep;
  return models;
}

export function describeModel(m) {
  return `${m.layers} × LSTM(${m.hidden}), ${fmt.int(m.vocab_size)} characters` +
    `${m.lowercase ? ", lowercase" : ""}, ${m.regime} regime`;
}

// ---------------------------------------------------------------------------- the view

function card(m, refresh) {
  const status = el("p", { class: "status", "aria-live": "polite" });
  const rows = m.error ? [["Error", m.error]] : [
    ["Network", `${m.layers} × LSTM(${m.hidden}), ${fmt.int(m.parameters)} parameters`],
    ["Vocabulary", `${fmt.int(m.vocab_size)} characters${m.lowercase ? " (lowercased text)" : ""}`],
    ["Regime", m.regime === "window" ? `window (the book's), maxlen ${m.maxlen}` : "sequence (char-rnn's)"],
    ["Validation loss", m.val_loss == null ? "–" : `${fmt.loss(m.val_loss)} (${(m.val_loss / Math.LN2).toFixed(3)} bits/char)`],
    ["Training loss", fmt.loss(m.train_loss)],
    ["Epochs", m.epochs ?? "–"],
    ["Trained", m.created_at ? fmt.date(m.created_at) : "–"],
    ["Job", m.job_id == null ? "lstmgen train" : el("a", { href: `#training?job=${m.job_id}` }, `#${m.job_id}`)],
    ["Corpus", m.corpus_sha256 ? el("code", { title: m.corpus_sha256 }, `sha256 ${m.corpus_sha256.slice(0, 12)}…`) : "–"],
    ["File", `${fmt.bytes(m.file_size)}, modified ${fmt.date(m.modified_at)}`],
  ];
  const remove = async (event) => {
    if (!confirm(`Delete the model "${m.name}"? Its file is removed from the server.`)) return;
    event.target.disabled = true;
    try {
      await api.request("DELETE", `/models/${encodeURIComponent(m.name)}`);
      forgetModels();
      refresh();
    } catch (e) {
      setStatus(status, errorText(e), "error");
      event.target.disabled = false;
    }
  };
  return el("article", { class: "panel card", "data-model": m.name },
    el("h2", {}, m.name, m.default && el("span", { class: "badge" }, "default")),
    el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("div", { class: "actions" },
      !m.error && el("a", { class: "button primary", href: `#playground?model=${encodeURIComponent(m.name)}` },
        "Use in playground"),
      el("button", { type: "button", class: "danger", onclick: remove,
        "aria-label": `Delete ${m.name}` }, "Delete")),
    status);
}

export function initModels() {
  const list = $("#models-list"), status = $("#models-status");
  async function refresh() {
    forgetModels();
    setStatus(status, "Loading…");
    try {
      const { models } = await loadModels();
      list.replaceChildren(...models.map((m) => card(m, refresh)));
      setStatus(status, models.length ? "" : "No models yet: train one in the Training section.");
    } catch (e) {
      list.replaceChildren();
      setStatus(status, errorText(e), "error");
    }
  }
  $("#models-refresh").addEventListener("click", refresh);
  return { show: refresh, refresh };
}
