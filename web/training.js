// training: upload a corpus, fill a job's hyperparameters (the form is built from the server's
// OpenAPI schema, so its fields and ranges are the server's own table), start the job and watch
// it live from its event stream: progress, the loss chart, the samples of each epoch.
import * as api from "./api.js";
import { drawLossChart } from "./chart.js";
import { describeModel, forgetModels, loadModels } from "./models.js";
import { $, el, errorText, fmt, setStatus } from "./ui.js";

// The fields shown at once; the others go under "More hyperparameters". Layout only: the list
// of fields, their types, ranges and descriptions come from the schema.
const MAIN_FIELDS = ["regime", "layers", "hidden", "epochs", "max_seconds", "sample_chars"];

// Each preset starts from an empty form (every key at its regime's default) and sets these.
const PRESETS = {
  book: {
    values: () => ({ regime: "window", layers: 1, hidden: 128, maxlen: 60, step: 3, batch: 128,
      optimizer: "rmsprop", lr: 0.01, epochs: 20, lowercase: true }),
    hint: "Chapter 8 of Deep Learning with Python: LSTM(128) on windows of 60 characters every 3, " +
      "RMSprop at 0.01, batches of 128, lowercased text, 20 epochs.",
  },
  quick: {
    values: () => ({ regime: "sequence", layers: 1, hidden: 128, epochs: 5, sample_chars: 100 }),
    hint: "A small char-rnn model for five epochs: a first look at a corpus in a minute or two.",
  },
  minutes: {
    values: () => ({ regime: "sequence", max_seconds: Number($("#job-minutes").value) * 60 }),
    hint: "The best model for the time: the server measures how fast it trains a few sizes on " +
      "this corpus, picks the size, batch and learning rate for the budget, and keeps the best " +
      "validation checkpoint. The job shows what it chose. It generates in constant time per character.",
  },
};

// ---------------------------------------------------------------------------- hyperparameters

function hyperparameterField(name, spec) {
  const id = `hp-${name}`, hintId = `${id}-hint`;
  let input;
  if (spec.enum) {
    input = el("select", { id, name }, el("option", { value: "" }, "default"),
      ...spec.enum.map((v) => el("option", { value: v }, v)));
  } else if (spec.type === "boolean") {
    input = el("select", { id, name }, el("option", { value: "" }, "default"),
      el("option", { value: "true" }, "yes"), el("option", { value: "false" }, "no"));
  } else {
    input = el("input", { id, name, type: "number", min: spec.minimum, max: spec.maximum,
      step: spec.type === "integer" ? 1 : "any",
      placeholder: spec.default !== undefined ? String(spec.default) : "default" });
  }
  input.setAttribute("aria-describedby", hintId);
  input.dataset.type = spec.type;
  // fine-tuning keeps the base model's value: the form locks it (the server's table says which)
  if (spec["x-architecture"]) input.dataset.architecture = "";
  return el("div", { class: "field" }, el("label", { for: id }, name), input,
    el("small", { id: hintId, class: "hint", title: spec.description }, spec.description || ""));
}

// Only the keys that were set: the server fills in the rest from the regime's defaults.
function readHyperparameters(inputs) {
  const out = {};
  for (const input of inputs) {
    if (input.value === "" || input.disabled) continue;
    const type = input.dataset.type;
    out[input.name] = type === "boolean" ? input.value === "true"
      : type === "integer" || type === "number" ? Number(input.value) : input.value;
  }
  return out;
}

// ---------------------------------------------------------------------------- one job, live

class JobWatch {
  constructor(id, onEnd) {
    this.id = id;
    this.onEnd = onEnd;
    this.epochs = [];
    this.job = null;
    this.controller = new AbortController();
    this.pickedEpoch = null; // an epoch the reader chose; null follows the latest
  }

