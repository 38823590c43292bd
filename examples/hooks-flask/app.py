"""An application in the hub's loop (docs/hooks.md), in Flask.

  POST /ssekit/auth     the hub's auth hook: who may subscribe or publish
  POST /ssekit/webhook  the hub's webhooks, signature verified
  GET  /received        the update ids received by webhook, in order

Run: WEBHOOK_SECRET=... python3 app.py PORT
"""

import hashlib
import hmac
import json
import os
import sys
import threading
import time

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
SECRET = os.environ.get("WEBHOOK_SECRET", "").encode()

# The application's sessions: cookie value -> user.
SESSIONS = {"s-alice": "alice", "s-bob": "bob", "s-admin": "admin"}
BANNED = {"bob"}


@app.post("/ssekit/auth")
def auth():
    req = request.get_json(force=True)
    user = SESSIONS.get(req.get("cookies", {}).get("session", ""))
    if user is None:
        return jsonify(allow=False, reason="log in first")
    if user in BANNED:
        return jsonify(allow=False, reason="banned", cache_ttl=30)
    if req["action"] == "publish":
        if user != "admin":
            return jsonify(allow=False, reason="only admins publish")
        return jsonify(allow=True, publish_topics=["https://example.com/news"])
    # A subscriber gets its own private topic, and the payload the
    # subscriptions API shows; the decision may be reused for a second.
    return jsonify(
        allow=True,
        private_topics=[f"https://example.com/users/{user}"],
        payload={"user": user},
        cache_ttl=float(os.environ.get("CACHE_TTL", "1")),
    )


def verify(secret, headers, body, tolerance=300):
    """Verifies an ssekit webhook signature: HMAC-SHA256 over
    timestamp + "." + body, hex, in Ssekit-Webhook-Signature (v1=...,
    comma-separated while secrets rotate), the timestamp within tolerance
    seconds so that a captured delivery cannot be replayed later."""
    ts = headers.get("Ssekit-Webhook-Timestamp", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance:
        return False
    expected = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    for sig in headers.get("Ssekit-Webhook-Signature", "").split(","):
        sig = sig.strip()
        if sig.startswith("v1=") and hmac.compare_digest(sig[3:], expected):
            return True
    return False


received, seen, lock = [], set(), threading.Lock()


@app.post("/ssekit/webhook")
def webhook():
    body = request.get_data()  # the raw bytes: the signature covers them
    if not SECRET or not verify(SECRET, request.headers, body):
        abort(401)
    event = json.loads(body)
    with lock:
        if event["id"] not in seen:  # at least once: drop duplicates by id
            seen.add(event["id"])
            received.append(event["update"]["id"])
    return "", 204


@app.get("/received")
def received_ids():
    with lock:
        return jsonify(received)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
