"""``opsgate keys new``: a fresh API key, printed once with its configuration lines."""

from __future__ import annotations

from service.auth.keys import new_key


def print_new_key(name: str, roles_text: str) -> int:
    """``opsgate keys new``: print a key once, and the lines to paste into the configuration."""
    roles = [role.strip() for role in roles_text.split(",") if role.strip()]
    token, key = new_key(name, roles)
    listed = ", ".join(roles)
    print(f"New API key {name!r} (roles: {listed}). It is shown only this once; opsgate keeps only its SHA-256.\n")
    print(f"  {token}\n")
    print("Add it to the keys file (OPSGATE_API_KEYS_FILE, under `keys:`):\n")
    print(f"  - name: {name}\n    roles: [{listed}]\n    sha256: {key.sha256}\n")
    print("or as one comma-separated entry of OPSGATE_API_KEYS:\n")
    print(f"  {name}:{'+'.join(roles)}:{key.sha256}")
    return 0
