// The listener page: join (from ?session=&lang= or the form), hear the audio,
// read the translation, follow the broadcast state; leave, switch language.

import { BroadcastClient } from "./lib/client.js";
import { AudioPlayer } from "./lib/player.js";
import { checkJoin, normaliseSessionId } from "./lib/protocol.js";
import { describeRefusal } from "./lib/refusals.js";
import { $, describeState, fillLanguages, languageName, percent, readConfig, say, show } from "./ui.js";

const MAX_LINES = 200;
const config = readConfig();
let client = null;
let player = null;
const received = []; // sequenceNumbers delivered, in delivery order (for tests)
const notices = [];

// Read-only numbers for tests and the curious (no internals).
Object.defineProperty(window, "broadcastListener", {
  value: Object.freeze({
    get stats() {
      return {
        state: client ? client.state : "idle",
        sessionId: client ? client.sessionId : null,
        language: client ? client.targetLanguage : null,
        connectionId: client ? client.connectionId : null,
        client: client ? client.stats : null,
        audio: player ? player.stats : null,
        received: [...received],
        notices: [...notices],
      };
    },
  }),
});

function init() {
  if (!config) {
    $("join").hidden = true;
    return;
  }
  const params = new URLSearchParams(location.search);
  const session = normaliseSessionId(params.get("session") || "");
  const lang = (params.get("lang") || "").trim().toLowerCase();
  $("session").value = session;
  fillLanguages($("language"), config.languages, lang, "Choose a language");
  $("join").addEventListener("submit", (event) => {
    event.preventDefault();
    join($("session").value, $("language").value);
  });
  $("leave").addEventListener("click", leave);
  $("change-language").addEventListener("submit", (event) => {
    event.preventDefault();
    switchLanguage($("new-language").value);
  });
  $("start-audio").addEventListener("click", async () => {
    await player.resume();
    $("start-audio").hidden = player.context.state !== "suspended";
  });
  if (session && lang) join(session, lang);
  else (session ? $("language") : $("session")).focus();
}

function join(rawSession, language) {
  const sessionId = normaliseSessionId(rawSession);
  $("session").value = sessionId;
  const problem = checkJoin({ sessionId, targetLanguage: language }, config.languages);
  if (problem) {
    say("refusal", describeRefusal(problem.code));
    $(problem.field === "sessionId" ? "session" : "language").focus();
    return;
  }
  say("refusal", "");
  player = new AudioPlayer();
  player.start(); // inside the click where there was one: autoplay rules allow it
  client = new BroadcastClient({
    url: config.websocketUrl,
    role: "listener",
    sessionId,
    targetLanguage: language,
    languages: config.languages,
    heartbeatIntervalSeconds: config.heartbeatIntervalSeconds,
  });
  client.addEventListener("state", ({ detail }) => showConnection(detail.state));
  client.addEventListener("welcome", ({ detail }) => welcomed(detail.message));
  client.addEventListener("message", ({ detail }) => handle(detail.message));
  client.addEventListener("refused", ({ detail }) => refused(detail));
  client.addEventListener("ended", ({ detail }) => ended(detail.words));
  $("join-button").disabled = true;
  $("live-session").textContent = sessionId;
  client.start();
}

function showConnection(state) {
  const words = {
    connecting: "Connecting…",
    live: "Connected",
    refreshing: "Connected",
    reconnecting: "Connection lost; reconnecting…",
    stopped: "You left the session.",
  };
  if (words[state]) $("connection").textContent = words[state];
}

function welcomed(message) {
  show("join", false);
  show("live");
  $("join-button").disabled = false;
  $("current-language").textContent = languageName(client.targetLanguage);
  fillLanguages($("new-language"), config.languages.filter((c) => c !== client.targetLanguage), null);
  applyState(client.broadcastState);
  if (player.context && player.context.state === "suspended") show("start-audio");
  if (message.type === "sessionJoined") {
    const url = new URL(location.href);
    url.searchParams.set("session", client.sessionId);
    url.searchParams.set("lang", client.targetLanguage);
    history.replaceState(null, "", url);
  }
}

function handle(message) {
  if (Number.isInteger(message.sequenceNumber) && !["sessionJoined", "connectionRefreshComplete", "languageChanged"].includes(message.type)) {
    received.push(message.sequenceNumber);
    if (received.length > 10000) received.shift();
  }
  if (message.broadcastState) applyState(message.broadcastState);
  switch (message.type) {
    case "audio":
      player.push(message);
      break;
    case "translation":
      if (typeof message.text === "string") addLine(message.text, message.targetLanguage);
      break;
    case "languageChanged":
      $("current-language").textContent = languageName(message.targetLanguage);
      fillLanguages($("new-language"), config.languages.filter((c) => c !== message.targetLanguage), null);
      $("translations").replaceChildren();
      show("no-translation");
      notify(`Now listening in ${languageName(message.targetLanguage)}.`);
      break;
    case "speakerDisconnected":
      notify(`The speaker's connection dropped. Waiting up to ${message.graceSeconds} seconds for them to return.`);
      break;
    case "speakerReconnected":
      notify("The speaker is back.");
      break;
    case "error":
      notify(describeRefusal(message.code));
      break;
    default:
      break;
  }
}

function applyState(state) {
  if (!state) return;
  $("broadcast-state").textContent = describeState(state);
  $("broadcast-volume").textContent = percent(state.volume);
  if (player) {
    player.setVolume(Number(state.volume));
    player.setSilenced(state.isPaused || state.isMuted);
  }
}

function addLine(text, language) {
  const item = document.createElement("li");
  item.textContent = text;
  if (language) item.lang = language;
  const list = $("translations");
  list.append(item);
  show("no-translation", false);
  while (list.children.length > MAX_LINES) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function notify(text) {
  notices.push(text);
  say("notice", text);
}

function refused({ words }) {
  say("refusal", words);
  show("live", false);
  show("join");
  $("join-button").disabled = false;
  if (player) player.close();
  $("session").focus();
}

function ended(words) {
  show("live", false);
  show("join", false);
  show("ended");
  $("ended-reason").textContent = words;
  if (player) player.close();
}

function leave() {
  client.stop();
  player.close();
  show("live", false);
  show("join");
  say("refusal", "");
  $("join-button").focus();
}

async function switchLanguage(code) {
  if (!code) return;
  try {
    await client.changeLanguage(code);
  } catch (error) {
    notify(describeRefusal(error.code));
  }
}

init();
