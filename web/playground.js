// playground: streamed generation. The Playground view runs one stream, the Compare view four at
// once (the book's temperatures); both show each result as it arrives, with its speed and the
// seed that replays it.
import * as api from "./api.js";
import { describeModel, fillModelPicker } from "./models.js";
import { $, el, errorText, fmt } from "./ui.js";

// ---------------------------------------------------------------------------- one stream

// The text, the seed text before it and a line of statistics, in a .result element holding
// .seed, .gen and .stats. onReplay(seed) is offered once the server has said which seed it used.
class ResultView {
  constructor(root, onReplay) {
    this.root = root;
    this.seedText = $(".seed", root);
    this.gen = $(".gen", root);
    this.stats = $(".stats", root);
    this.onReplay = onReplay;
  }

  begin(seedText) {
    this.seedText.textContent = seedText;
    this.gen.textContent = "";
    this.node = this.gen.appendChild(document.createTextNode(""));
    this.chars = 0;
    this.pending = "";
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.t0 = performance.now();
    this.root.classList.add("running");
    this.stats.textContent = "Waiting for the model…";
  }

  // Text arrives an event per character, thousands a second: it is queued and painted once a
  // frame, since each paint measures the box (a layout of all the text so far) and would
  // otherwise make a long stream cost the page time quadratic in its length.
  append(text) {
    this.pending += text;
    this.chars += [...text].length; // characters, not UTF-16 units
    if (!this.frame) this.frame = requestAnimationFrame(() => this.paint());
  }

  paint() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    if (!this.pending) return;
    const box = this.gen.parentElement;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 30;
    this.node.appendData(this.pending);
    this.pending = "";
    if (atEnd) box.scrollTop = box.scrollHeight; // follow the text unless the reader scrolled up
    const rate = this.chars / ((performance.now() - this.t0) / 1000);
    this.stats.textContent = `${fmt.int(this.chars)} characters · ${fmt.int(rate)} characters/s…`;
  }

  // The stream's last event: {id, finish_reason, seed, usage, timing}.
  finish(s) {
    this.paint();
    this.root.classList.remove("running");
    const why = { length: "", stop: " · hit a stop string", cancelled: " · stopped" }[s.finish_reason] ?? "";
    this.stats.replaceChildren(
      el("strong", {}, fmt.int(s.usage.generated_chars)), " characters · ",
      el("strong", {}, fmt.int(s.timing.chars_per_second)), " characters/s · seed ",
      el("strong", { class: "seed-used" }, String(s.seed)), why,
      this.onReplay ? el("button", { type: "button", onclick: () => this.onReplay(s.seed),
        title: "Generate again with this seed: the same text, character for character" }, "Replay") : "");
  }

  fail(e) {
    this.paint();
    this.root.classList.remove("running");
    this.stats.replaceChildren(el("span", { class: "error" }, errorText(e)));
  }

  stopped() {
    this.paint();
    this.root.classList.remove("running");
    this.stats.textContent = `Stopped after ${fmt.int(this.chars)} characters.`;
  }
}

// POST /generate with "stream": true into a ResultView; stop() cancels it.
class Generation {
  async run(body, view) {
    this.controller = new AbortController();
    this.id = null;
    view.begin(body.seed_text);
    try {
      const res = await api.request("POST", "/generate",
        { json: { ...body, stream: true }, signal: this.controller.signal });
      this.id = res.headers.get("X-Request-Id");
      let summary = null;
      for await (const { data } of api.readEvents(res)) {
        const event = JSON.parse(data);
        if (event.error) throw new api.ApiError(200, event.error); // a timeout mid-stream
        if (typeof event.text === "string") view.append(event.text);
        else summary = event;
      }
      if (!summary) throw new Error("the stream ended early: the server stopped or the connection dropped");
      view.finish(summary);
    } catch (e) {
      if (e.name === "AbortError") view.stopped();
      else view.fail(e);
    } finally {
      this.controller = null;
    }
  }

  // Cancelling by id ends the stream with its summary (the seed, the count). Closing the
  // connection stops the generation as well, but says nothing, so it is the fallback.
  stop() {
    const controller = this.controller;
    if (!controller) return;
    if (this.id) {
      api.request("DELETE", `/generations/${this.id}`).catch(() => controller.abort());
      setTimeout(() => controller.abort(), 2000);
    } else {
      controller.abort();
    }
  }
}