  async run() {
    const panel = $("#job-panel");
    panel.hidden = false;
    $("#job-title").textContent = `Job ${this.id}`;
    $("#job-open").hidden = true;
    $("#job-epoch").replaceChildren();
    $("#job-samples").replaceChildren();
    this.draw();
    try {
      const res = await api.request("GET", `/jobs/${this.id}/events`, { signal: this.controller.signal });
      for await (const { event, data } of api.readEvents(res)) {
        const value = JSON.parse(data);
        if (event === "epoch") this.addEpoch(value);
        else this.update(value); // progress and end carry the job object
        if (event === "end") return this.onEnd(value);
      }
      setStatus($("#job-progress-text"), "Lost the job's event stream (did the server stop?). " +
        "Select the job in Recent jobs to follow it again.", "error");
    } catch (e) {
      if (e.name !== "AbortError") setStatus($("#job-progress-text"), errorText(e), "error");
    }
  }

  stop() {
    this.controller.abort();
  }

  addEpoch(epoch) {
    this.epochs.push(epoch);
    const label = `${epoch.epoch}: train ${fmt.loss(epoch.train_loss)}, validation ${fmt.loss(epoch.val_loss)}`;
    $("#job-epoch").prepend(el("option", { value: epoch.epoch }, label));
    if (this.pickedEpoch === null) $("#job-epoch").value = String(epoch.epoch);
    this.showSamples();
    this.draw();
  }

  showSamples() {
    const chosen = Number($("#job-epoch").value);
    const epoch = this.epochs.find((e) => e.epoch === chosen);
    // each sample after the seed text it continues, the seed set apart as in the playground
    const seed = () => (epoch?.sample_seed ? [el("span", { class: "seed" }, epoch.sample_seed)] : []);
    $("#job-samples").replaceChildren(...Object.entries(epoch?.samples || {}).map(([t, text]) =>
      el("figure", {}, el("figcaption", {}, `T = ${t}`), el("pre", { class: "text" }, ...seed(), text))));
  }

  draw() {
    drawLossChart($("#job-chart"), this.epochs, this.job?.progress.epochs);
  }

  update(job) {
    this.job = job;
    const p = job.progress, hp = job.hyperparameters || {};
    $("#job-title").textContent = `Job ${job.id}: ${job.model_name}`;
    const badge = $("#job-status");
    badge.textContent = job.cancel_requested && job.status === "running" ? "cancelling" : job.status;
    badge.className = `badge ${job.status}`;
    $("#job-cancel").hidden = job.status !== "queued" && job.status !== "running";
    $("#job-cancel").disabled = job.cancel_requested;

    // A time budget without epochs has no epoch total: its progress is the time spent.
    const byTime = hp.max_seconds > 0 && !hp.epochs;
    const elapsed = job.started_at ? (Date.parse(job.updated_at) - Date.parse(job.started_at)) / 1000 : 0;
    const fraction = byTime && job.status === "running" ? Math.min(elapsed / hp.max_seconds, 1) : p.fraction;
    $("#job-progress").value = fraction;

    let text;
    if (job.status === "queued") text = "Queued: it starts when the jobs before it finish.";
    else if (job.status === "failed") text = `Failed: ${job.error}`;
    else if (job.status === "cancelled") text = `Cancelled after ${p.epoch ? `epoch ${p.epoch}` : "starting"}.`;
    else if (job.status === "succeeded") text = `Done: ${p.epoch} epochs; the model "${job.model_name}" is published.`;
    else {
      const parts = [byTime ? `epoch ${p.epoch}` : `epoch ${p.epoch} of ${p.epochs}`,
        `step ${fmt.int(p.step)} of ${fmt.int(p.steps)}`, `${Math.floor(fraction * 100)} %`];
      if (p.chars_per_second) parts.push(`${fmt.int(p.chars_per_second)} characters/s`);
      if (byTime) parts.push(`${fmt.seconds(Math.max(hp.max_seconds - elapsed, 0))} left`);
      else if (p.eta_seconds != null) parts.push(`about ${fmt.seconds(p.eta_seconds)} left`);
      text = parts.join(" · ");
    }
    setStatus($("#job-progress-text"), text, job.status === "failed" ? "error" : "");
    // what a time budget chose, in the server's words
    $("#job-plan").hidden = !job.plan;
    $("#job-plan").textContent = job.plan ? `Plan: ${job.plan.layers} × LSTM(${job.plan.hidden}), ` +
      `batch ${job.plan.batch}. ${job.plan.why}.` : "";
    if (job.status === "succeeded") {
      const open = $("#job-open");
      open.href = `#playground?model=${encodeURIComponent(job.model_name)}`;
      open.textContent = `Use "${job.model_name}" in the playground`;
      open.hidden = false;
    }
    this.draw();
  }
}

