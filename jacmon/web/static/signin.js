/**
 * Signing in: where the page's token comes from and how it is checked.
 *
 * The token lives in sessionStorage (this tab only, gone when it closes). It
 * reaches the server only as the WebSocket `?token=` and the /whoami
 * Authorization header, never in the page's URL, except that an LMS embedding
 * the page may pass it once as `#token=…` (a fragment: never sent to a server,
 * and removed from the address bar at once).
 */
import { whoami } from "./jacmon.js";

const KEY = "jacmon.token";

/** The token from `#token=` (moved to sessionStorage) or sessionStorage; null if none. */
export function storedToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    sessionStorage.setItem(KEY, given.trim());
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  }
  return sessionStorage.getItem(KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

/**
 * Resolve once the server accepts the page: with the stored token, or with none where tokens
 * are optional, or after the user signs in with the form. A refusal (403: wrong role, another
 * learner) shows its reason and the form.
 * @param {{learner?: string|null}} options the learner the page asks for
 * @returns {Promise<{token: string|null, me: object}>}
 */
export async function signIn({ learner = null } = {}) {
  const form = document.getElementById("signin");
  const message = document.getElementById("signin-message");
  // Never let the browser submit the form itself: that would put the token in the URL.
  form.addEventListener("submit", (event) => event.preventDefault());
  let token = storedToken();
  for (;;) {
    const answer = await whoami({ token, learner });
    if (answer.ok) {
      form.hidden = true;
      return { token, me: answer.body };
    }
    if (answer.status === 0) {
      // The server cannot be reached: say so and ask again; there is nothing to type yet.
      message.textContent = `${answer.body.error}. Retrying…`;
      form.hidden = false;
      form.querySelector("button[type=submit]").disabled = true;
      await new Promise((resolve) => setTimeout(resolve, 2000));
      form.querySelector("button[type=submit]").disabled = false;
      continue;
    }
    forgetToken();
    message.textContent =
      answer.status === 401 && !token
        ? "This server needs an access token (ask its operator: jacmon tokens create)."
        : (answer.body.error ?? `refused (${answer.status})`);
    form.hidden = false;
    token = await nextSubmittedToken(form);
    sessionStorage.setItem(KEY, token);
  }
}

function nextSubmittedToken(form) {
  const input = form.querySelector("input[name=token]");
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener(
      "submit",
      () => {
        const value = input.value.trim();
        input.value = "";
        resolve(value);
      },
      { once: true },
    );
  });
}

/**
 * The controls every page shares: *Sign out* (#signout) forgets the token and starts over,
 * *Reconnect now* in the offline banner (#offline) retries at once, and a token the server
 * stops accepting (401) is forgotten so a reload asks for another.
 * @param {import("./jacmon.js").JacmonClient} client
 */
export function wireSession(client) {
  document.getElementById("signout").addEventListener("click", () => {
    forgetToken();
    client.stop();
    location.reload();
  });
  document.getElementById("offline").addEventListener("click", (event) => {
    if (event.target.closest("[data-reconnect]")) client.refresh();
  });
  client.addEventListener("rejected", (event) => {
    if (event.detail.status === 401) forgetToken();
  });
}
