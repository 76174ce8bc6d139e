// The speaker page: sign in, create a session, share it (link and QR code),
// broadcast the microphone, control the broadcast, watch listeners by language.

import qrcode from "../vendor/qrcode-generator/qrcode.mjs";
import { BroadcastClient } from "./lib/client.js";
import { MicCapture } from "./lib/capture.js";
import { HostedUi } from "./lib/cognito.js";
import { tokenProblem, userName } from "./lib/jwt.js";
import { bytesToBase64 } from "./lib/pcm.js";
import { LanguageCounts } from "./lib/presence.js";
import { shareLink } from "./lib/protocol.js";
import { describeRefusal } from "./lib/refusals.js";
import { $, describeState, fillLanguages, languageName, percent, readConfig, say, show } from "./ui.js";

const config = readConfig();
let token = null; // the signed-in speaker's ID token (memory only)
let tokenSource = null; // "local" | "pasted" | "hosted"
let hosted = null;
let client = null;
let capture = null;
let counts = new LanguageCounts();
let audioNumber = 0;
let level = 0;

Object.defineProperty(window, "broadcastSpeaker", {
  value: Object.freeze({
    get stats() {
      return {
        state: client ? client.state : "idle",
        sessionId: client ? client.sessionId : null,
        connectionId: client ? client.connectionId : null,
        client: client ? client.stats : null,
        chunksSent: audioNumber,
        level,
        listeners: counts.snapshot(),
        listenerTotal: counts.total,
      };
    },
  }),
});

// -- sign-in -------------------------------------------------------------------------

async function localToken() {
  const response = await fetch(config.auth.localTokenUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: $("local-user").value.trim() || "speaker" }),
  });
  if (!response.ok) throw new Error(`the local token endpoint answered ${response.status}`);
  return (await response.json()).token;
}

/** A token for the next connection: fresh where the sign-in can make one. */
async function freshToken() {
  if (tokenSource === "local") token = await localToken();
  else if (tokenSource === "hosted") token = await hosted.freshToken();
  return token;
}

function signedIn(newToken, source) {
  const problem = tokenProblem(newToken);
  if (problem) {
    say("refusal", describeRefusal("UNAUTHORIZED") + (problem === "expired" ? " (This token has expired.)" : ""));
    return;
  }
  token = newToken;
  tokenSource = source;
  say("refusal", "");
  say("signed-in", `Signed in as ${userName(token) || "speaker"}.`);
  show("setup");
  $("start").focus();
}

function initSignIn() {
  if (config.auth.localTokenUrl) {
    show("local-signin");
    $("local-signin").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        signedIn(await localToken(), "local");
      } catch (error) {
        say("refusal", `Could not sign in: ${error.message}.`);
      }
    });
  }
  const cognito = config.auth.cognito;
  if (cognito && cognito.domain && cognito.clientId) {
    hosted = new HostedUi({
      domain: cognito.domain,
      clientId: cognito.clientId,
      redirectUri: cognito.redirectUri || new URL("speak", location.href).toString(),
    });
    show("hosted-signin");
    $("hosted-signin").addEventListener("click", () => hosted.signIn());
    hosted
      .completeSignIn()
      .then((idToken) => {
        if (!idToken) return;
        history.replaceState(null, "", location.pathname);
        signedIn(idToken, "hosted");
      })
      .catch((error) => say("refusal", `Could not sign in: ${error.message}.`));
  }
  $("paste-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signedIn($("token").value.trim(), "pasted");
  });
}

// -- the broadcast -------------------------------------------------------------------

async function startBroadcast() {
  say("refusal", "");
  $("start").disabled = true;
  counts = new LanguageCounts();
  audioNumber = 0;
  client = new BroadcastClient({
    url: config.websocketUrl,
    role: "speaker",
    sourceLanguage: $("source-language").value,
    qualityTier: $("quality").value,
    languages: config.languages,
    heartbeatIntervalSeconds: config.heartbeatIntervalSeconds,
    getToken: ({ purpose }) => (purpose === "start" ? Promise.resolve(token) : freshToken()),
  });
  client.addEventListener("state", ({ detail }) => showConnection(detail.state));
  client.addEventListener("welcome", ({ detail }) => welcomed(detail.message, detail.kind));
  client.addEventListener("message", ({ detail }) => handle(detail.message));
  client.addEventListener("refused", ({ detail }) => refused(detail.words));
  client.addEventListener("ended", ({ detail }) => ended(detail.words));
  capture = new MicCapture({
    onChunk: (pcm) => {
      if (!client.live) return;
      if (client.sendAudio(bytesToBase64(pcm), { sequenceNumber: audioNumber + 1 })) audioNumber += 1;
    },
    onLevel: (peak) => {
      level = peak;
      $("level").value = peak;
    },
  });
  try {
    await capture.start();
  } catch (error) {
    $("start").disabled = false;
    say("refusal", `The microphone is not available (${error.name || error.message}). Allow microphone access and try again.`);
    capture = null;
    return;
  }
  client.start();
}

