// Railyard's page script. The server renders every page; this script only
//  - keeps the API token in this tab's session storage and sends it as a bearer token (auth on),
//  - fetches a page's <main> with that token (the `X-Railyard-Fragment` header) and swaps it in,
//  - sends the writes of `form.api` to the same /api endpoints the CLI calls, after asking where the form says so,
//  - follows new commits on live pages: it refetches <main> with If-None-Match and swaps it on a 200 (304: same head),
//  - signs in through the OIDC issuer (authorization code with PKCE) when the server is set up for it.
(() => {
  'use strict';
  const KEY = 'railyard.token';
  const ERR = 'railyard.signin-error';
  const auth = document.body.dataset.auth;
  const token = () => sessionStorage.getItem(KEY);
  const main = () => document.getElementById('main');

  function headers(extra) {
    const h = Object.assign({}, extra);
    const t = token();
    if (auth !== 'off' && t) h.Authorization = 'Bearer ' + t;
    return h;
  }

  function say(text, bad) {
    const box = document.getElementById('status');
    const d = document.createElement('div');
    d.className = 'msg' + (bad ? ' bad' : '');
    d.textContent = text;
    box.appendChild(d);
    setTimeout(() => d.remove(), 20000);
  }

  function signIn(message) {
    sessionStorage.removeItem(KEY);
    if (message) sessionStorage.setItem(ERR, message);
    location.reload();
  }

  // Replaces <main> with the fragment `html`; false when the answer was not a fragment.
  function swap(html, etag) {
    const tpl = document.createElement('template');
    tpl.innerHTML = html.trim();
    const next = tpl.content.firstElementChild;
    if (!next || next.id !== 'main') return false;
    if (etag) next.dataset.etag = etag;
    main().replaceWith(next);
    document.title = (next.dataset.title || 'Railyard') + ' · Railyard';
    bind();
    return true;
  }

  async function load(url, push) {
    const r = await fetch(url, { headers: headers({ 'X-Railyard-Fragment': '1' }) });
    if (r.status === 401) return signIn('The token was refused: sign in again.');
    if (swap(await r.text(), r.headers.get('ETag')) && push) history.pushState({}, '', url);
  }

  let timer = null;
  function follow() {
    clearInterval(timer);
    if (!main().dataset.live) return;
    timer = setInterval(async () => {
      const m = main();
      if (document.hidden || !m.dataset.live) return;
      // Not while someone types into or picks from a form on the page.
      const a = document.activeElement;
      if (a && m.contains(a) && a.matches('input, select, textarea')) return;
      const h = headers({ 'X-Railyard-Fragment': '1' });
      if (m.dataset.etag) h['If-None-Match'] = m.dataset.etag;
      try {
        const r = await fetch(location.href, { headers: h });
        if (r.status === 200) swap(await r.text(), r.headers.get('ETag'));
        else if (r.status === 401) signIn('The token was refused: sign in again.');
      } catch (_) { /* the server restarts: try again on the next tick */ }
    }, 2000);
  }

  function bind() {
    const m = main();
    const who = document.getElementById('who-name');
    if (who && m.dataset.caller) who.textContent = m.dataset.caller;
    const err = document.getElementById('signin-error');
    if (err && sessionStorage.getItem(ERR)) {
      err.textContent = sessionStorage.getItem(ERR);
      sessionStorage.removeItem(ERR);
    }
    follow();
  }

  async function submitApi(form) {
    const question = form.dataset.confirm;
    if (question && !window.confirm(question)) return;
    let path = form.dataset.path;
    const body = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.dataset.pathParam) {
        path = path.replace('{' + el.name + '}', encodeURIComponent(el.value));
        continue;
      }
      if (el.value === '') continue;
      body[el.name] = el.dataset.type === 'number' ? Number(el.value) : el.value;
    }
    const method = form.dataset.method;
    const out = form.querySelector('output.result');
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    out.classList.remove('bad');
    out.textContent = 'working…';
    try {
      const init = { method, headers: headers({ Accept: 'application/json' }) };
      if (method !== 'DELETE' && method !== 'GET') {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      const r = await fetch(path, init);
      const text = await r.text();
      let answer = null;
      try { answer = JSON.parse(text); } catch (_) { /* not JSON */ }
      if (!r.ok) {
        const message = (answer && (answer.message || answer.error)) || r.status + ' ' + r.statusText;
        out.textContent = message;
        out.classList.add('bad');
        say(message, true);
        return;
      }
      const commit = answer && answer.commit;
      const message = commit ? 'Done: commit ' + commit : 'Done';
      out.textContent = message;
      say(message);
      await load(location.href, false);
      // The page was re-rendered: the same form in the new page says what happened.
      const again = document.querySelector('form.api[data-test="' + CSS.escape(form.dataset.test || '') + '"] output.result');
      if (again) again.textContent = message;
    } catch (e) {
      out.textContent = String(e);
      out.classList.add('bad');
    } finally {
      button.disabled = false;
    }
  }

  // --- OIDC sign-in: authorization code with PKCE (RFC 7636); the server trades the code at /auth/token.
  const OIDC = 'railyard.oidc';
  const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const callbackUrl = () => location.origin + '/auth/callback';

  async function oidcStart() {
    const err = document.getElementById('signin-error');
    try {
      if (!window.crypto || !crypto.subtle) throw new Error('Signing in needs a secure page (https or 127.0.0.1).');
      const r = await fetch('/auth/config');
      const cfg = await r.json();
      if (!r.ok) throw new Error(cfg.error || 'sign-in is not available');
      const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
      const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
      const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
      sessionStorage.setItem(OIDC, JSON.stringify({ verifier, state, back: location.pathname + location.search }));
      const to = new URL(cfg.authorization_endpoint);
      const q = new URLSearchParams({
        response_type: 'code', client_id: cfg.client_id, redirect_uri: callbackUrl(), scope: cfg.scope, state,
        code_challenge: b64url(new Uint8Array(digest)), code_challenge_method: 'S256',
      });
      for (const [k, v] of q) to.searchParams.set(k, v);
      location.assign(to.href);
    } catch (e) {
      if (err) err.textContent = e.message;
    }
  }

  async function oidcFinish() {
    const back = (message) => { if (message) sessionStorage.setItem(ERR, message); location.replace('/'); };
    const p = new URLSearchParams(location.search);
    const saved = JSON.parse(sessionStorage.getItem(OIDC) || 'null');
    sessionStorage.removeItem(OIDC);
    if (p.get('error')) return back(p.get('error_description') || p.get('error'));
    if (!saved || !p.get('code') || p.get('state') !== saved.state) return back('The sign-in answer does not belong to this tab: sign in again.');
    const r = await fetch('/auth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code: p.get('code'), code_verifier: saved.verifier, redirect_uri: callbackUrl() }),
    });
    const answer = await r.json().catch(() => ({}));
    if (!r.ok || !answer.id_token) return back(answer.error || 'The sign-in was refused.');
    sessionStorage.setItem(KEY, answer.id_token);
    location.replace(saved.back || '/');
  }

  document.addEventListener('submit', (ev) => {
    const f = ev.target;
    if (f.classList.contains('api')) {
      ev.preventDefault();
      submitApi(f);
    } else if (f.id === 'token-form') {
      ev.preventDefault();
      sessionStorage.setItem(KEY, f.elements.token.value.trim());
      load(location.href, false);
    } else if ((f.method || 'get').toLowerCase() === 'get') {
      // Filters and pickers: the URL carries them; empty ones are left out so a shared link stays short.
      ev.preventDefault();
      const url = new URL(f.getAttribute('action') || location.pathname, location.href);
      const params = new URLSearchParams();
      for (const [k, v] of new FormData(f)) if (v !== '') params.append(k, v);
      url.search = params.toString();
      if (auth === 'off') location.assign(url.href);
      else load(url.href, true);
    }
  });

  document.addEventListener('click', (ev) => {
    if (ev.target.id === 'oidc-signin') {
      oidcStart();
      return;
    }
    if (ev.target.id === 'signout') {
      sessionStorage.removeItem(KEY);
      location.assign('/');
      return;
    }
    if (auth === 'off') return;
    const a = ev.target.closest('a[href]');
    if (!a || a.target || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/assets/')) return;
    if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
    ev.preventDefault();
    load(url.href, true);
  });

  window.addEventListener('popstate', () => { if (auth !== 'off') load(location.href, false); });

  bind();
  if (main().dataset.oidcCallback) oidcFinish();
  else if (main().dataset.signin && token()) load(location.href, false);
})();
