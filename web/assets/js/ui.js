// Small DOM helpers shared by the two pages.

/** The deployment's settings from config.js, or null (with a visible message). */
export function readConfig() {
  const config = globalThis.BROADCAST_CONFIG;
  if (!config || typeof config.websocketUrl !== "string" || !config.websocketUrl) {
    const problem = document.getElementById("config-problem");
    problem.textContent =
      "This site is not configured: config.js, which names the broadcast service, is missing or incomplete.";
    problem.hidden = false;
    return null;
  }
  return {
    websocketUrl: config.websocketUrl,
    heartbeatIntervalSeconds: Number(config.heartbeatIntervalSeconds) || 30,
    languages: Array.isArray(config.languages) ? config.languages : [],
    sourceLanguage: config.sourceLanguage || "en",
    listenUrl: config.listenUrl || new URL("listen", location.href).toString(),
    auth: config.auth || {},
  };
}

export const $ = (id) => document.getElementById(id);

export function show(id, visible = true) {
  $(id).hidden = !visible;
}

export function say(id, text) {
  const el = $(id);
  el.textContent = text;
  el.hidden = !text;
}

const names = typeof Intl !== "undefined" && Intl.DisplayNames ? new Intl.DisplayNames([navigator.language || "en", "en"], { type: "language" }) : null;

/** "Spanish (español)": the language's name in the reader's and in its own language. */
export function languageName(code) {
  let own = "";
  let local = "";
  try {
    local = names ? names.of(code) : "";
    own = new Intl.DisplayNames([code], { type: "language" }).of(code);
  } catch {
    // Unknown to this browser: the code alone.
  }
  if (!local) return code;
  return own && own.toLowerCase() !== local.toLowerCase() ? `${local} (${own})` : local;
}

/** Fill a <select> with languages, `selected` chosen; a placeholder first when asked. */
export function fillLanguages(select, codes, selected, placeholder = null) {
  select.replaceChildren();
  if (placeholder) select.append(new Option(placeholder, ""));
  for (const code of codes) select.append(new Option(languageName(code), code, false, code === selected));
  if (selected && !codes.includes(selected)) select.value = "";
}

export function percent(level) {
  return `${Math.round((Number(level) || 0) * 100)}%`;
}

/** Broadcast state in words: "Live", "Paused", "Muted", "Paused, muted". */
export function describeState(state) {
  if (!state) return "Live";
  const words = [];
  if (state.isPaused) words.push("Paused");
  if (state.isMuted) words.push(words.length ? "muted" : "Muted");
  return words.length ? words.join(", ") : "Live";
}