function showConnection(state) {
  const words = { connecting: "Connecting…", live: "Connected", reconnecting: "Connection lost; reconnecting…" };
  if (words[state]) $("connection").textContent = words[state];
}

function welcomed(message, kind) {
  if (message.type === "sessionCreated") {
    show("setup", false);
    show("signin", false);
    show("live");
    $("session-id").textContent = message.sessionId;
    const link = shareLink(config.listenUrl, message.sessionId);
    $("share-link").value = link;
    drawQr(link);
    document.title = `Speak: ${message.sessionId}`;
    $("pause").focus();
  }
  // The counts start from the server's and are re-synced after every new
  // connection: presence pushed while no connection was ours is lost.
  syncCounts();
  if (kind !== "start") showBroadcastState(client.broadcastState);
}

function handle(message) {
  switch (message.type) {
    case "listenerPresence":
      counts.applyPresence(message);
      drawCounts();
      break;
    case "sessionStatus":
      if (counts.applyStatus(message)) drawCounts();
      showBroadcastState(message.broadcastState);
      break;
    case "controlAck":
      showBroadcastState(message.broadcastState);
      break;
    case "connectionWarning":
      say("connection", `The connection will be renewed within ${Math.round(message.remainingMinutes)} minutes.`);
      break;
    default:
      break;
  }
}

async function syncCounts() {
  try {
    await client.status(); // drawn by handle(sessionStatus)
  } catch {
    // Not answered (a refresh under way): the next welcome re-syncs.
  }
}

function drawCounts() {
  const list = $("listeners");
  list.replaceChildren();
  for (const [code, n] of Object.entries(counts.snapshot())) {
    const item = document.createElement("li");
    item.dataset.language = code;
    item.textContent = `${languageName(code)}: ${n}`;
    list.append(item);
  }
  $("listener-total").textContent = String(counts.total);
}

function drawQr(text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  $("qr").innerHTML = qr.createSvgTag({ cellSize: 4, margin: 2, scalable: true });
}

function showBroadcastState(state) {
  if (!state) return;
  $("broadcast-state").textContent = describeState(state);
  $("pause").setAttribute("aria-pressed", String(Boolean(state.isPaused)));
  $("pause").textContent = state.isPaused ? "Resume" : "Pause";
  $("mute").setAttribute("aria-pressed", String(Boolean(state.isMuted)));
  $("mute").textContent = state.isMuted ? "Unmute" : "Mute";
  $("volume").value = String(Math.round(Number(state.volume) * 100));
  $("volume-value").textContent = percent(state.volume);
  if (capture) capture.setPaused(state.isPaused || state.isMuted);
}

async function control(request) {
  try {
    const ack = await request();
    showBroadcastState(ack.broadcastState);
  } catch (error) {
    say("refusal", describeRefusal(error.code));
  }
}

function refused(words) {
  say("refusal", words);
  if (capture) capture.stop();
  $("start").disabled = false;
  if (client && client.sessionId) ended("The connection to the session was lost.");
}

function ended(words) {
  if (capture) capture.stop();
  capture = null;
  show("live", false);
  show("ended");
  $("ended-reason").textContent = words;
}

function init() {
  if (!config) return;
  fillLanguages($("source-language"), config.languages, config.sourceLanguage);
  initSignIn();
  $("setup").addEventListener("submit", (event) => {
    event.preventDefault();
    startBroadcast();
  });
  $("pause").addEventListener("click", () => {
    const paused = $("pause").getAttribute("aria-pressed") === "true";
    control(() => (paused ? client.resume() : client.pause()));
  });
  $("mute").addEventListener("click", () => {
    const muted = $("mute").getAttribute("aria-pressed") === "true";
    control(() => (muted ? client.unmute() : client.mute()));
  });
  $("volume").addEventListener("input", () => {
    $("volume-value").textContent = percent(Number($("volume").value) / 100);
  });
  $("volume").addEventListener("change", () => control(() => client.setVolume(Number($("volume").value) / 100)));
  $("update-counts").addEventListener("click", syncCounts);
  $("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("share-link").value);
      $("copy-link").textContent = "Copied";
    } catch {
      $("share-link").select();
    }
  });
  $("end").addEventListener("click", async () => {
    $("end").disabled = true;
    try {
      await client.end();
    } catch {
      client.stop(); // no answer: closing the speaker's connection ends the session too
      ended("The broadcast has ended.");
    }
    $("end").disabled = false;
  });
  $("again").addEventListener("click", () => {
    show("ended", false);
    show("setup");
    $("start").disabled = false;
    $("start").focus();
  });
}

init();
