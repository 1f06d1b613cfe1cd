// A local OpenID Connect provider for bourse's "Sign in with Google" tests, configured
// as if it were Google: discovery, JWKS (a fresh RS256 key per run), authorization code
// flow with PKCE required, ID tokens that carry `email`, `email_verified` and `name`.
//
// It never leaves 127.0.0.1. Settings come from the environment:
//   OIDC_PORT            port to listen on (default 0: any free port)
//   OIDC_CLIENT_ID       the one client's id
//   OIDC_CLIENT_SECRET   its secret (client_secret_basic)
//   OIDC_REDIRECT_URIS   its redirect URIs, comma-separated (exact match)
//   OIDC_ACCOUNTS        JSON object: sub -> { email, email_verified, name }
//   OIDC_ACCOUNTS_FILE   or the same JSON in a file
// Once listening it prints one line `issuer=http://127.0.0.1:PORT` on stdout.
//
// Sign-in page: GET /interaction/:uid shows a form (input `login`: an account's sub;
// buttons `sign_in` and `deny`), so a headless browser can use it; a test without a
// browser POSTs `login=<sub>` (or `deny=1`) to the same URL. Consent is implied (as
// for an app the person already approved): every sign-in gets a grant of the scopes
// asked for.

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) {
      console.error(`${name} must be set`);
      process.exit(2);
    }
    return fallback;
  }
  return v;
}

const accounts = JSON.parse(
  process.env.OIDC_ACCOUNTS_FILE
    ? readFileSync(process.env.OIDC_ACCOUNTS_FILE, 'utf8')
    : env('OIDC_ACCOUNTS', '{}'),
);
const clientId = env('OIDC_CLIENT_ID');
const clientSecret = env('OIDC_CLIENT_SECRET');
const redirectUris = env('OIDC_REDIRECT_URIS').split(',').map((s) => s.trim()).filter(Boolean);

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

let provider;
let issuer;

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 8192) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function page(res, status, uid, message) {
  const options = Object.keys(accounts)
    .map((sub) => `<li><code>${escape(sub)}</code> ${escape(accounts[sub].email ?? '')}</li>`)
    .join('');
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Sign in - test provider</title></head>
<body><h1>Sign in to the test provider</h1>${message ? `<p id="error">${escape(message)}</p>` : ''}
<form id="login" method="post" action="/interaction/${escape(uid)}">
<label>Account <input id="account" name="login" autofocus></label>
<button id="sign_in" type="submit" name="sign_in" value="1">Sign in</button>
<button id="deny" type="submit" name="deny" value="1">Cancel</button>
</form><ul>${options}</ul></body></html>`);
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    res.writeHead(400).end('interaction mismatch');
    return;
  }
  if (req.method === 'GET') {
    page(res, 200, uid);
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const form = await readForm(req);
  if (form.get('deny')) {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'the person declined',
    }, { mergeWithLastSubmission: false });
    return;
  }
  const sub = form.get('login') ?? '';
  if (!Object.hasOwn(accounts, sub)) {
    page(res, 400, uid, 'unknown account');
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: sub } }, {
    mergeWithLastSubmission: false,
  });
}

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)$/);
  if (m) {
    interaction(req, res, m[1]).catch((e) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${e.message}`);
    });
    return;
  }
  provider.callback()(req, res);
});

server.listen(Number(env('OIDC_PORT', '0')), '127.0.0.1', async () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: randomBytes(8).toString('hex') };
  provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    // Like Google: the ID token itself carries the profile and email claims.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, i) => `/interaction/${i.uid}` },
    async findAccount(ctx, sub) {
      if (!Object.hasOwn(accounts, sub)) return undefined;
      const a = accounts[sub];
      return {
        accountId: sub,
        async claims() {
          return {
            sub, email: a.email, email_verified: a.email_verified, name: a.name,
          };
        },
      };
    },
    // Consent is implied: a fresh grant of what this authorization request asks for.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.params.scope);
      grant.addOIDCClaims(['email', 'email_verified', 'name']);
      await grant.save();
      return grant;
    },
    renderError(ctx, out) {
      ctx.type = 'text/plain';
      ctx.body = `${out.error}: ${out.error_description ?? ''}`;
    },
  });
  console.log(`issuer=${issuer}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