function optionalNumber(input) {
  return input.value === "" ? undefined : Number(input.value);
}

// ---------------------------------------------------------------------------- playground

export function initPlayground() {
  const form = $("#gen-form"), model = $("#gen-model"), info = $("#gen-model-info");
  const temperature = $("#gen-temperature"), shown = $("#gen-temperature-value");
  const start = $("#gen-start"), stop = $("#gen-stop"), seed = $("#gen-seed");
  const generation = new Generation();
  let models = [];

  const showTemperature = () => {
    shown.value = Number(temperature.value).toFixed(2).replace(/0$/, "");
    for (const b of form.querySelectorAll("[data-temperature]"))
      b.setAttribute("aria-pressed", String(Number(b.dataset.temperature) === Number(temperature.value)));
  };
  temperature.addEventListener("input", showTemperature);
  for (const b of form.querySelectorAll("[data-temperature]"))
    b.addEventListener("click", () => { temperature.value = b.dataset.temperature; showTemperature(); });
  showTemperature();

  const showModel = () => {
    const m = models.find((x) => x.name === model.value);
    info.textContent = m ? describeModel(m) : "";
  };
  model.addEventListener("change", showModel);

  const view = new ResultView($("#gen-result"), (used) => {
    seed.value = used;
    form.requestSubmit();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      model: model.value || undefined,
      seed_text: $("#gen-seed-text").value,
      length: Number($("#gen-length").value),
      temperature: Number(temperature.value),
      top_k: optionalNumber($("#gen-top-k")),
      top_p: optionalNumber($("#gen-top-p")),
      seed: optionalNumber(seed),
      unknown_chars: $("#gen-skip").checked ? "skip" : undefined,
    };
    start.disabled = true;
    stop.disabled = false;
    await generation.run(body, view);
    start.disabled = false;
    stop.disabled = true;
  });
  stop.addEventListener("click", () => generation.stop());
  // Ctrl+Enter generates from anywhere in the form (Enter in the seed text is a new line).
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !start.disabled) form.requestSubmit();
  });

  async function refresh(wanted) {
    try {
      models = await fillModelPicker(model, wanted);
      info.classList.remove("error");
      showModel();
    } catch (e) {
      info.textContent = errorText(e);
      info.classList.add("error");
    }
  }
  return { show: (params) => refresh(params.get("model")), refresh: () => refresh() };
}

// ---------------------------------------------------------------------------- compare

// What each of the book's temperatures tends to give, as chapter 8 describes them.
const TEMPERATURES = [
  ["0.2", "repetitive and predictable, but locally realistic"],
  ["0.5", "the book's favourite: plausible words, some invention"],
  ["1.0", "the model's own distribution: more surprise, made-up words"],
  ["1.2", "close to random: creative, often broken"],
];

export function initCompare() {
  const form = $("#cmp-form"), model = $("#cmp-model"), start = $("#cmp-start"), stop = $("#cmp-stop");
  const seed = $("#cmp-seed");
  const lanes = TEMPERATURES.map(([t, blurb]) => {
    const root = el("article", { class: "result panel", "data-temperature": t },
      el("h2", {}, `T = ${t}`), el("p", { class: "blurb" }, blurb),
      el("pre", { class: "text", tabindex: "0", "aria-label": `Text at temperature ${t}` },
        el("span", { class: "seed" }), el("span", { class: "gen" })),
      el("p", { class: "stats", "aria-live": "polite" }, "–"));
    $("#cmp-results").append(root);
    return { t: Number(t), view: new ResultView(root, null), generation: new Generation() };
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      model: model.value || undefined,
      seed_text: $("#cmp-seed-text").value,
      length: Number($("#cmp-length").value),
      seed: optionalNumber(seed),
    };
    start.disabled = true;
    stop.disabled = false;
    await Promise.all(lanes.map((l) => l.generation.run({ ...body, temperature: l.t }, l.view)));
    start.disabled = false;
    stop.disabled = true;
  });
  stop.addEventListener("click", () => lanes.forEach((l) => l.generation.stop()));

  async function refresh(wanted) {
    try {
      await fillModelPicker(model, wanted);
    } catch (e) {
      lanes[0].view.fail(e);
    }
  }
  return { show: (params) => refresh(params.get("model")), refresh: () => refresh() };
}