// ---------------------------------------------------------------------------- the view

export function initTraining() {
  const corpusSelect = $("#job-corpus"), fileInput = $("#corpus-file"), drop = $("#corpus-drop");
  const corpusStatus = $("#corpus-status"), formStatus = $("#job-form-status");
  let inputs = [], watch = null, corpora = [];

  // ---- corpora
  const corpusLabel = (c) =>
    `${c.name} (#${c.id}): ${fmt.bytes(c.bytes)}, ${fmt.int(c.distinct_chars)} distinct characters`;

  async function loadCorpora(select) {
    ({ corpora } = await api.getJSON("/corpora"));
    const keep = select ?? corpusSelect.value;
    corpusSelect.replaceChildren(...corpora.map((c) => el("option", { value: c.id }, corpusLabel(c))));
    if (!corpora.length) corpusSelect.append(el("option", { value: "" }, "no corpus yet: upload one"));
    if (corpora.some((c) => String(c.id) === String(keep))) corpusSelect.value = String(keep);
  }

  const nameFromFile = () => {
    const file = fileInput.files[0];
    if (file && !$("#corpus-name").value) $("#corpus-name").value = file.name.replace(/\.[^.]*$/, "");
  };
  fileInput.addEventListener("change", nameFromFile);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) {
      fileInput.files = e.dataTransfer.files;
      nameFromFile();
    }
  });

  $("#corpus-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0], pasted = $("#corpus-text").value;
    const name = $("#corpus-name").value.trim() || (file ? file.name : "pasted text");
    if (!file && !pasted) return setStatus(corpusStatus, "Choose a file, drop one, or paste a text first.", "error");
    setStatus(corpusStatus, "Uploading…");
    $("#corpus-upload").disabled = true;
    try {
      // A file goes as text/plain, byte for byte; JSON would need it decoded and re-encoded.
      const res = await api.request("POST", `/corpora?name=${encodeURIComponent(name)}`, { blob: file || pasted });
      const c = await res.json();
      setStatus(corpusStatus, `Stored as corpus #${c.id}: ${fmt.int(c.chars)} characters ` +
        `(${fmt.bytes(c.bytes)}), ${fmt.int(c.distinct_chars)} distinct.`, "ok");
      fileInput.value = "";
      $("#corpus-text").value = "";
      await loadCorpora(c.id);
      // a model name from the corpus's: model names allow fewer characters
      if (!$("#job-model-name").value)
        $("#job-model-name").value = c.name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+/, "").slice(0, 64);
    } catch (e) {
      setStatus(corpusStatus, errorText(e), "error");
    } finally {
      $("#corpus-upload").disabled = false;
    }
  });

  // ---- hyperparameters, from GET /openapi.json, once (views refresh concurrently: one promise)
  const buildForm = api.oncePerKey(() => fillForm());
  async function fillForm() {
    const spec = await api.getJSON("/openapi.json");
    if (inputs.length) return; // an earlier request, under another key, filled it first
    const properties = spec.components.schemas.Hyperparameters.properties;
    for (const [name, p] of Object.entries(properties))
      $(MAIN_FIELDS.includes(name) ? "#job-fields" : "#job-more-fields").append(hyperparameterField(name, p));
    inputs = [...document.querySelectorAll("#job-fields [name], #job-more-fields [name]")];
    applyPreset("quick");
  }

  function applyPreset(name) {
    const values = PRESETS[name].values();
    for (const input of inputs) input.value = values[input.name] === undefined ? "" : String(values[input.name]);
    for (const b of document.querySelectorAll("[data-preset]"))
      b.setAttribute("aria-pressed", String(b.dataset.preset === name));
    $("#job-preset-hint").textContent = PRESETS[name].hint;
    showBase();
  }

  // ---- fine-tuning: a base model fixes the architecture, and asks what to do with characters
  // it lacks
  const baseSelect = $("#job-base");
  let models = [];
  async function loadBases() {
    ({ models } = await loadModels());
    const keep = baseSelect.value;
    baseSelect.replaceChildren(el("option", { value: "" }, "a new model"),
      ...models.filter((m) => !m.error).map((m) => el("option", { value: m.name }, m.name)));
    if (models.some((m) => m.name === keep && !m.error)) baseSelect.value = keep;
    showBase();
  }
  function showBase() {
    const base = models.find((m) => m.name === baseSelect.value && baseSelect.value);
    $("#job-unknown-field").hidden = !base;
    $("#job-replacement").hidden = $("#job-unknown").value !== "replace";
    $("#job-base-hint").textContent = base ? `Fine-tunes "${base.name}": ${describeModel(base)}, ` +
      "kept as they are." : "Or fine-tune a model: it keeps its size and its characters.";
    for (const input of inputs.filter((i) => "architecture" in i.dataset)) {
      input.disabled = Boolean(base);
      if (base) input.value = "";
    }
  }
  baseSelect.addEventListener("change", showBase);
  $("#job-unknown").addEventListener("change", showBase);
  function fineTuning() {
    if (!baseSelect.value) return {};
    const rule = $("#job-unknown").value;
    return { base_model: baseSelect.value,
      unknown_chars: rule === "replace" ? `replace=${$("#job-replacement").value}` : rule };
  }
  for (const b of document.querySelectorAll("[data-preset]"))
    b.addEventListener("click", () => applyPreset(b.dataset.preset));
  $("#job-minutes").addEventListener("change", () => {
    if ($("[data-preset=minutes]").getAttribute("aria-pressed") === "true") applyPreset("minutes");
  });

  // ---- jobs
  function follow(id) {
    if (watch?.id === id) return;
    watch?.stop();
    watch = new JobWatch(id, (job) => {
      if (job.status === "succeeded") {
        forgetModels();
        loadBases().catch(() => {}); // the new model can be fine-tuned next; the form reports errors
      }
      loadJobs();
    });
    watch.run();
  }

  $("#job-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setStatus(formStatus, "Starting…");
    try {
      const job = await api.send("POST", "/jobs", {
        corpus_id: Number(corpusSelect.value),
        model_name: $("#job-model-name").value,
        hyperparameters: readHyperparameters(inputs),
        ...fineTuning(),
      });
      setStatus(formStatus, `Job ${job.id} queued.`, "ok");
      location.hash = `#training?job=${job.id}`; // follows it (hashchange), and survives a reload
      loadJobs();
    } catch (e) {
      setStatus(formStatus, errorText(e), "error");
    }
  });
  $("#job-cancel").addEventListener("click", async () => {
    $("#job-cancel").disabled = true;
    try {
      watch.update(await api.send("POST", `/jobs/${watch.id}/cancel`));
    } catch (e) {
      setStatus($("#job-progress-text"), errorText(e), "error");
    }
  });
  $("#job-epoch").addEventListener("change", () => {
    watch.pickedEpoch = Number($("#job-epoch").value);
    watch.showSamples();
  });

  async function loadJobs() {
    const body = $("#jobs-table tbody");
    try {
      const { jobs } = await api.getJSON("/jobs?limit=10");
      body.replaceChildren(...jobs.map((j) => el("tr", {},
        el("td", {}, el("a", { href: `#training?job=${j.id}` }, `#${j.id}`)),
        el("td", {}, j.model_name),
        el("td", {}, el("span", { class: `badge ${j.status}` }, j.status)),
        el("td", {}, j.progress.epochs && j.progress.epochs < 1e6 ? `${j.progress.epoch} / ${j.progress.epochs}` : String(j.progress.epoch)),
        el("td", {}, fmt.date(j.created_at)))));
      if (!jobs.length) body.append(el("tr", {}, el("td", { colspan: 5 }, "No jobs yet.")));
    } catch (e) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "error" }, errorText(e))));
    }
  }
  $("#jobs-refresh").addEventListener("click", loadJobs);

  async function refresh(params = new URLSearchParams()) {
    try {
      await Promise.all([buildForm(), loadCorpora()]);
      await loadBases();
      setStatus(formStatus, "");
    } catch (e) {
      setStatus(formStatus, errorText(e), "error");
    }
    loadJobs();
    const id = Number(params.get("job"));
    if (id) follow(id);
  }
  return { show: refresh, refresh: () => refresh() };
}
