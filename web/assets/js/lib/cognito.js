// Sign-in through a Cognito user pool's Hosted UI: the authorization code flow
// with PKCE (RFC 7636), the flow Cognito recommends for public clients such as a
// static page (no client secret; the implicit flow is not used). Optional: only
// when config.js names the Hosted UI's `domain` and the app `clientId`.

function base64Url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A PKCE verifier (43+ characters) and its S256 challenge. */
export async function pkcePair(cryptoImpl = globalThis.crypto) {
  const verifier = base64Url(cryptoImpl.getRandomValues(new Uint8Array(48)));
  const digest = await cryptoImpl.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: base64Url(new Uint8Array(digest)) };
}

function origin(domain) {
  return /^https:\/\//.test(domain) ? domain.replace(/\/+$/, "") : `https://${domain}`;
}

/** The Hosted UI's authorize URL. */
export function authorizeUrl({ domain, clientId, redirectUri, challenge, state, scope = "openid email" }) {
  const url = new URL(`${origin(domain)}/oauth2/authorize`);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  return url.toString();
}

/** The token endpoint's URL and form body for a code or a refresh token. */
export function tokenRequest({ domain, clientId, redirectUri, code, verifier, refreshToken }) {
  const body = refreshToken
    ? { grant_type: "refresh_token", client_id: clientId, refresh_token: refreshToken }
    : { grant_type: "authorization_code", client_id: clientId, code, redirect_uri: redirectUri, code_verifier: verifier };
  return { url: `${origin(domain)}/oauth2/token`, body: new URLSearchParams(body).toString() };
}

const STORE = "broadcast.cognito";

/** Browser side: redirect to the Hosted UI, take the code back, refresh tokens. */
export class HostedUi {
  constructor({ domain, clientId, redirectUri, storage = sessionStorage, fetchImpl = fetch.bind(globalThis) }) {
    Object.assign(this, { domain, clientId, redirectUri, storage, fetchImpl });
    this.idToken = null;
    this.expiresAt = 0;
  }

  async signIn() {
    const { verifier, challenge } = await pkcePair();
    const state = base64Url(crypto.getRandomValues(new Uint8Array(16)));
    this.storage.setItem(STORE, JSON.stringify({ verifier, state }));
    location.assign(authorizeUrl({ domain: this.domain, clientId: this.clientId, redirectUri: this.redirectUri, challenge, state }));
  }

  /** On return from the Hosted UI (`?code=&state=`): exchange the code. Returns
   * the ID token, or null when this page load is not such a return. */
  async completeSignIn(search = location.search) {
    const params = new URLSearchParams(search);
    const code = params.get("code");
    if (!code) return null;
    const saved = JSON.parse(this.storage.getItem(STORE) || "{}");
    if (!saved.state || saved.state !== params.get("state")) throw new Error("sign-in state does not match; sign in again");
    const token = await this._token({ code, verifier: saved.verifier });
    this.storage.setItem(STORE, JSON.stringify({ refreshToken: token.refresh_token }));
    return this.idToken;
  }

  /** A token valid for at least five more minutes (refreshed when needed). */
  async freshToken() {
    if (this.idToken && this.expiresAt - Date.now() > 300000) return this.idToken;
    const saved = JSON.parse(this.storage.getItem(STORE) || "{}");
    if (!saved.refreshToken) return this.idToken;
    await this._token({ refreshToken: saved.refreshToken });
    return this.idToken;
  }

  async _token(grant) {
    const { url, body } = tokenRequest({ domain: this.domain, clientId: this.clientId, redirectUri: this.redirectUri, ...grant });
    const response = await this.fetchImpl(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body,
    });
    if (!response.ok) throw new Error(`Cognito refused the sign-in (${response.status})`);
    const token = await response.json();
    this.idToken = token.id_token;
    this.expiresAt = Date.now() + (Number(token.expires_in) || 3600) * 1000;
    return token;
  }
}
