#!/usr/bin/python3
"""Seeds the e2e Keystone, idempotently: projects service/alpha/beta, role service, users and their roles.

Usage: KEYSTONE_URL=http://127.0.0.1:5000/v3 seed-keystone.py <secrets.env>
"""
import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ["KEYSTONE_URL"].rstrip("/")
SECRETS = dict(line.strip().split("=", 1) for line in open(sys.argv[1]) if "=" in line)

PROJECTS = ["service", "alpha", "beta"]
ROLES = ["admin", "member", "reader", "service"]
# user -> (password variable, [(role, project)])
USERS = {
    "gateway": ("GATEWAY_PASSWORD", [("service", "service")]),
    "alice": ("ALICE_PASSWORD", [("member", "alpha")]),
    "bob": ("BOB_PASSWORD", [("member", "beta")]),
    "carol": ("CAROL_PASSWORD", [("reader", "alpha")]),
    "dave": ("DAVE_PASSWORD", [("member", "alpha"), ("member", "beta")]),
}


def call(method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            raw = res.read()
            return res.status, res.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as err:
        return err.code, err.headers, None


def admin_token():
    status, headers, _ = call("POST", "/auth/tokens", body={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": SECRETS["KEYSTONE_ADMIN_PASSWORD"]}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    if status != 201:
        sys.exit(f"seed: admin login failed: HTTP {status}")
    return headers["X-Subject-Token"]


def find(token, kind, name):
    status, _, body = call("GET", f"/{kind}?name={name}", token)
    items = (body or {}).get(kind, [])
    return items[0]["id"] if items else None


def ensure(token, kind, singular, name, extra):
    found = find(token, kind, name)
    if found:
        return found
    status, _, body = call("POST", f"/{kind}", token, {singular: dict(name=name, **extra)})
    if status not in (200, 201):
        sys.exit(f"seed: creating {singular} {name} failed: HTTP {status}")
    return body[singular]["id"]


def main():
    token = admin_token()
    projects = {p: ensure(token, "projects", "project", p, {"domain_id": "default"}) for p in PROJECTS}
    roles = {r: ensure(token, "roles", "role", r, {}) for r in ROLES}
    for user, (var, grants) in USERS.items():
        uid = find(token, "users", user)
        if uid is None:
            uid = ensure(token, "users", "user", user, {"domain_id": "default", "password": SECRETS[var]})
        else:  # keep the password in step with secrets.env
            call("PATCH", f"/users/{uid}", token, {"user": {"password": SECRETS[var]}})
        for role, project in grants:
            status, _, _ = call("PUT", f"/projects/{projects[project]}/users/{uid}/roles/{roles[role]}", token)
            if status not in (200, 204):
                sys.exit(f"seed: granting {role}@{project} to {user} failed: HTTP {status}")
    print("seed: keystone has projects", ", ".join(PROJECTS), "and users", ", ".join(USERS))


main()
