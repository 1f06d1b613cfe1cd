#!/usr/bin/env python3
"""Writes docs/postman/bourse-flow.postman_collection.json: the scripted end-to-end flow
that scripts/newman-flow.sh runs against a real server. Kept as code so that the test
scripts stay readable; run it after changing the flow."""
import json
import pathlib

# TOTP (RFC 6238, SHA-1, 6 digits, 30 s) in the Postman sandbox with CryptoJS.
TOTP = r"""
var CryptoJS = require('crypto-js');
function base32ToHex(b32) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of b32.replace(/=+$/, '').toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  }
  let hex = '';
  for (let i = 0; i + 8 <= bits.length; i += 8) {
    hex += parseInt(bits.substr(i, 8), 2).toString(16).padStart(2, '0');
  }
  return hex;
}
function totp(secret, unixSeconds) {
  const counter = Math.floor(unixSeconds / 30).toString(16).padStart(16, '0');
  const mac = CryptoJS.HmacSHA1(CryptoJS.enc.Hex.parse(counter), CryptoJS.enc.Hex.parse(base32ToHex(secret))).toString();
  const offset = parseInt(mac.substr(mac.length - 1), 16);
  const bin = parseInt(mac.substr(offset * 2, 8), 16) & 0x7fffffff;
  return (bin % 1000000).toString().padStart(6, '0');
}
"""


def req(name, method, path, body=None, auth=None, tests="", pre="", base="publicUrl"):
    item = {
        "name": name,
        "request": {
            "method": method,
            "header": [{"key": "Content-Type", "value": "application/json"}] if body is not None else [],
            "url": {"raw": "{{" + base + "}}" + path, "host": ["{{" + base + "}}"], "path": [p for p in path.split("/") if p]},
        },
        "event": [],
    }
    if body is not None:
        item["request"]["body"] = {"mode": "raw", "raw": json.dumps(body, indent=2)}
    if auth:
        item["request"]["auth"] = {"type": "bearer", "bearer": [{"key": "token", "value": "{{" + auth + "}}", "type": "string"}]}
    if pre:
        item["event"].append({"listen": "prerequest", "script": {"type": "text/javascript", "exec": pre.strip().split("\n")}})
    if tests:
        item["event"].append({"listen": "test", "script": {"type": "text/javascript", "exec": tests.strip().split("\n")}})
    return item


