/* The demo page's sign-in: a token from POST /demo/token (development servers only), handed
 * to the embed through data-threadql-token, as a host site's own page would hand over its
 * signed-in reader's token. Kept for the browser tab's session. */
(() => {
  "use strict";

  const thread = document.getElementById("thread");
  const who = document.getElementById("who");
  const signIn = document.getElementById("sign-in");
  const signOut = document.getElementById("sign-out");
  if (!thread || !who || !signIn || !signOut) return;
  const KEY = "threadql-demo-session";

  function use(session) {
    if (session) {
      thread.setAttribute("data-threadql-token", session.token);
      who.textContent = `Signed in as ${session.name}.`;
    } else {
      thread.removeAttribute("data-threadql-token");
      who.textContent = "Reading as a guest.";
    }
    signIn.hidden = Boolean(session);
    signOut.hidden = !session;
  }

  async function start() {
    signIn.setAttribute("aria-disabled", "true");
    try {
      const response = await fetch("/demo/token", { method: "POST" });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const { token, name, expiresIn } = await response.json();
      const session = { token, name, expires: Date.now() + expiresIn * 1000 };
      sessionStorage.setItem(KEY, JSON.stringify(session));
      use(session);
      signOut.focus();
    } catch (error) {
      who.textContent = `Signing in did not work: ${error.message}.`;
    } finally {
      signIn.removeAttribute("aria-disabled");
    }
  }

  signIn.addEventListener("click", start);
  signOut.addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    use(null);
    signIn.focus();
  });
  // The embed asks the page to sign its reader in when a guest presses Like or Reply.
  thread.addEventListener("threadql:signin", (event) => {
    event.preventDefault();
    start();
  });

  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    // A damaged entry is as good as none.
  }
  if (saved && saved.token && saved.expires > Date.now()) use(saved);
})();
