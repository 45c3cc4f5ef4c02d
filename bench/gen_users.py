#!/usr/bin/env python3
"""Writes N realistic users as a JSON array, one user per line (the layout
`JSON.stringify` per element gives), with a mix of hash algorithms:
gen_users.py N OUT [--seed S] [--csv]. About 350 bytes per user. With --csv
the same users as CSV, one column per dotted property (about 250 bytes per
user)."""
import csv
import json
import random
import sys

FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Gustavo", "Hiro", "Inès", "Jamal",
         "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq"]
LAST = ["Smith", "García", "Müller", "Nguyen", "Kowalski", "Okafor", "Rossi", "Tanaka", "Dubois",
        "Johansson", "Silva", "Haddad", "Ivanova", "O'Brien", "Patel", "Kim"]
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
BC = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
HEX = "0123456789abcdef"


def rs(r, alphabet, n):
    return "".join(r.choice(alphabet) for _ in range(n))


def user(r, i):
    f, l = r.choice(FIRST), r.choice(LAST)
    u = {"email": f"{f.lower()}.{l.lower().replace(chr(39), '')}{i}@example.com",
         "email_verified": r.random() < 0.8,
         "user_id": f"legacy-{i:08d}",
         "given_name": f, "family_name": l, "name": f"{f} {l}"}
    if r.random() < 0.5:
        u["username"] = f"{f.lower()[:4]}{i}"
    if r.random() < 0.3:
        u["phone_number"] = "+1" + str(r.randrange(2000000000, 9999999999))
    if r.random() < 0.4:
        u["picture"] = f"https://cdn.example.com/avatars/{i}.png"
    k = r.random()
    if k < 0.40:
        u["password_hash"] = "$2b$10$" + rs(r, BC, 53)
    elif k < 0.55:
        u["custom_password_hash"] = {"algorithm": "argon2", "hash": {
            "value": f"$argon2id$v=19$m=65536,t=3,p=4${rs(r, B64, 22)}${rs(r, B64, 43)}"}}
    elif k < 0.65:
        u["custom_password_hash"] = {"algorithm": "pbkdf2", "hash": {
            "value": f"$pbkdf2-sha512$i=100000,l=64${rs(r, B64, 22)}${rs(r, B64, 86)}"}}
    elif k < 0.75:
        u["custom_password_hash"] = {"algorithm": "sha256", "hash": {"value": rs(r, HEX, 64), "encoding": "hex"},
                                     "salt": {"value": rs(r, HEX, 16), "encoding": "hex", "position": "suffix"}}
    elif k < 0.80:
        u["custom_password_hash"] = {"algorithm": "scrypt", "hash": {"value": rs(r, HEX, 64), "encoding": "hex"},
                                     "salt": {"value": rs(r, HEX, 32), "encoding": "hex"}, "keylen": 32,
                                     "cost": 16384, "blockSize": 8, "parallelization": 1}
    elif k < 0.85:
        u["custom_password_hash"] = {"algorithm": "ldap", "hash": {"value": "{SSHA}" + rs(r, B64, 32)}}
    u["app_metadata"] = {"plan": r.choice(["free", "pro", "enterprise"]), "roles": ["user"]}
    u["user_metadata"] = {"locale": r.choice(["en", "fr", "de", "ja"]), "newsletter": r.random() < 0.5}
    return u


CSV_COLUMNS = [
    "email", "email_verified", "user_id", "given_name", "family_name", "name", "username",
    "phone_number", "picture", "password_hash", "custom_password_hash.algorithm",
    "custom_password_hash.hash.value", "custom_password_hash.hash.encoding",
    "custom_password_hash.salt.value", "custom_password_hash.salt.encoding",
    "custom_password_hash.salt.position", "custom_password_hash.keylen",
    "custom_password_hash.cost", "custom_password_hash.blockSize",
    "custom_password_hash.parallelization", "app_metadata.plan", "app_metadata.roles",
    "user_metadata.locale", "user_metadata.newsletter",
]


def flatten(u, prefix="", out=None):
    out = {} if out is None else out
    for k, v in u.items():
        name = prefix + k
        if isinstance(v, dict) and name not in ("mfa_factors",):
            flatten(v, name + ".", out)
        elif isinstance(v, bool):
            out[name] = "true" if v else "false"
        elif isinstance(v, list):
            out[name] = json.dumps(v, separators=(",", ":"))
        else:
            out[name] = str(v)
    return out


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--seed" else 42
    r = random.Random(seed)
    with open(out, "w", encoding="utf-8", buffering=1 << 20, newline="") as f:
        if "--csv" in sys.argv[3:]:
            w = csv.writer(f, lineterminator="\r\n")
            w.writerow(CSV_COLUMNS)
            for i in range(n):
                row = flatten(user(r, i))
                w.writerow([row.get(c, "") for c in CSV_COLUMNS])
            return
        f.write("[\n")
        for i in range(n):
            if i:
                f.write(",\n")
            f.write(json.dumps(user(r, i), ensure_ascii=False, separators=(",", ":")))
        f.write("\n]\n")


if __name__ == "__main__":
    main()