items = [
    req("Register", "POST", "/v1/auth/register", {"email": "{{email}}", "password": "{{password}}"},
        pre="""
pm.collectionVariables.set('email', 'flow-' + Date.now() + '@example.com');
pm.collectionVariables.set('password', 'flow passphrase ' + Math.random().toString(36).slice(2));
""",
        tests="""
pm.test('201 Created', () => pm.response.to.have.status(201));
pm.test('email is normalised', () => pm.expect(pm.response.json().email).to.eql(pm.collectionVariables.get('email')));
"""),
    req("Log in", "POST", "/v1/auth/login", {"email": "{{email}}", "password": "{{password}}"},
        tests="""
pm.test('200 with tokens', () => {
  pm.response.to.have.status(200);
  const b = pm.response.json();
  pm.expect(b.status).to.eql('authenticated');
  pm.expect(b.token_type).to.eql('Bearer');
  pm.collectionVariables.set('access', b.access_token);
  pm.collectionVariables.set('refresh', b.refresh_token);
});
"""),
    req("Who am I", "GET", "/v1/auth/me", auth="access",
        tests="""
pm.test('password-only session', () => { pm.response.to.have.status(200); pm.expect(pm.response.json().acr).to.eql('pwd'); });
pm.collectionVariables.set('userId', pm.response.json().user_id);
pm.test('no-store', () => pm.response.to.have.header('Cache-Control', 'no-store'));
"""),
    req("Change password without 2FA is refused", "POST", "/v1/auth/password",
        {"current_password": "{{password}}", "new_password": "another flow passphrase"}, auth="access",
        tests="""
pm.test('403 problem', () => {
  pm.response.to.have.status(403);
  pm.expect(pm.response.headers.get('Content-Type')).to.eql('application/problem+json');
  pm.expect(pm.response.json().code).to.eql('mfa_enrollment_required');
});
"""),
    req("Enrol TOTP", "POST", "/v1/auth/2fa/totp", auth="access",
        tests="""
pm.test('201 with a secret and a QR code', () => {
  pm.response.to.have.status(201);
  const b = pm.response.json();
  pm.expect(b.otpauth_uri).to.match(/^otpauth:\\/\\/totp\\//);
  pm.expect(b.qr_svg).to.include('<svg');
  pm.collectionVariables.set('totpSecret', b.secret);
});
"""),
    req("Confirm TOTP", "POST", "/v1/auth/2fa/totp/confirm", {"code": "{{code}}"}, auth="access",
        pre=TOTP + """
// The previous step's code, so that the current step stays free for the step-up below.
pm.collectionVariables.set('code', totp(pm.collectionVariables.get('totpSecret'), Date.now() / 1000 - 30));
""",
        tests="""
pm.test('ten recovery codes', () => { pm.response.to.have.status(200); pm.expect(pm.response.json().recovery_codes).to.have.length(10); });
"""),
    req("Sensitive action asks for step-up", "DELETE", "/v1/auth/2fa/totp", auth="access",
        tests="""
pm.test('RFC 9470 challenge', () => {
  pm.response.to.have.status(401);
  pm.expect(pm.response.json().code).to.eql('insufficient_user_authentication');
  const h = pm.response.headers.get('WWW-Authenticate');
  pm.expect(h).to.include('acr_values="mfa"');
  pm.expect(h).to.include('max_age=300');
});
"""),
    req("Step up", "POST", "/v1/auth/step-up", {"code": "{{code}}"}, auth="access",
        pre=TOTP + """
pm.collectionVariables.set('code', totp(pm.collectionVariables.get('totpSecret'), Date.now() / 1000));
""",
        tests="""
pm.test('token with acr=mfa', () => {
  pm.response.to.have.status(200);
  pm.collectionVariables.set('stepped', pm.response.json().access_token);
});
"""),
    req("Who am I after step-up", "GET", "/v1/auth/me", auth="stepped",
        tests="""
pm.test('acr is mfa', () => pm.expect(pm.response.json().acr).to.eql('mfa'));
"""),
    # --- trading: an admin runs the market, two users trade, one withdraws ---
    req("Admin sets the mark and index price", "POST", "/admin/v1/instruments/BTC-PERP/prices",
        {"mark": "50000", "index": "50000"}, auth="adminKey", base="adminUrl",
        tests="""
pm.test('200', () => pm.response.to.have.status(200));
"""),
    req("Admin credits a deposit", "POST", "/admin/v1/deposits",
        {"user_id": "{{userId}}", "asset": "USDC", "amount": "100000", "tx_ref": "{{txRef}}"}, auth="adminKey", base="adminUrl",
        pre="""
pm.collectionVariables.set('txRef', 'flow-tx-' + Date.now());
""",
        tests="""
pm.test('201 credited', () => { pm.response.to.have.status(201); pm.expect(pm.response.json().state).to.eql('credited'); });
"""),
    req("Place a resting order", "POST", "/v1/orders",
        {"symbol": "BTC-PERP", "side": "sell", "type": "limit", "price": "50000.5", "quantity": "0.010", "client_order_id": "flow-1"},
        auth="access",
        tests="""
pm.test('201 resting', () => {
  pm.response.to.have.status(201);
  const b = pm.response.json();
  pm.expect(b.status).to.eql('new');
  pm.expect(b.price).to.eql('50000.5');
  pm.collectionVariables.set('orderId', b.order_id);
});
"""),
    req("The book shows it", "GET", "/v1/instruments/BTC-PERP/book?depth=5",
        tests="""
pm.test('best ask', () => { pm.response.to.have.status(200); pm.expect(pm.response.json().asks[0].price).to.eql('50000.5'); });
"""),
    req("Register a second user", "POST", "/v1/auth/register", {"email": "{{email2}}", "password": "{{password}}"},
        pre="""
pm.collectionVariables.set('email2', 'flow2-' + Date.now() + '@example.com');
""",
        tests="""
pm.test('201', () => pm.response.to.have.status(201));
pm.collectionVariables.set('userId2', pm.response.json().id);
"""),
    req("The second user logs in", "POST", "/v1/auth/login", {"email": "{{email2}}", "password": "{{password}}"},
        tests="""
pm.test('tokens', () => { pm.response.to.have.status(200); pm.collectionVariables.set('access2', pm.response.json().access_token); });
"""),
    req("Who is the second user", "GET", "/v1/auth/me", auth="access2",
        tests="""
pm.test('200', () => pm.response.to.have.status(200));
pm.collectionVariables.set('userId2', pm.response.json().user_id);
"""),
    req("Admin credits the second user", "POST", "/admin/v1/deposits",
        {"user_id": "{{userId2}}", "asset": "USDC", "amount": "100000", "tx_ref": "{{txRef2}}"}, auth="adminKey", base="adminUrl",
        pre="""
pm.collectionVariables.set('txRef2', 'flow-tx2-' + Date.now());
""",
        tests="""
pm.test('201', () => pm.response.to.have.status(201));
"""),
    req("The second user takes it", "POST", "/v1/orders",
        {"symbol": "BTC-PERP", "side": "buy", "type": "market", "quantity": "0.010"}, auth="access2",
        tests="""
pm.test('filled at the resting price', () => {
  pm.response.to.have.status(201);
  const b = pm.response.json();
  pm.expect(b.status).to.eql('filled');
  pm.expect(b.fills[0].price).to.eql('50000.5');
  pm.expect(b.fills[0].liquidity).to.eql('taker');
});
"""),
    req("The maker's order is filled", "GET", "/v1/orders/{{orderId}}", auth="access",
        tests="""
pm.test('filled', () => { pm.response.to.have.status(200); pm.expect(pm.response.json().status).to.eql('filled'); });
"""),
    req("The maker's fill", "GET", "/v1/fills", auth="access",
        tests="""
pm.test('one maker fill', () => {
  const d = pm.response.json().data;
  pm.expect(d).to.have.length(1);
  pm.expect(d[0].liquidity).to.eql('maker');
  pm.expect(d[0].order_id).to.eql(pm.collectionVariables.get('orderId'));
});
"""),
    req("The maker is short", "GET", "/v1/positions", auth="access",
        tests="""
pm.test('short 0.01', () => pm.expect(pm.response.json().data[0].size).to.eql('-0.01'));
"""),
    req("The taker is long", "GET", "/v1/positions", auth="access2",
        tests="""
pm.test('long 0.01', () => pm.expect(pm.response.json().data[0].size).to.eql('0.01'));
"""),
    req("Another user's order is not found", "GET", "/v1/orders/{{orderId}}", auth="access2",
        tests="""
pm.test('404 problem', () => { pm.response.to.have.status(404); pm.expect(pm.response.json().code).to.eql('not_found'); });
"""),
    req("Whitelist a withdrawal address (step-up)", "POST", "/v1/wallet/addresses",
        {"asset": "USDC", "address": "0x8ba1f109551bd432803012645ac136ddd64dba72", "label": "flow"}, auth="stepped",
        tests="""
pm.test('201', () => { pm.response.to.have.status(201); pm.collectionVariables.set('addressId', pm.response.json().id); });
"""),
    req("Withdrawing without step-up is refused", "POST", "/v1/wallet/withdrawals",
        {"asset": "USDC", "amount": "100", "address_id": "{{addressId}}"}, auth="access",
        tests="""
pm.test('401 step-up', () => { pm.response.to.have.status(401); pm.expect(pm.response.json().code).to.eql('insufficient_user_authentication'); });
"""),
    req("Withdraw with step-up", "POST", "/v1/wallet/withdrawals",
        {"asset": "USDC", "amount": "100", "address_id": "{{addressId}}"}, auth="stepped",
        tests="""
pm.test('201 pending', () => { pm.response.to.have.status(201); pm.expect(pm.response.json().state).to.eql('pending'); });
"""),
    req("The funds are held", "GET", "/v1/account", auth="access",
        tests="""
pm.test('held 100', () => { pm.response.to.have.status(200); pm.expect(pm.response.json().balances[0].held).to.eql('100'); });
"""),
    req("Refresh", "POST", "/v1/auth/refresh", {"refresh_token": "{{refresh}}"},
        tests="""
pm.test('rotated', () => {
  pm.response.to.have.status(200);
  pm.expect(pm.response.json().refresh_token).to.not.eql(pm.collectionVariables.get('refresh'));
  pm.collectionVariables.set('oldRefresh', pm.collectionVariables.get('refresh'));
  pm.collectionVariables.set('refresh', pm.response.json().refresh_token);
});
"""),
    req("Reusing the old refresh token revokes the session", "POST", "/v1/auth/refresh", {"refresh_token": "{{oldRefresh}}"},
        tests="""
pm.test('invalid_grant', () => { pm.response.to.have.status(400); pm.expect(pm.response.json().code).to.eql('invalid_grant'); });
"""),
    req("Instruments are public", "GET", "/v1/instruments?kind=perpetual",
        tests="""
pm.test('decimal strings', () => {
  pm.response.to.have.status(200);
  const i = pm.response.json().data[0];
  pm.expect(i.tick_size).to.be.a('string');
});
"""),
]

collection = {
    "info": {
        "name": "bourse flow",
        "description": "End-to-end flow run by scripts/newman-flow.sh against a real server. Generated by scripts/postman/flow.py.",
        "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
    },
    "item": items,
    "variable": [],
}
out = pathlib.Path(__file__).resolve().parents[2] / "docs/postman/bourse-flow.postman_collection.json"
out.write_text(json.dumps(collection, indent=2, sort_keys=True) + "\n")
print(f"wrote {out}")
