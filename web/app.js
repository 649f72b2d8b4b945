// app: the entry point. One page with four views chosen by the URL's hash (#playground,
// #compare, #models, #training, each with optional ?model= or ?job=), and the API key field.
import * as api from "./api.js";
import { initModels } from "./models.js";
import { initCompare, initPlayground } from "./playground.js";
import { initTraining } from "./training.js";
import { $ } from "./ui.js";

const views = {
  playground: initPlayground(),
  compare: initCompare(),
  models: initModels(),
  training: initTraining(),
};
const TITLES = { playground: "Playground", compare: "Compare temperatures", models: "Models", training: "Training" };

function route(moveFocus) {
  const [hashName, query] = location.hash.slice(1).split("?");
  const name = hashName in views ? hashName : "playground";
  for (const key of Object.keys(views)) $(`#view-${key}`).hidden = key !== name;
  for (const link of document.querySelectorAll(".top nav a")) {
    if (link.getAttribute("href") === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[name]} · lstmgen`;
  if (moveFocus) $(`#h-${name}`).focus(); // a screen reader then announces the new view
  views[name].show(new URLSearchParams(query));
}
window.addEventListener("hashchange", () => route(true));

// ---- the API key: kept in localStorage, sent by api.js with every call

const keyInput = $("#api-key"), banner = $("#banner");
keyInput.value = api.apiKey();

api.bus.addEventListener("unauthorized", () => {
  banner.textContent = api.apiKey()
    ? "The server refused the API key. Check it, then press Save."
    : "This server needs an API key: enter it in the API key field at the top, then press Save.";
  banner.hidden = false;
  keyInput.setAttribute("aria-invalid", "true");
});

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  api.setApiKey(keyInput.value.trim());
  banner.hidden = true;
  keyInput.removeAttribute("aria-invalid");
  for (const view of Object.values(views)) view.refresh(); // reload what the old key was refused
});

route(false);
